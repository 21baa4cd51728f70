"""Which aligned crop the ``appearance`` stage (HSE-FaceRes) should run on, chosen in CV.

For each labelled set and each crop spec (alignment method, side, padding), the FaceRes pooled
features of every photo's face (the landmarks the training chips found; plain and mirrored crops)
feed an RBF SVR on L2-normalised features, cross-validated in 5 folds (KFold, seed
0): Pearson correlation for the ratings, MAE in years for UTKFace (an SVR of log-age). The spec
with the best mean rank over the sets is the ``chip`` of the manifest entry ``faceres_vggface2``
(``CHIP`` in ``scripts/convert_faceres.py``).

    .venv/bin/python scripts/appearance_crops.py --data ../shared/data \
        --work-dir .cache/appearance --out appearance_crops.json --markdown appearance_crops.md

Features are cached per set and spec in ``--work-dir``
(:func:`facecore.training.chips.appearance_features`, as the recipes read them); a rerun only fits.
The chips (face landmarks) come from the recipes' chip caches (``--chips-dir``), computed when
missing.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from facecore.align import AlignSpec
from facecore.datasets import load_mebeauty, load_scut_fbp5500, load_utkface
from facecore.training.chips import appearance_features, extract_dataset_chips

log = logging.getLogger("appearance_crops")

LOADERS = {
    "scut-fbp5500": load_scut_fbp5500,
    "mebeauty": load_mebeauty,
    "utkface": load_utkface,
}
DEFAULT_SPECS = ("dlib:224:0.25", "dlib:224:0.5", "dlib:224:0.8", "similarity5:224:0.5")


def parse_spec(text: str) -> AlignSpec:
    method, size, padding = text.split(":")
    return AlignSpec(method, int(size), float(padding))  # type: ignore[arg-type]


def cv_score(name: str, X: np.ndarray, y: np.ndarray) -> float:
    """5-fold (KFold, seed 0) RBF SVR on L2-normalised X: Pearson r, or MAE in years for age."""
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer
    from sklearn.svm import SVR

    age = name == "utkface"
    svr = make_pipeline(Normalizer(), SVR(C=4.0 if age else 1.0, gamma="scale"))
    t = np.log1p(y) if age else y
    pred = cross_val_predict(svr, X, t, cv=KFold(5, shuffle=True, random_state=0), n_jobs=1)
    if age:
        return float(np.abs(np.expm1(pred) - y).mean())
    return float(np.corrcoef(pred, y)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--sets", nargs="+", choices=sorted(LOADERS), default=sorted(LOADERS))
    ap.add_argument("--specs", nargs="+", default=list(DEFAULT_SPECS), help="method:size:padding")
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/appearance"))
    ap.add_argument(
        "--chips-dir",
        nargs="+",
        default=[],
        metavar="SET=DIR",
        help="chip cache folder of a set (default <work-dir>/chips)",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    chips_dirs = dict(item.split("=", 1) for item in args.chips_dir)
    specs = [parse_spec(s) for s in args.specs]
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.sets:
        ds = LOADERS[name](args.data)
        chips = extract_dataset_chips(ds, cache_dir=chips_dirs.get(name, args.work_dir / "chips"))
        y = np.asarray(ds.targets, np.float64)[chips.has_face]
        results[name] = {}
        for spec in specs:
            plain, mirrored = appearance_features(ds, chips, args.work_dir, spec)
            row = {
                "plain": cv_score(name, plain, y),
                "mirror-averaged": cv_score(name, 0.5 * (plain + mirrored), y),
            }
            results[name][repr(spec)] = row
            log.info("%s %r: %s", name, spec, row)
    # Rank each spec per set (mirror-averaged; higher r, lower MAE is better), then the mean.
    keys = [repr(s) for s in specs]
    ranks = {k: 0.0 for k in keys}
    for name, rows in results.items():
        sign = 1.0 if name == "utkface" else -1.0
        order = sorted(keys, key=lambda k: sign * rows[k]["mirror-averaged"])
        for r, k in enumerate(order, 1):
            ranks[k] += r / len(results)
    best = min(keys, key=lambda k: (ranks[k], keys.index(k)))
    doc = {"results": results, "mean_rank": ranks, "chosen": best, "specs": keys}
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    heads = [f"{n} ({'MAE' if n == 'utkface' else 'PC'}), plain / mirror-avg" for n in results]
    lines = [
        "| crop | " + " | ".join(heads) + " | mean rank |",
        "|---|" + "---:|" * (len(results) + 1),
    ]
    for k in keys:
        cells = [f"{r[k]['plain']:.4f} / {r[k]['mirror-averaged']:.4f}" for r in results.values()]
        lines.append(f"| {k} | " + " | ".join(cells) + f" | {ranks[k]:.2f} |")
    lines.append(f"\nChosen: {best}")
    text = "\n".join(lines) + "\n"
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
