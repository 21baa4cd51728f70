#!/usr/bin/env python
"""Cross-validate and ship an attractiveness rating-distribution model (issue 9).

Runs :class:`facecore.attractiveness.ldl_train.LdlRecipe` with
:func:`facecore.training.runner.train` (the rebuild script the
manifest names). Caches and fold results live in ``--work-dir``; an interrupted run resumes.

    .venv/bin/python scripts/train_attractiveness_ldl.py --dataset mebeauty --data ../shared/data \\
        --out models/attractiveness_mebeauty
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("mebeauty", "scut-fbp5500"), required=True)
    ap.add_argument("--data", type=Path, required=True, help="data root (../shared/data)")
    ap.add_argument("--out", type=Path, default=None, help="output stem (default per dataset)")
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/attractiveness"))
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
        "--extra-tops",
        default=None,
        help="comma-separated START:SEED tops averaged with the main one (e.g. stage4:0); "
        "'none' for the main top alone; default: the dataset's (SCUT-FBP5500: stage4:0)",
    )
    ap.add_argument(
        "--appearance",
        action="store_true",
        help="also compare SVRs on the FaceRes appearance features (alone, and beside the "
        "trunk's) and their stacks; a shipped stack that reads them needs the appearance stage",
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument(
        "--max-grad-norm",
        type=float,
        default=1.0,
        help="clip the tops' gradient norm to this (0: no clipping, as folds trained before "
        "clipping existed; their caches resume only with 0)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not args.data.is_dir():
        print(f"error: data root {args.data} not found", file=sys.stderr)
        return 2
    from facecore.attractiveness.ldl_train import DATASETS, LdlRecipe, member_recipe
    from facecore.training.runner import train
    from facecore.training.tops import TopRecipe

    recipe = TopRecipe(
        epochs=args.epochs,
        seed=args.seed,
        lr=args.lr,
        expectation_weight=args.expectation_weight,
        max_grad_norm=args.max_grad_norm or None,
    )
    members = None
    if args.extra_tops is not None:
        texts = [t.strip() for t in args.extra_tops.split(",") if t.strip()]
        try:
            members = tuple(member_recipe(recipe, t) for t in texts if t != "none")
        except ValueError as exc:
            print(f"error: --extra-tops: {exc}", file=sys.stderr)
            return 2
    ldl = LdlRecipe(
        dataset=args.dataset,
        folds=args.folds,
        seed=args.seed,
        top=recipe,
        work_dir=args.work_dir,
        members=members,
        appearance=args.appearance,
    )
    out = args.out or Path(DATASETS[args.dataset].default_out)
    res = train(ldl, args.data, out, device=args.device)
    print(json.dumps(res.cv["learners"], indent=1))
    print(f"shipped: {res.cv['shipped']}  model: {res.model_path}  card: {res.card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
