"""Probe: does a fine-tuned copy of FaceRes's last stage help a rating set, alone and stacked?

An offline study for the appearance issue (docs/appearance.md), before the recipes get FaceRes
tops. For one rated set (default MEBeauty) it

1. cuts the ``appearance`` stage's crop of every face (the FaceRes manifest entry's chip, from
   the landmarks of the set's chip cache) and keeps FaceRes's map before the first trained
   stage (stage 4's, 14x14x512, for ``--start 5``) of the crop and of its mirror image
   (float16, cached in ``--work-dir``);
2. in the recipes' folds (5-fold KFold, shuffle, seed 0, over the photos with a face) trains a
   copy of FaceRes's last stages (``--start 5``: its last two separable layers; ``4``: stages
   4 and 5) with a new linear output on the standardised mean rating through the project's fit loop
   (``facecore.training.fit``: MSE, AdamW at 3e-4, one-cycle, batch 32; each photo's plain or
   mirrored map drawn at random) and predicts the mean of the
   plain and mirrored maps; each fold's predictions are saved, so an interrupted run resumes;
3. fits an RBF SVR (C 1, gamma ``scale``) on the trunk's and FaceRes's pooled features side by
   side (each block L2-normalised), in the same folds;
4. stacks out-of-fold predictions with a linear regression, itself cross-validated in the same
   folds, and, with ``--recipe-folds``, adds the recipe's fine-tuned dlib top (its fold
   checkpoints' distributions, expectation over the bins).

Prints Pearson r and MAE of each learner and stack, and writes them as JSON with ``--out``.

    .venv/bin/python scripts/faceres_top_probe.py --data ../shared/data --work-dir .cache/attr \\
        [--dataset mebeauty] [--start 5] [--epochs 8] \\
        [--recipe-folds .cache/attr/mebeauty-cv-5f-s0-XXXX] [--out probe.json]

The chips, the trunk features and the FaceRes features are read from the recipes' caches in
``--work-dir`` (``scripts/train_attractiveness_ldl.py --appearance`` writes them).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("faceres_top_probe")

SETS = {"mebeauty": "load_mebeauty", "scut-fbp5500": "load_scut_fbp5500"}
#: The shipped model of each set, for its bins (the recipe's fold checkpoints' distributions).
MODELS = {"mebeauty": "attractiveness_mebeauty", "scut-fbp5500": "attractiveness_scut"}


def stage_maps(dataset, chips, work_dir: Path, stage: int) -> tuple[np.ndarray, np.ndarray]:
    """FaceRes maps at the end of ``stage`` (1-5; stage 4: (n with a face, 512, 14, 14)),
    float16, of the plain and mirrored crops, cached."""
    import torch

    from facecore.appearance import APPEARANCE_MODEL, AppearanceStage
    from facecore.model_router import load
    from facecore.nn.faceres import RGB_MEAN
    from facecore.training.chips import crop_batches

    path = work_dir / f"faceres-stage{stage}-{chips.cache_key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["plain"], z["mirrored"]
    net = load(APPEARANCE_MODEL)
    mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
    plain, mirrored = [], []
    t0 = time.perf_counter()
    for batch in crop_batches(dataset, chips, AppearanceStage().spec, 32):
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() - mean
        with torch.inference_mode():
            for flip, out in ((False, plain), (True, mirrored)):
                out.append(net.forward_stages(x.flip(-1) if flip else x)[stage - 1].half().numpy())
    out = np.concatenate(plain), np.concatenate(mirrored)
    log.info("stage-%d maps of %d faces in %.0f s", stage, len(out[0]), time.perf_counter() - t0)
    np.savez(path, plain=out[0], mirrored=out[1])
    return out


def train_top(
    maps: tuple[np.ndarray, np.ndarray], y: np.ndarray, train, test, epochs: int, start: int
):
    """A copy of FaceRes's stages from ``start`` (4 or 5) + a linear output, trained on
    ``train`` by :func:`facecore.training.fit.fit` (MSE on the standardised rating, each
    sample's plain or mirrored map); predictions on ``test`` (mean of the plain and mirrored
    maps)."""
    import torch
    from torch import nn

    from facecore.appearance import APPEARANCE_MODEL
    from facecore.model_router import load
    from facecore.nn.faceres import _STAGE_ENDS, FaceRes
    from facecore.training.fit import FitConfig, fit

    # A fresh module with a copy of the served weights: the router's network is frozen.
    fresh = FaceRes()
    fresh.load_state_dict(
        {k: v.detach().clone().float() for k, v in load(APPEARANCE_MODEL).state_dict().items()}
    )
    model = nn.Sequential(
        *list(fresh.layers)[_STAGE_ENDS[start - 2] :],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(1024, 1),
        nn.Flatten(0),
    )
    mu, sd = y[train].mean(), y[train].std()
    config = FitConfig(epochs=epochs, batch_size=32, lr=3e-4, loss="custom", seed=0)
    target = ((y[train] - mu) / sd).astype(np.float32)
    fit(
        model,
        maps[0][train],
        target,
        config,
        X_flipped=maps[1][train],
        loss_fn=nn.functional.mse_loss,
    )
    preds = []
    with torch.inference_mode():
        for s in range(0, len(test), 64):
            idx = test[s : s + 64]
            a, b = (model(torch.from_numpy(m[idx]).float()) for m in maps)
            preds.append(((a + b) / 2).numpy())
    return np.concatenate(preds) * sd + mu


def scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "pc": round(float(np.corrcoef(pred, y)[0, 1]), 4),
        "mae": round(float(np.abs(pred - y).mean()), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--dataset", choices=sorted(SETS), default="mebeauty")
    ap.add_argument("--work-dir", type=Path, default=Path(".cache/attr"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--start", type=int, choices=(4, 5), default=5, help="first stage trained")
    ap.add_argument("--recipe-folds", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.preprocessing import normalize
    from sklearn.svm import SVR

    import facecore.datasets as datasets
    from facecore.training.chips import appearance_features, extract_dataset_chips

    ds = getattr(datasets, SETS[args.dataset])(args.data)
    chips = extract_dataset_chips(ds, cache_dir=args.work_dir / "chips")
    y = np.asarray(ds.targets, np.float64)[chips.has_face]
    folds = list(KFold(5, shuffle=True, random_state=0).split(y))
    maps = stage_maps(ds, chips, args.work_dir, args.start - 1)
    probe_dir = args.work_dir / f"faceres-top-probe-{args.dataset}-s{args.start}-e{args.epochs}"
    probe_dir.mkdir(parents=True, exist_ok=True)
    oof = {"faceres-top": np.zeros_like(y), "svr-concat": np.zeros_like(y)}
    plain, mirrored = appearance_features(ds, chips, args.work_dir / "appearance")
    (trunk_file,) = args.work_dir.glob(f"trunk-{chips.cache_key}-*.npy")
    concat = np.hstack([normalize(np.load(trunk_file)), normalize(0.5 * (plain + mirrored))])
    t0 = time.perf_counter()
    for k, (train, test) in enumerate(folds):
        saved = probe_dir / f"fold{k}.npy"
        if not saved.is_file():
            np.save(saved, train_top(maps, y, train, test, args.epochs, args.start))
        oof["faceres-top"][test] = np.load(saved)
        svr = SVR(C=1.0, gamma="scale").fit(concat[train], y[train])
        oof["svr-concat"][test] = svr.predict(concat[test])
        log.info("fold %d: %s", k, scores(oof["faceres-top"][test], y[test]))
    if args.recipe_folds:
        from facecore.model_store import get_spec

        bins = np.asarray(get_spec(MODELS[args.dataset]).outputs[0].bins)
        oof["recipe top-ldl"] = np.zeros_like(y)
        for k in range(5):
            with np.load(args.recipe_folds / f"fold{k}.npz") as z:
                oof["recipe top-ldl"][z["test"]] = z["probs"] @ bins
    report = {name: scores(p, y) for name, p in oof.items()}
    stacks = [("faceres-top", "svr-concat")]
    if args.recipe_folds:
        stacks += [("recipe top-ldl", "svr-concat"), tuple(oof)]
    for names in stacks:
        X = np.column_stack([oof[n] for n in names])
        pred = cross_val_predict(LinearRegression(), X, y, cv=folds)
        report["stack: " + " + ".join(names)] = scores(pred, y)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    for name, row in report.items():
        print(f"{name:<55} {row}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
