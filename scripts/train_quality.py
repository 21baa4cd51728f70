#!/usr/bin/env python
"""Train, evaluate and ship the face quality model (issue 12: RankIQA on synthetic distortions).

Runs :class:`facecore.quality.train.QualityRecipe` with :func:`facecore.training.runner.train`
(the rebuild script the manifest names).
Caches and checkpoints live in ``--work-dir``; a rerun after an interruption resumes.

    .venv/bin/python scripts/train_quality.py --data ../shared/data --out models/quality_faces
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder holding the datasets")
    ap.add_argument(
        "--out", type=Path, required=True, help="output stem, e.g. models/quality_faces"
    )
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/quality"))
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps per candidate")
    ap.add_argument("--n-train", type=int, default=None, help="ranking photos per dataset")
    ap.add_argument("--n-calib", type=int, default=None, help="calibration photos per dataset")
    ap.add_argument("--n-eval", type=int, default=None, help="evaluation photos per dataset")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from dataclasses import replace

    from facecore.quality.train import QualityRecipe
    from facecore.training.runner import train

    cfg = QualityRecipe(work_dir=args.work_dir)
    changes = {
        k: v
        for k, v in {
            "steps": args.steps,
            "n_train": args.n_train,
            "n_calib": args.n_calib,
            "n_eval": args.n_eval,
        }.items()
        if v is not None
    }
    cfg = replace(cfg, **changes)
    missing = [d for d in ("scut-fbp5500", "mebeauty", "utkface") if not (args.data / d).is_dir()]
    if missing:
        print(f"error: {', '.join(missing)} not found under {args.data}", file=sys.stderr)
        return 2
    res = train(cfg, args.data, args.out)
    print(json.dumps({a: c["ranking"][-1] for a, c in res.cv["candidates"].items()}, indent=1))
    print(f"chosen: {res.cv['chosen']}  warn_below: {res.cv['warn_below']}")
    print(f"model: {res.model_path}  card: {res.card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
