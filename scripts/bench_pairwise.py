"""Time facecore.ldl.pairwise_to_distribution on a synthetic set and check what it recovers.

Every item gets a known distribution on the bins 1..K (a discretised Gaussian with a random mean
and width); each comparison draws two distinct items and one rating from each item's
distribution, and the higher rating wins (tied draws are redrawn, as a rater's ties would be
dropped). The fit is timed and its means are compared with the known ones (Pearson, Spearman:
scale-free, see facecore.ldl.pairwise on what anchors the scale) and its distributions with the
known ones (KL and the six LDL measures).

    .venv/bin/python scripts/bench_pairwise.py                       # 100,000 pairs, 5,000 items
    .venv/bin/python scripts/bench_pairwise.py --lam 0 1 3 --alpha 0 1 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr

from facecore.ldl import gaussian_label_distribution, pairwise_to_distribution
from facecore.ldl.pairwise import DEFAULT_ALPHA, DEFAULT_LAMBDA
from facecore.metrics import ldl_metrics


def synthetic_comparisons(
    n_items: int, n_pairs: int, bins: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true distributions (n_items, K), winners (M,), losers (M,))."""
    rng = np.random.default_rng(seed)
    b = np.arange(1, bins + 1)
    mean = rng.uniform(1.5, bins - 0.5, n_items)
    sigma = rng.uniform(0.5, 1.2, n_items)
    true = np.stack(
        [gaussian_label_distribution([m], b, s)[0] for m, s in zip(mean, sigma, strict=True)]
    ).astype(np.float64)
    true /= true.sum(axis=1, keepdims=True)
    cdf = np.cumsum(true, axis=1)
    win, lose = [], []
    need = n_pairs
    while need > 0:
        i = rng.integers(0, n_items, 2 * need)
        j = rng.integers(0, n_items, 2 * need)
        keep = i != j
        i, j = i[keep], j[keep]
        ri = (rng.random(len(i))[:, None] > cdf[i]).sum(axis=1)
        rj = (rng.random(len(j))[:, None] > cdf[j]).sum(axis=1)
        decided = ri != rj
        i, j, ri, rj = i[decided], j[decided], ri[decided], rj[decided]
        w = np.where(ri > rj, i, j)[:need]
        lo = np.where(ri > rj, j, i)[:need]
        win.append(w)
        lose.append(lo)
        need -= len(w)
    return true, np.concatenate(win), np.concatenate(lose)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--bins", type=int, default=5)
    ap.add_argument("--lam", type=float, nargs="+", default=[DEFAULT_LAMBDA])
    ap.add_argument("--alpha", type=float, nargs="+", default=[DEFAULT_ALPHA])
    ap.add_argument("--max-iter", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()

    true, win, lose = synthetic_comparisons(args.items, args.pairs, args.bins, args.seed)
    b = np.arange(1, args.bins + 1)
    true_mean = true @ b
    baseline = ldl_metrics(true, np.broadcast_to(true.mean(axis=0), true.shape))
    print(
        f"{args.pairs} comparisons among {args.items} items, {args.bins} bins (baseline: every "
        f"item the average distribution, KL {baseline['kl']:.4f}, intersection "
        f"{baseline['intersection']:.4f})"
    )
    rows = []
    for lam, alpha in itertools.product(args.lam, args.alpha):
        t0 = time.perf_counter()
        d, info = pairwise_to_distribution(
            win, lose, args.items, bins=args.bins, lam=lam, alpha=alpha, max_iter=args.max_iter
        )
        seconds = time.perf_counter() - t0
        means = info["means"]
        row = {
            "lam": lam,
            "alpha": alpha,
            "seconds": round(seconds, 2),
            "n_iter": info["n_iter"],
            "converged": info["converged"],
            "pearson_mean": float(pearsonr(true_mean, means)[0]),
            "spearman_mean": float(spearmanr(true_mean, means)[0]),
            "mae_mean": float(np.mean(np.abs(true_mean - means))),
            "pair_accuracy": info["pair_accuracy"],
            **{k: round(v, 4) for k, v in ldl_metrics(true, d).items()},
        }
        rows.append(row)
        print(
            f"lam {lam:g}, alpha {alpha:g}: {seconds:.1f} s ({info['n_iter']} iterations, "
            f"converged "
            f"{info['converged']}), Pearson of means {row['pearson_mean']:.4f}, Spearman "
            f"{row['spearman_mean']:.4f}, MAE {row['mae_mean']:.3f}, KL {row['kl']:.4f}, "
            f"intersection {row['intersection']:.4f}, pair accuracy {row['pair_accuracy']:.3f}"
        )
    if args.json:
        out = {
            "items": args.items,
            "pairs": args.pairs,
            "bins": args.bins,
            "seed": args.seed,
            "baseline_mean_distribution": baseline,
            "runs": rows,
        }
        path = Path(args.json)
        if path.is_file():
            # runs made separately (to keep each short) join the same table
            old = json.loads(path.read_text())
            if all(old.get(k) == out[k] for k in ("items", "pairs", "bins", "seed")):
                done = {(r["lam"], r["alpha"]) for r in rows}
                keep = [r for r in old["runs"] if (r["lam"], r["alpha"]) not in done]
                out["runs"] = keep + rows
        path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
