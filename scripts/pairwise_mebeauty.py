"""Validate facecore.ldl on MEBeauty's individual ratings.

``pairwise`` (default): turn every rater's ratings into pairwise preferences (two faces rated by
the same rater: the higher rating wins; ties dropped; at most ``--pairs-per-rater`` pairs per
rater, drawn with ``--seed``), recover one distribution per face on the bins 1..10 with
facecore.ldl.pairwise_to_distribution, and compare them with the same faces' rating histograms
(facecore.ldl.rating_histograms): Pearson and Spearman of the means (scale-free: comparisons
fix no absolute position, see facecore.ldl.pairwise), the MAE of the raw means and of the means
after a least-squares affine map onto the histogram means (fitted on the same faces, so an
optimistic figure), and Geng's six LDL measures, next to the baseline that gives every face the
average histogram.

``features``: only compute (and cache) the trunk features that ``cv`` needs.

``cv``: 5-fold cross-validation (facecore.training.folds.kfold_splits, seed 0) of the LDL
learners (MaxEntLDL, StructuredLDL with both decoders) on the trunk's 896-D features
(FaceAnalyzer(stages=("trunk",), max_faces=1), cached in ``--features``) with the rating
histograms as targets: PC/MAE/RMSE of the expectation against the histogram mean, the six LDL
measures, and the mean-histogram baseline (the training folds' average histogram).

    .venv/bin/python scripts/pairwise_mebeauty.py pairwise --json docs/ldl_mebeauty_pairwise.json
    .venv/bin/python scripts/pairwise_mebeauty.py features   # cached; --limit N to resume
    .venv/bin/python scripts/pairwise_mebeauty.py cv --json docs/ldl_mebeauty_cv.json

MEBeauty is for non-commercial research only.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr

from facecore.atomic import atomic_path
from facecore.datasets import load_mebeauty
from facecore.ldl import (
    MaxEntLDL,
    StructuredLDL,
    pairwise_to_distribution,
    rating_histograms,
)
from facecore.ldl.pairwise import DEFAULT_ALPHA, DEFAULT_LAMBDA, comparison_components
from facecore.metrics import ldl_metrics, regression_metrics
from facecore.training.folds import kfold_splits

BINS = np.arange(1, 11, dtype=np.float64)


def rater_preferences(
    matrix: np.ndarray, per_rater: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Pairwise preferences from an image-by-rater rating matrix (NaN: not rated).

    Returns winners (M,), losers (M,) and counts (all pairs, tied, kept).
    """
    rng = np.random.default_rng(seed)
    win, lose = [], []
    total = tied = 0
    for r in range(matrix.shape[1]):
        idx = np.flatnonzero(~np.isnan(matrix[:, r]))
        if len(idx) < 2:
            continue
        vals = matrix[idx, r]
        iu, ju = np.triu_indices(len(idx), 1)
        diff = vals[iu] - vals[ju]
        total += len(diff)
        keep = np.flatnonzero(diff != 0)
        tied += len(diff) - len(keep)
        if len(keep) > per_rater:
            keep = np.sort(rng.choice(keep, per_rater, replace=False))
        a, b, dk = idx[iu[keep]], idx[ju[keep]], diff[keep]
        win.append(np.where(dk > 0, a, b))
        lose.append(np.where(dk > 0, b, a))
    w, lo = np.concatenate(win), np.concatenate(lose)
    return w, lo, {"pairs_total": int(total), "pairs_tied": int(tied), "pairs_used": len(w)}


def _affine_mae(target: np.ndarray, pred: np.ndarray) -> float:
    a, b = np.polyfit(pred, target, 1)
    return float(np.mean(np.abs(a * pred + b - target)))


def run_pairwise(args: argparse.Namespace) -> dict:
    ds = load_mebeauty(args.data)
    r = ds.ratings
    n = len(ds)
    hist = rating_histograms(r.image_index, r.rating, n, BINS).astype(np.float64)
    w, lo, counts = rater_preferences(r.matrix(n), args.pairs_per_rater, args.seed)
    print(
        f"MEBeauty: {n} faces, {len(r)} ratings by {r.n_raters} raters; {counts['pairs_total']} "
        f"same-rater pairs, {counts['pairs_tied']} tied; {counts['pairs_used']} used "
        f"(at most {args.pairs_per_rater} per rater, seed {args.seed})"
    )
    n_comp, labels = comparison_components(w, lo, n)
    items = np.flatnonzero(labels == 0)  # the largest connected group of faces
    if n_comp > 1:
        print(f"{n - len(items)} faces not linked to the others by comparisons are left out")
    keep = np.isin(w, items) & np.isin(lo, items)
    pos = np.full(n, -1)
    pos[items] = np.arange(len(items))
    w, lo, h = pos[w[keep]], pos[lo[keep]], hist[items]
    h_mean = h @ BINS
    baseline = ldl_metrics(h, np.broadcast_to(h.mean(0), h.shape))
    print(
        "baseline (average histogram for every face): "
        + ", ".join(f"{k} {v:.4f}" for k, v in baseline.items())
    )
    runs = []
    for lam in args.lam:
        for alpha in args.alpha:
            t0 = time.perf_counter()
            d, info = pairwise_to_distribution(w, lo, len(items), bins=10, lam=lam, alpha=alpha)
            secs = time.perf_counter() - t0
            m = info["means"]
            row = {
                "lam": lam,
                "alpha": alpha,
                "seconds": round(secs, 1),
                "n_iter": info["n_iter"],
                "converged": info["converged"],
                "pair_accuracy": round(info["pair_accuracy"], 4),
                "pearson_mean": round(float(pearsonr(h_mean, m)[0]), 4),
                "spearman_mean": round(float(spearmanr(h_mean, m)[0]), 4),
                "pearson_mean_score": round(float(pearsonr(ds.targets[items], m)[0]), 4),
                "mae_mean_raw": round(float(np.mean(np.abs(m - h_mean))), 4),
                "mae_mean_affine": round(_affine_mae(h_mean, m), 4),
                "mean_of_means": round(float(m.mean()), 3),
                "sd_of_means": round(float(m.std()), 3),
                **{k: round(v, 4) for k, v in ldl_metrics(h, d).items()},
            }
            runs.append(row)
            print(
                f"lam {lam:g} alpha {alpha:g}: {secs:.1f} s, {info['n_iter']} it; Pearson of "
                f"means {row['pearson_mean']:.4f} (Spearman {row['spearman_mean']:.4f}); MAE "
                f"raw {row['mae_mean_raw']:.3f}, affine {row['mae_mean_affine']:.3f}; "
                + ", ".join(f"{k} {row[k]:.4f}" for k in baseline)
            )
    return {
        "dataset": "mebeauty",
        "faces": int(len(items)),
        "faces_left_out": int(n - len(items)),
        "ratings": len(r),
        "raters": r.n_raters,
        **counts,
        "pairs_per_rater": args.pairs_per_rater,
        "seed": args.seed,
        "bins": BINS.tolist(),
        "histogram_mean_of_means": round(float(h_mean.mean()), 3),
        "histogram_sd_of_means": round(float(h_mean.std()), 3),
        "baseline_mean_histogram": {k: round(v, 4) for k, v in baseline.items()},
        "runs": runs,
    }


def trunk_features(ds, cache: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Trunk features (N, 896) of the largest face of each photo, and which rows are done.

    Rows of photos without a face are NaN. The cache (``.npz``) is resumable: each call
    computes at most ``limit`` missing rows (all when None) and saves them.
    """
    n = len(ds)
    feats = np.full((n, 896), np.nan, dtype=np.float32)
    done = np.zeros(n, dtype=bool)
    if cache.is_file():
        with np.load(cache) as z:
            if z["features"].shape == feats.shape:
                feats, done = z["features"].copy(), z["done"].copy()
    todo = np.flatnonzero(~done)[:limit]
    if todo.size == 0:
        return feats, done
    from facecore.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer(stages=("trunk",), max_faces=1).load()
    t0 = time.perf_counter()
    paths = ds.paths
    for count, i in enumerate(todo, 1):
        faces = analyzer.analyze(paths[i])
        if faces:
            feats[i] = faces[0].features["trunk"]
        done[i] = True
        if count % 100 == 0 or count == todo.size:
            with atomic_path(cache) as tmp:
                np.savez(tmp, features=feats, done=done)
            print(
                f"  features: {done.sum()}/{n} done ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return feats, done


def run_cv(args: argparse.Namespace) -> dict:
    from sklearn.preprocessing import StandardScaler

    ds = load_mebeauty(args.data)
    r = ds.ratings
    hist = rating_histograms(r.image_index, r.rating, len(ds), BINS).astype(np.float64)
    feats, done = trunk_features(ds, Path(args.features), limit=0)
    if not done.all():
        raise SystemExit(
            f"features of {(~done).sum()} photos are missing: run the 'features' mode first"
        )
    ok = np.isfinite(feats).all(axis=1)
    x_all, h_all = feats[ok].astype(np.float64), hist[ok]
    print(f"{ok.sum()} of {len(ds)} photos with a face; 5-fold CV, seed {args.seed}")
    names = ["mean_histogram"]
    if "maxent" in args.learners:
        names.append("maxent")
    if "sldl" in args.learners:
        names += ["sldl_argmax", "sldl_mean"]
    preds = {name: np.zeros_like(h_all) for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for tr, te in kfold_splits(len(x_all), 5, args.seed):
        scaler = StandardScaler().fit(x_all[tr])
        xtr, xte = scaler.transform(x_all[tr]), scaler.transform(x_all[te])
        preds["mean_histogram"][te] = h_all[tr].mean(axis=0)
        note = []
        if "maxent" in names:
            t0 = time.perf_counter()
            m = MaxEntLDL(alpha=args.maxent_alpha, random_state=args.seed).fit(xtr, h_all[tr])
            preds["maxent"][te] = m.predict_distribution(xte)
            seconds["maxent"] += time.perf_counter() - t0
            note.append(f"maxent {m.n_iter_} it")
        if "sldl_argmax" in names:
            t0 = time.perf_counter()
            s = StructuredLDL(
                alpha=args.sldl_alpha,
                temperature=args.sldl_temperature,
                max_candidates=args.sldl_candidates,
                max_iter=args.sldl_max_iter,
                random_state=args.seed,
            ).fit(xtr, h_all[tr])
            preds["sldl_argmax"][te] = s.predict_distribution(xte)
            # the same fit, decoded as the softmax-weighted mean of the candidates
            preds["sldl_mean"][te] = s.set_params(decode="mean").predict_distribution(xte)
            seconds["sldl_argmax"] += time.perf_counter() - t0
            note.append(f"sldl {s.n_iter_} it, {len(s.candidates_)} candidates")
        print("  fold: " + ", ".join(note), flush=True)
    if "sldl_mean" in seconds:
        seconds["sldl_mean"] = seconds["sldl_argmax"]
    params = {
        "maxent": {"alpha": args.maxent_alpha},
        "sldl": {
            "alpha": args.sldl_alpha,
            "temperature": args.sldl_temperature,
            "max_candidates": args.sldl_candidates,
            "max_iter": args.sldl_max_iter,
        },
    }
    target = h_all @ BINS
    table = {}
    for name, p in preds.items():
        row = {
            **{k: round(v, 4) for k, v in regression_metrics(target, p @ BINS).items()},
            **{k: round(v, 4) for k, v in ldl_metrics(h_all, p).items()},
            "seconds": round(seconds[name], 1),
            **params.get(name.split("_")[0], {}),
        }
        table[name] = row
        print(f"{name:15s} " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return {
        "dataset": "mebeauty",
        "photos_with_face": int(ok.sum()),
        "folds": 5,
        "seed": args.seed,
        "features": "trunk (896-D), standardised on each training fold",
        "target": "rating histogram on bins 1..10; PC/MAE/RMSE of the expectation against the "
        "histogram mean",
        "table": table,
    }


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", nargs="?", choices=("pairwise", "cv", "features"), default="pairwise")
    ap.add_argument("--data", help="data root holding mebeauty/ (default ../shared/data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--pairs-per-rater", type=int, default=1000, help="pairwise mode")
    ap.add_argument("--lam", type=float, nargs="+", default=[DEFAULT_LAMBDA], help="pairwise")
    ap.add_argument("--alpha", type=float, nargs="+", default=[DEFAULT_ALPHA], help="pairwise")
    ap.add_argument("--features", default="/tmp/facecore_mebeauty_trunk.npz", help="cache")
    ap.add_argument("--limit", type=int, help="features mode: at most this many photos per run")
    ap.add_argument("--maxent-alpha", type=float, default=0.1, help="cv mode")
    ap.add_argument("--sldl-alpha", type=float, default=0.3, help="cv mode")
    ap.add_argument("--sldl-temperature", type=float, default=0.1, help="cv mode")
    ap.add_argument("--sldl-candidates", type=int, default=500, help="cv mode")
    ap.add_argument("--sldl-max-iter", type=int, default=300, help="cv mode")
    ap.add_argument("--learners", nargs="+", choices=("maxent", "sldl"), default=["maxent", "sldl"])
    args = ap.parse_args()
    if args.mode == "features":
        ds = load_mebeauty(args.data)
        feats, done = trunk_features(ds, Path(args.features), args.limit)
        print(
            f"{done.sum()} of {len(ds)} photos done, "
            f"{np.isfinite(feats).all(axis=1).sum()} with a face"
        )
        return
    out = run_cv(args) if args.mode == "cv" else run_pairwise(args)
    if args.json:
        path = Path(args.json)
        if args.mode == "cv" and path.is_file():
            # learners run separately (to keep each run short) add their rows to one table
            old = json.loads(path.read_text())
            if old.get("folds") == out["folds"] and old.get("seed") == out["seed"]:
                out = {**old, **out, "table": {**old.get("table", {}), **out["table"]}}
        path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
