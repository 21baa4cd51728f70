#!/usr/bin/env python
"""Train, cross-validate and ship the UTKFace age model (issue 10).

Runs the age recipe (:class:`facecore.age.train.AgeRecipe`) with
:func:`facecore.training.runner.train` (the rebuild script the manifest names).
Caches and fold results live in ``--work-dir``; a rerun after an interruption resumes.

    .venv/bin/python scripts/train_age.py --data ../shared/data --out models/age_utkface
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder holding utkface/")
    ap.add_argument("--out", type=Path, required=True, help="output stem, e.g. models/age_utkface")
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/age"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=5e-4, help="peak one-cycle learning rate")
    ap.add_argument(
        "--expectation-weight",
        type=float,
        default=0.0,
        help="add this weight x |E[pred] - E[target]| to the KL loss (DLDL-v2)",
    )
    ap.add_argument(
        "--pilot",
        type=int,
        default=None,
        metavar="K",
        help="train only the first K CV folds and print their MAE and CS(5) (nothing written "
        "to --out; a full run later resumes from these folds)",
    )
    ap.add_argument(
        "--max-grad-norm",
        type=float,
        default=1.0,
        help="clip the top's gradient norm to this (0: no clipping, as folds trained before "
        "clipping existed; their caches resume only with 0)",
    )
    ap.add_argument(
        "--appearance",
        action="store_true",
        help="also compare SVRs on the FaceRes appearance features (alone, and beside the "
        "trunk's) and their stacks; a shipped stack that reads them needs the appearance stage",
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from facecore.age.train import AgeRecipe
    from facecore.training.runner import train
    from facecore.training.tops import TopRecipe

    recipe = AgeRecipe(
        folds=args.folds,
        seed=args.seed,
        top=TopRecipe(
            epochs=args.epochs,
            seed=args.seed,
            lr=args.lr,
            expectation_weight=args.expectation_weight,
            max_grad_norm=args.max_grad_norm or None,
        ),
        work_dir=args.work_dir,
        appearance=args.appearance,
    )
    if not (args.data / "utkface").is_dir():
        print(f"error: {args.data}/utkface not found", file=sys.stderr)
        return 2
    if args.pilot is not None:
        from facecore.age.train import pilot

        print(json.dumps(pilot(args.data, recipe, args.pilot, device=args.device), indent=1))
        return 0
    res = train(recipe, args.data, args.out, device=args.device)
    print(json.dumps(res.cv["learners"], indent=1))
    print(f"model: {res.model_path}  card: {res.card_path}  seconds: {res.seconds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
