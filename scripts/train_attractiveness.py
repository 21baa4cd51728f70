#!/usr/bin/env python
"""Train, cross-validate and ship the SCUT-FBP5500 attractiveness model.

Runs :class:`facecore.attractiveness.train.ClassicalRecipe` with
:func:`facecore.training.runner.train` (the rebuild script the model
manifest names); prints the cross-validation table.

    .venv/bin/python scripts/train_attractiveness.py --data ../shared/data \\
        --out models/attractiveness_scut_classical
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder holding scut-fbp5500/")
    ap.add_argument("--out", type=Path, required=True, help="output stem, e.g. models/NAME")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/features"))
    ap.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--inner-folds", type=int, default=5, help="inner folds of fusion weights")
    ap.add_argument("--rf-trees", type=int, default=300, help="trees of the random forests")
    ap.add_argument("--limit", type=int, default=None, help="only N photos (quick checks)")
    ap.add_argument(
        "--serving-repeats", type=int, default=20, help="timed end-to-end scorings (0: none)"
    )
    ap.add_argument("--quiet", action="store_true", help="log warnings only")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    from facecore.attractiveness.train import ClassicalRecipe
    from facecore.training.runner import train

    t0 = time.perf_counter()
    recipe = ClassicalRecipe(
        folds=args.folds,
        seed=args.seed,
        cache_dir=None if args.no_cache else args.cache_dir,
        n_jobs=args.n_jobs,
        inner_folds=args.inner_folds,
        rf_trees=args.rf_trees,
        limit=args.limit,
        progress=sys.stderr.isatty(),
        serving_repeats=args.serving_repeats,
        report=print,
    )
    result = train(recipe, args.data, args.out)
    cv = result.cv
    c = next(r for r in cv["rows"] if r["name"] == cv["chosen"])
    print(
        f"\nchosen: {c['name']}  PC {c['pc']:.4f}  MAE {c['mae']:.4f}  RMSE {c['rmse']:.4f}\n"
        f"photos: {cv['n_photos']}, without a face: {cv['n_no_face']}\n"
        f"wrote {result.model_path} ({result.model_path.stat().st_size / 1e6:.1f} MB), "
        f"{result.card_path}, {result.cv_path}, {result.manifest_path}\n"
        f"timings: {cv['timings']}; wall {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
