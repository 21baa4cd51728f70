#!/usr/bin/env python
"""What else was tried for MEBeauty's PC (issue 9's target 0.80), in the shipped model's folds.

Every probe predicts the published mean score of the 1,862 MEBeauty photos with a face, 5-fold
KFold(shuffle=True, random_state=0) as ``scripts/train_attractiveness_ldl.py`` (its caches in
``--work-dir`` are reused: chips, trunk features, stage-2 maps, the top's out-of-fold
distributions), and reports the out-of-fold Pearson (and MAE):

* ``reliability`` - how far a perfect predictor could go: the raters split at random into two
  halves (20 splits, seed 0), the Pearson of the two half-panel means, stepped up to the whole
  panel (Spearman-Brown); its square root bounds the Pearson of any prediction with the mean;
* ``svr-grid`` - the RBF SVR on the frozen trunk features over C x gamma (gamma as a multiple
  of 1/D on standardised features, i.e. of sklearn's ``"scale"``);
* ``wide-chip`` - the trunk's features of a wider chip (dlib padding ``--wide-padding``
  instead of 0.25: more hair and face outline), alone and beside the usual ones;
* ``transfer`` - the top + SVR stack with more inputs: the shipped age model's age and the
  quality model's score, and ``attractiveness_scut``'s rating (none of them trained on MEBeauty);
* ``penultimate`` - the SVR on the pooled last-stage features (mean and std over space) of the
  shipped SCUT attractiveness top and of the age top, beside the trunk features.

    .venv/bin/python scripts/mebeauty_probes.py --data ../shared/data \\
        --out docs/mebeauty_probes.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _svr(C: float = 1.0, gamma: Any = "scale") -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return make_pipeline(StandardScaler(), SVR(C=C, epsilon=0.05, gamma=gamma))


def _score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "pc": round(float(np.corrcoef(p, y)[0, 1]), 4),
        "mae": round(float(np.abs(p - y).mean()), 4),
    }


def _oof(make: Any, X: np.ndarray, y: np.ndarray, folds: list[Any]) -> np.ndarray:
    from facecore.training.runner import out_of_fold

    return out_of_fold(make(), X, y, folds).values


def _lad_oof(Z: np.ndarray, y: np.ndarray, folds: list[Any]) -> np.ndarray:
    from sklearn.linear_model import QuantileRegressor

    return _oof(lambda: QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs"), Z, y, folds)


def reliability(ds: Any, splits: int = 20, seed: int = 0) -> dict[str, float]:
    m = ds.ratings.matrix(len(ds))
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(splits):
        cols = rng.permutation(m.shape[1])
        halves = [m[:, cols[: len(cols) // 2]], m[:, cols[len(cols) // 2 :]]]
        n = [np.sum(np.isfinite(h), axis=1) for h in halves]
        ok = (n[0] > 0) & (n[1] > 0)
        a, b = (np.nansum(h[ok], axis=1) / k[ok] for h, k in zip(halves, n, strict=True))
        rs.append(float(np.corrcoef(a, b)[0, 1]))
    r = float(np.mean(rs))
    whole = 2 * r / (1 + r)
    return {
        "split_half_r": round(r, 4),
        "spearman_brown": round(whole, 4),
        "pc_ceiling": round(float(np.sqrt(whole)), 4),
        "ratings_per_face": round(float(np.mean(np.sum(np.isfinite(m), axis=1))), 1),
    }


def wide_chip_features(ds: Any, rows: np.ndarray, landmarks: np.ndarray, padding: float) -> Any:
    import dlib

    from facecore.align import dlib_face_chip
    from facecore.datasets import iter_images
    from facecore.trunk import TrunkStage

    chips = np.zeros((len(rows), 150, 150, 3), np.uint8)
    for j, image in enumerate(iter_images(ds, rows)):
        pts = landmarks[j]
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        shape = dlib.full_object_detection(
            dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
            dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in pts]),
        )
        chips[j] = dlib_face_chip(image, shape, 150, padding)
    return TrunkStage(keep_maps=()).compute(chips)["features"]


def head_outputs(chips: np.ndarray) -> dict[str, np.ndarray]:
    """The shipped age, quality and SCUT attractiveness predictions of aligned chips."""
    from facecore.stages import build_stage
    from facecore.trunk import TrunkStage
    from facecore.types import Box, Face

    trunk = TrunkStage(keep_maps=("stage2", "stage3"))
    heads = {
        "age": ("age", build_stage("age")),
        "quality": ("quality", build_stage("quality")),
        "attractiveness_scut": (
            "attractiveness",
            build_stage("attractiveness", model="attractiveness_scut"),
        ),
    }
    out: dict[str, list[float]] = {k: [] for k in heads}
    blank = np.zeros((150, 150, 3), np.uint8)
    for s in range(0, len(chips), 64):
        r = trunk.compute(chips[s : s + 64])
        faces = [
            Face(
                box=Box(0, 0, 150, 150),
                detector_score=1.0,
                detector="chip",
                embedding=r["embedding"][i],
                features={
                    "trunk": r["features"][i],
                    "trunk.stage2": r["stage2"][i],
                    "trunk.stage3": r["stage3"][i],
                },
            )
            for i in range(len(r["features"]))
        ]
        for k, (pred, head) in heads.items():
            out[k] += [f.predictions[pred].value for f in head(blank, faces)]
    return {k: np.asarray(v) for k, v in out.items()}


def penultimate(model: str, maps: np.ndarray) -> np.ndarray:
    import torch

    from facecore.heads.distribution import TopDistributionModel
    from facecore.model_router import resolve

    top = TopDistributionModel.load(resolve(model), precision="float32").top
    out = []
    with torch.inference_mode():
        for s in range(0, len(maps), 128):
            x = torch.from_numpy(np.asarray(maps[s : s + 128], np.float32))
            for stage in top.stages:
                x = stage(x)
            out.append(torch.cat([x.mean((2, 3)), x.std((2, 3))], 1).numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data root (../shared/data)")
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/attractiveness"))
    ap.add_argument("--wide-padding", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.data.is_dir():
        print(f"error: data root {args.data} not found", file=sys.stderr)
        return 2

    from facecore.attractiveness.ldl_train import LdlRecipe
    from facecore.training.learners import TopRegressor
    from facecore.training.runner import out_of_fold

    recipe = LdlRecipe(dataset="mebeauty", work_dir=args.work_dir)
    spec, data = recipe.spec, recipe.load(args.data)
    ds, chips, rows, rule = (data.extra[k] for k in ("dataset", "chips", "rows", "rule"))
    y, folds, feats = data.y, recipe.folds_of(data), data.features["trunk"]
    bins = np.asarray(spec.bins)
    res: dict[str, Any] = {"n": int(len(rows)), "reliability": reliability(ds)}
    print("reliability", res["reliability"], flush=True)

    grid = {}
    for C in (0.5, 1.0, 2.0, 4.0):
        for g in (0.5, 1.0, 2.0):
            grid[f"C={C} gamma={g}/D"] = _score(
                y, _oof(lambda C=C, g=g: _svr(C, g / feats.shape[1]), feats, y, folds)
            )
    res["svr_grid"] = grid
    print("svr grid", grid, flush=True)
    svr = _oof(_svr, feats, y, folds)

    wide = wide_chip_features(ds, rows, chips.landmarks[rows], args.wide_padding)
    res["wide_chip"] = {
        "padding": args.wide_padding,
        "wide alone": _score(y, _oof(_svr, wide, y, folds)),
        "usual + wide": _score(y, _oof(_svr, np.hstack([feats, wide]), y, folds)),
        "usual": _score(y, svr),
    }
    print("wide chip", res["wide_chip"], flush=True)

    # The shipped recipe's out-of-fold distributions (read back from its fold files).
    maps, flipped = data.extra["maps"][recipe.top.input_node]
    probs = out_of_fold(
        TopRegressor(recipe.top, spec.bins, maps, flipped),
        data.features["rows"],
        data.targets,
        folds,
        cache_dir=recipe.fold_dir(recipe.top, rule),
    ).distributions
    heads = head_outputs(np.asarray(chips.chips[rows]))
    cols = {"E[top]": probs @ bins, "svr": svr, **heads}
    res["transfer"] = {
        "pearson_with_rating": {
            k: round(float(np.corrcoef(v, y)[0, 1]), 4) for k, v in cols.items()
        }
    }
    for extra in ([], ["age"], ["quality"], ["attractiveness_scut"], list(heads)):
        names = ["E[top]", "svr", *extra]
        res["transfer"][" + ".join(names)] = _score(
            y, _lad_oof(np.column_stack([cols[n] for n in names]), y, folds)
        )
    print("transfer", res["transfer"], flush=True)

    pen = {m: penultimate(m, maps) for m in ("attractiveness_scut", "age_utkface")}
    res["penultimate"] = {}
    for m, F in pen.items():
        res["penultimate"][f"{m} alone"] = _score(y, _oof(_svr, F, y, folds))
        res["penultimate"][f"trunk + {m}"] = _score(y, _oof(_svr, np.hstack([feats, F]), y, folds))
    print("penultimate", res["penultimate"], flush=True)
    text = json.dumps(res, indent=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
