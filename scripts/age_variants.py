#!/usr/bin/env python
"""Compare point estimates and a two-recipe ensemble of the age top from saved CV folds.

Reads the out-of-fold distributions that ``scripts/train_age.py`` saved for two recipes (the
shipped one and ``--expectation-weight 1``; their fold folders under ``.cache/age``) and prints,
over the same 5 folds, the MAE and CS(5) of: each recipe's expectation and median, their average
distribution's expectation and median, each with and without the cross-fitted correction the
recipe ships (:class:`facecore.training.learners.IsotonicCorrection`). No training; an
exploration aid for issue 10 (the folders must exist: run both trainings first).

    .venv/bin/python scripts/age_variants.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/age"))
    args = ap.parse_args(argv)
    import numpy as np

    from facecore.age.train import AGE_BINS, AgeRecipe
    from facecore.datasets import load_utkface
    from facecore.training.chips import extract_dataset_chips
    from facecore.training.folds import kfold_splits
    from facecore.training.learners import IsotonicCorrection
    from facecore.training.runner import out_of_fold

    base = AgeRecipe(work_dir=args.work_dir)
    recipes = {
        "shipped recipe": base,
        "expectation weight 1": replace(base, top=replace(base.top, expectation_weight=1.0)),
    }
    ds = load_utkface(args.data)
    chips = extract_dataset_chips(ds, cache_dir=args.work_dir / "chips")
    y = np.asarray(ds.targets)[np.flatnonzero(chips.has_face)]
    folds = kfold_splits(len(y), base.folds, base.seed, stratify=y)

    oof = {}
    for name, cfg in recipes.items():
        d = cfg.fold_dir
        probs = np.full((len(y), len(AGE_BINS)), np.nan)
        for k, (_, te) in enumerate(folds):
            path = d / f"fold{k}.npz"
            if not path.is_file():
                print(
                    f"error: {path} missing: run scripts/train_age.py for {name}", file=sys.stderr
                )
                return 2
            with np.load(path) as z:
                if not np.array_equal(z["test"], te):
                    print(f"error: {path} holds another split", file=sys.stderr)
                    return 2
                probs[te] = z["probs"]
        oof[name] = probs
    oof["average of both"] = (oof["shipped recipe"] + oof["expectation weight 1"]) / 2

    def median(p: np.ndarray) -> np.ndarray:
        return np.array([np.interp(0.5, np.cumsum(r), AGE_BINS) for r in p])

    print("| distributions | value | correction | MAE | CS(5) |")
    print("|---|---|---|---:|---:|")
    for name, p in oof.items():
        fitted = out_of_fold(IsotonicCorrection(AGE_BINS), p.astype(np.float32), y, folds)
        value, corrected = fitted.values, fitted.distributions
        rows = (
            ("expectation", "none", p @ AGE_BINS),
            ("median", "none", median(p)),
            ("expectation", "cross-fitted", value),  # what the trainer reports and ships
            ("median", "cross-fitted", median(corrected)),
        )
        for value_name, cor_name, v in rows:
            err = np.abs(v - y)
            print(
                f"| {name} | {value_name} | {cor_name} | {err.mean():.3f} | "
                f"{np.mean(err <= 5):.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
