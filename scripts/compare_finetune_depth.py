#!/usr/bin/env python
"""How deep to fine-tune: a top of the shared trunk against the whole network, same CV (issue 9).

Trains, in the folds and with the recipe of ``scripts/train_attractiveness_ldl.py`` (5-fold
KFold seed 0, KL loss, flips, one-cycle AdamW, 12 epochs, batch 32), one fine-tuned copy of the
face ResNet per value of ``--starts``: ``stage3`` is the shipped top (stages 3-5 over the shared
frozen stage-2 map), ``stage4`` a smaller top (stages 4-5 over stage 3), ``stage1`` the whole
network but its stem (one 7x7 convolution and a max-pool, kept frozen so that its map can be
cached once; every residual stage and the output layer are trained). For each it reports the
cross-validated PC / MAE / RMSE and LDL metrics of the top alone and of the top stacked with the
frozen-feature SVR (as shipped), the training time, and the milliseconds per face of the copy a
head would own (float32 and int8, batch 1, from the shared map it starts from, median of
``--repeats``), next to the trunk's own per-chip time.

Folds and checkpoints live in ``--work-dir`` (the stage-3 folds are the shipped model's, so they
are read back, not retrained); an interrupted run resumes from the last finished epoch.

    .venv/bin/python scripts/compare_finetune_depth.py --data ../shared/data \\
        --out docs/ldl_finetune_depth.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _ms(fn: Any, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _top_ms(top: Any, x: Any, repeats: int) -> float:
    import torch

    def run() -> None:
        with torch.inference_mode():
            top(x)

    return _ms(run, repeats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data root (../shared/data)")
    ap.add_argument("--dataset", choices=("scut-fbp5500", "mebeauty"), default="scut-fbp5500")
    ap.add_argument("--starts", default="stage3,stage4,stage1", help="comma-separated")
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/attractiveness"))
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not args.data.is_dir():
        print(f"error: data root {args.data} not found", file=sys.stderr)
        return 2
    starts = [s.strip() for s in args.starts.split(",") if s.strip()]
    bad = [s for s in starts if s not in ("stage1", "stage2", "stage3", "stage4", "stage5")]
    if bad:
        print(f"error: unknown start {bad}; use stage1..stage5", file=sys.stderr)
        return 2

    import torch

    from facecore.attractiveness.ldl_train import (
        SVR_EPSILON,
        SVR_GRID,
        LdlRecipe,
    )
    from facecore.metrics import ldl_metrics, regression_metrics
    from facecore.nn.dlib_resnet import for_inference
    from facecore.nn.quantize import quantize_top
    from facecore.training.chips import load_face_resnet
    from facecore.training.learners import SvrStack, TopRegressor, svr_search
    from facecore.training.runner import out_of_fold
    from facecore.training.tops import TopRecipe, calibration_maps, dataset_maps, new_top

    base = LdlRecipe(dataset=args.dataset, work_dir=args.work_dir, members=())
    spec = base.spec
    bins = np.asarray(spec.bins)
    work = args.work_dir
    data = base.load(args.data)
    chips, rows = data.extra["chips"], data.extra["rows"]
    target_rule = data.extra["rule"]
    y, D = data.y, data.targets
    folds = base.folds_of(data)
    net = load_face_resnet()
    chip = torch.from_numpy(np.asarray(chips.chips[rows[:1]]))
    with torch.inference_mode():
        x_chip = net.preprocess(chip.numpy()).contiguous(memory_format=torch.channels_last)
        nodes = net.forward_feature_dict(x_chip)
    served_trunk = for_inference(load_face_resnet())

    def trunk() -> None:
        with torch.inference_mode():
            served_trunk.forward_feature_dict(x_chip)

    trunk_ms = _ms(trunk, args.repeats)
    # Every timing before the SVRs: numpy's BLAS threads left spinning by their fits slow
    # torch's next calls on this 2-core machine (see facecore.ldl.stack.RbfSvr.predict).
    timings, node_maps = {}, {}
    for start in starts:
        recipe = TopRecipe(start=start)
        node_maps[start] = dataset_maps(chips, recipe.input_node, work / "maps")
        maps_all = node_maps[start][0]
        top = for_inference(new_top(recipe, len(bins), backbone=net))
        x = nodes[recipe.input_node].contiguous(memory_format=torch.channels_last)
        cal = calibration_maps(maps_all, rows, size=256)
        timings[start] = (
            _top_ms(top, x, args.repeats),
            _top_ms(quantize_top(top, cal), x, args.repeats),
            int(sum(p.numel() for p in top.parameters())),
        )
    feats = data.features["trunk"]
    search = svr_search(feats.shape[1], SVR_GRID, SVR_EPSILON, seed=0)
    svr_pred = out_of_fold(search, feats, y, folds).values

    table: dict[str, Any] = {
        "dataset": spec.title,
        "protocol": f"5-fold KFold(shuffle=True, random_state=0) on {len(rows)} photos; "
        f"targets: {target_rule}",
        "trunk_ms_per_chip": round(trunk_ms, 2),
        "learners": {},
    }
    for start in starts:
        recipe = TopRecipe(start=start)
        maps_all, flipped_all = node_maps[start]
        maps, flipped = np.asarray(maps_all)[rows], np.asarray(flipped_all)[rows]
        top = out_of_fold(
            TopRegressor(recipe, spec.bins, maps, flipped),
            data.features["rows"],
            D,
            folds,
            cache_dir=base.fold_dir(recipe, target_rule),
        )
        probs, fold_seconds = top.distributions, top.seconds
        stack = out_of_fold(
            SvrStack(spec.bins, temper_for_coverage=False),
            np.column_stack([probs, svr_pred]),
            y,
            folds,
        )
        stacked, stacked_probs = stack.values, stack.distributions
        float_ms, int8_ms, n_params = timings[start]
        name = {"stage1": "whole network (stages 1-5)", "stage3": "top: stages 3-5"}.get(
            start, f"top: stages {start.removeprefix('stage')}-5"
        )
        for label, value, dist in (
            ("", probs @ bins, probs),
            (" + svr stack", stacked, stacked_probs),
        ):
            m = regression_metrics(y, value) | ldl_metrics(D, dist.astype(np.float64))
            table["learners"][name + label] = {k: round(float(v), 4) for k, v in m.items()}
        table["learners"][name] |= {
            "start": start,
            "trainable_parameters": n_params,
            "train_minutes_5_folds": round(float(np.sum(fold_seconds)) / 60.0, 1),
            "ms_per_face_float32": round(float_ms, 2),
            "ms_per_face_int8": round(int8_ms, 2),
        }
        logging.info("%s: %s", name, table["learners"][name])
    text = json.dumps(table, indent=1)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
