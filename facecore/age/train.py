"""Train, cross-validate and ship the UTKFace age model (``age_utkface``).

The transfer recipe of Z. Qawaqneh, A. Abu Mallouh, B. D. Barkana, "Deep Convolutional Neural
Network for Age Estimation based on VGG-Face Model", 2017: start from a network trained for
face recognition and learn age on top of it. Here the face network is dlib's face ResNet (the
shared trunk); two learners are compared in the same 5-fold CV on the photos with a face:

* ``svr-frozen`` - a baseline: RBF support-vector regression of log(1 + age) on the frozen
  trunk's pooled multi-level features (896-D, standardised);
* ``top-ldl`` - a fine-tuned copy of stages 3-5 over the frozen stage-2 map (cached once), with
  a softmax over ages 0..100 trained by KL divergence to a discretised Gaussian around the true
  age (B.-B. Gao et al., "Deep Label Distribution Learning With Label Ambiguity", IEEE TIP 2017).
  A label distribution rather than a mean-variance softmax: the Gaussian says that neighbouring
  ages look alike, which is the main ambiguity of the task, and the predicted distribution gives
  the served 90% interval directly.

Both learners regress towards the mean at the ends of the range (children too old, the old too
young). The deep model's expectation is corrected by an isotonic map and its distribution
widened by a temperature so that the 90% interval covers 90%, both fitted on out-of-fold
predictions. In the CV every fold's map and temperature come from the other four folds'
out-of-fold predictions (cross-fitting), so the reported figures are of data the correction has
not seen. The shipped model is trained on every photo with a face; its correction is fitted on
all out-of-fold predictions.

Outputs: ``<out>.pt`` (:class:`facecore.heads.distribution.TopDistributionModel`), its manifest
entry, ``<out>.cv.json``, the card ``<out>.md`` and its figures ``<out>.*.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore.metrics import cs_at, regression_metrics
from facecore.training.tops import TopRecipe, trunk_features

__all__ = [
    "AGE_BINS",
    "BANDS",
    "LICENCE",
    "REBUILD",
    "AgeData",
    "AgeTrainConfig",
    "age_metrics",
    "band_of",
    "correction",
    "crossfit_correction",
    "cv_fold_dir",
    "load_age_data",
    "main",
]

logger = logging.getLogger(__name__)

#: Bins of the age distribution: whole years 0..100.
AGE_BINS = np.arange(0, 101, dtype=np.float64)
#: The age bands the card reports (inclusive; None: no upper end).
BANDS: tuple[tuple[int, int | None], ...] = (
    (0, 9),
    (10, 19),
    (20, 39),
    (40, 59),
    (60, 79),
    (80, None),
)
LICENCE = "trained on UTKFace: non-commercial research use only"
REBUILD = ".venv/bin/python scripts/train_age.py --data ../shared/data --out models/age_utkface"
#: Temperatures tried by :func:`correction` (tempering a Gaussian by T widens it by sqrt(T)).
_TEMPERATURES = np.round(np.geomspace(1.0, 30.0, 41), 3)


def band_of(age: float) -> str:
    """The band label of an age (``"0-9"``, ..., ``"80+"``)."""
    for lo, hi in BANDS:
        if age >= lo and (hi is None or age < hi + 1):
            return f"{lo}+" if hi is None else f"{lo}-{hi}"
    return f"{BANDS[-1][0]}+"


@dataclass(frozen=True)
class AgeTrainConfig:
    """Settings of the age training.

    Attributes
    ----------
    folds, seed : the CV (``kfold_splits`` stratified by age)
    sigma : float
        Spread in years of the Gaussian label distribution.
    recipe : TopRecipe
        How the deep top is trained.
    svr_c, svr_epsilon : float
        The baseline's SVR settings (on log(1 + age)).
    work_dir : path
        Caches (chips, maps, trunk features) and fold results, resumable.
    stack : bool, default True
        Also evaluate the top stacked with the SVR (:mod:`facecore.ldl.stack`); it ships when its
        cross-validated MAE is the lowest of the served variants.
    int8 : bool, default True
        Ship the top in int8 (:mod:`facecore.nn.quantize`): the shipped figures are then the
        int8 folds' (each fold quantized with ranges from its own training photos).
    """

    folds: int = 5
    seed: int = 0
    sigma: float = 3.0
    recipe: TopRecipe = field(default_factory=TopRecipe)
    svr_c: float = 3.0
    svr_epsilon: float = 0.05
    work_dir: Path = Path(".cache/age")
    int8: bool = True
    stack: bool = True


@dataclass
class AgeData:
    """UTKFace with the cached chips and maps of the photos with a face."""

    dataset: Any
    chips: Any
    rows: np.ndarray
    ages: np.ndarray
    maps: np.ndarray
    maps_flipped: np.ndarray
    data_hash: str

    @property
    def gender(self) -> np.ndarray:
        return np.asarray(self.dataset.meta["gender"])[self.rows]

    @property
    def race(self) -> np.ndarray:
        return np.asarray(self.dataset.meta["race"])[self.rows]


def load_age_data(data_root: str | os.PathLike[str], cache_dir: Path) -> AgeData:
    """UTKFace's photos, their chips (largest face) and stage-2 maps, cached under ``cache_dir``."""
    from facecore.datasets import dataset_hash, load_utkface
    from facecore.training.chips import extract_dataset_chips
    from facecore.training.tops import dataset_maps

    ds = load_utkface(data_root)
    chips = extract_dataset_chips(ds, cache_dir=cache_dir / "chips", progress=False)
    rows = np.flatnonzero(chips.has_face)
    logger.info("UTKFace: %d photos, %d with a face", len(ds), len(rows))
    maps, flipped = dataset_maps(chips, TopRecipe().input_node, cache_dir / "maps")
    return AgeData(
        dataset=ds,
        chips=chips,
        rows=rows,
        ages=np.asarray(ds.targets)[rows],
        maps=maps,
        maps_flipped=flipped,
        data_hash=dataset_hash(ds),
    )


# -- metrics --------------------------------------------------------------------------------------
def age_metrics(
    y: np.ndarray, pred: np.ndarray, intervals: np.ndarray | None = None
) -> dict[str, float]:
    """MAE, RMSE, CS(5) and, with ``intervals`` (N, 2), the share of true ages inside them."""
    m = regression_metrics(y, pred)
    out = {"mae": m["mae"], "rmse": m["rmse"], "cs5": cs_at(y, pred, 5), "n": int(len(y))}
    if intervals is not None:
        inside = (y >= intervals[:, 0]) & (y <= intervals[:, 1])
        out["coverage90"] = float(np.mean(inside))
        out["interval_width"] = float(np.mean(intervals[:, 1] - intervals[:, 0]))
    return out


def _intervals(probs: np.ndarray, mass: float = 0.9) -> np.ndarray:
    from facecore.types import Prediction

    return np.array(
        [Prediction(float(p @ AGE_BINS), "cv", tuple(AGE_BINS), p).interval(mass) for p in probs],
        dtype=np.float64,
    )


# -- correction: temperature + isotonic map of the expectation ----------------------------------
def _apply(
    probs: np.ndarray, t: float, knots: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    from facecore.ldl.distributions import calibrate

    return calibrate(probs, AGE_BINS, t, knots)


def correction(probs: np.ndarray, y: np.ndarray) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """The temperature and isotonic knots fitted on predicted distributions and true ages.

    For each temperature of a grid (1..30, geometric), the expectation of the tempered
    distribution is mapped by isotonic regression onto the true ages; the temperature whose
    corrected 90% intervals cover closest to 90% of ``y`` is chosen.
    """
    from sklearn.isotonic import IsotonicRegression

    best: tuple[float, float, tuple[np.ndarray, np.ndarray]] | None = None
    from facecore.ldl.distributions import temper

    for t in _TEMPERATURES:
        values = temper(probs, float(t)) @ AGE_BINS
        iso = IsotonicRegression(
            y_min=float(AGE_BINS[0]), y_max=float(AGE_BINS[-1]), out_of_bounds="clip"
        )
        iso.fit(values, y)
        knots = (np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))
        cover = float(np.mean(_inside(_apply(probs, float(t), knots)[1], y)))
        gap = abs(cover - 0.9)
        if best is None or gap < best[0] - 1e-9:
            best = (gap, float(t), knots)
    assert best is not None
    return best[1], best[2]


def _inside(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    iv = _intervals(probs)
    return (y >= iv[:, 0]) & (y <= iv[:, 1])


def crossfit_correction(
    probs: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Out-of-fold predictions corrected fold by fold, each by a correction fitted on the
    other folds; returns the values, the distributions and each fold's temperature."""
    values = np.empty(len(probs))
    out = np.empty_like(probs, dtype=np.float64)
    temps = []
    for tr, te in folds:
        t, knots = correction(probs[tr], y[tr])
        values[te], out[te] = _apply(probs[te], t, knots)
        temps.append(t)
    return values, out, temps


# -- learners -------------------------------------------------------------------------------------
def svr_oof(
    feats: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    c: float,
    eps: float,
) -> tuple[np.ndarray, float]:
    """Out-of-fold ages of the frozen-feature SVR baseline, and the total fit time."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    pred = np.empty(len(y))
    t0 = time.perf_counter()
    for tr, te in folds:
        model = make_pipeline(StandardScaler(), SVR(C=c, epsilon=eps, gamma="scale"))
        model.fit(feats[tr], np.log1p(y[tr]))
        pred[te] = np.expm1(model.predict(feats[te]))
    return np.clip(pred, 0, None), time.perf_counter() - t0


# -- tables ---------------------------------------------------------------------------------------
def _rows_by(
    key: np.ndarray, y: np.ndarray, preds: dict[str, np.ndarray], order: list[str]
) -> list[list[Any]]:
    rows = []
    for g in order:
        sel = key == g
        if not sel.any():
            continue
        rows.append(
            [g, int(sel.sum())]
            + [round(float(np.mean(np.abs(p[sel] - y[sel]))), 2) for p in preds.values()]
        )
    return rows


def _scatter_png(path: Path, y: np.ndarray, pred: np.ndarray, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(y, pred, s=3, alpha=0.3)
    ax.plot([0, 100], [0, 100], "k--", lw=1)
    ax.set_xlabel("true age (years)")
    ax.set_ylabel("predicted age (years)")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, 105)
    ax.set_ylim(0, 105)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _band_png(path: Path, table: list[list[Any]], names: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    x = np.arange(len(table))
    w = 0.8 / len(names)
    for j, name in enumerate(names):
        ax.bar(x + j * w, [row[2 + j] for row in table], w, label=name)
    ax.set_xticks(x + w * (len(names) - 1) / 2, [row[0] for row in table])
    ax.set_ylabel("MAE (years)")
    ax.set_xlabel("true age band")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


@dataclass
class AgeTrainResult:
    """What :func:`main` measured and wrote."""

    cv: dict[str, Any]
    model_path: Path
    card_path: Path
    seconds: dict[str, float]


def main(
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: AgeTrainConfig | None = None,
    *,
    device: str = "cpu",
) -> AgeTrainResult:
    """Cross-validate both learners, train the shipped model and write every artefact."""
    from facecore.heads.distribution import TopDistributionModel
    from facecore.ldl.distributions import gaussian_label_distribution
    from facecore.ldl.stack import RbfSvr, crossfit_stack, fit_top_stack
    from facecore.model_store import write_manifest_entry
    from facecore.nn.dlib_resnet import for_inference
    from facecore.training.card import CardTable, ModelCard, package_versions, write_card
    from facecore.training.folds import kfold_splits
    from facecore.training.tops import (
        INT8_CARD_NOTE,
        calibration_maps,
        cross_validated_distributions,
        int8_cross_validated,
        top_manifest_entry,
        train_top,
        write_cv_document,
    )

    cfg = config or AgeTrainConfig()
    out = Path(out)
    work = Path(cfg.work_dir)
    t_all = time.perf_counter()
    data = load_age_data(data_root, work)
    y = data.ages
    n = len(y)
    folds = kfold_splits(n, cfg.folds, cfg.seed, stratify=y)
    targets = gaussian_label_distribution(y, AGE_BINS, cfg.sigma)
    seconds: dict[str, float] = {}

    feats = trunk_features(data.chips, data.rows, work)
    svr_path = (
        work
        / f"svr-{data.chips.cache_key}-{cfg.folds}f-s{cfg.seed}-C{cfg.svr_c}-e{cfg.svr_epsilon}.npz"
    )
    if svr_path.is_file():
        with np.load(svr_path) as z:
            svr_pred, seconds["svr_cv"] = z["pred"], float(z["seconds"])
    else:
        svr_pred, seconds["svr_cv"] = svr_oof(feats, y, folds, cfg.svr_c, cfg.svr_epsilon)
        np.savez(svr_path, pred=svr_pred, seconds=np.float64(seconds["svr_cv"]))
    logger.info("svr-frozen CV MAE %.3f", float(np.mean(np.abs(svr_pred - y))))

    recipe = cfg.recipe
    fold_dir = cv_fold_dir(cfg)
    maps = np.asarray(data.maps)[data.rows]
    maps_flipped = np.asarray(data.maps_flipped)[data.rows]
    views = _jittered_views(data, recipe, work, cfg.seed)
    raw, fold_seconds = cross_validated_distributions(
        maps,
        targets,
        folds,
        recipe,
        maps_flipped=maps_flipped,
        maps_views=views,
        work_dir=fold_dir,
        device=device,
        bins=AGE_BINS,
    )
    seconds["top_cv_per_fold"] = float(np.mean(fold_seconds))
    # What is served: each fold's top in int8 (ranges from its own training photos), unless
    # the config says float32; the float rows stay in the table to show what int8 costs.
    served_raw = raw
    suffix = ""
    if cfg.int8:
        t0 = time.perf_counter()
        served_raw = int8_cross_validated(
            maps, folds, recipe, len(AGE_BINS), work_dir=fold_dir, seed=cfg.seed
        )
        seconds["int8_cv"] = time.perf_counter() - t0
        suffix = ", int8"
    learners = {"svr-frozen": age_metrics(y, svr_pred)}
    preds = {"svr-frozen": svr_pred}
    variants = {"": raw, ", int8": served_raw} if cfg.int8 else {"": raw}
    for tag, probs in variants.items():
        p_pred = probs @ AGE_BINS
        c_pred, c_probs, c_temps = crossfit_correction(probs, y, folds)
        learners[f"top-ldl{tag}"] = age_metrics(y, p_pred, _intervals(probs))
        learners[f"top-ldl + correction{tag}"] = age_metrics(y, c_pred, _intervals(c_probs))
        preds[f"top-ldl{tag}"] = p_pred
        preds[f"top-ldl + correction{tag}"] = c_pred
        if tag == suffix:
            corrected, temps = c_probs, c_temps
    # The served top's distribution stacked with the frozen-feature SVR (facecore.ldl.stack):
    # each fold's weights and temperature fitted on the other folds' out-of-fold predictions.
    stack_name = f"top-ldl + svr stack{suffix}"
    if cfg.stack:
        s_pred, s_probs, s_folds = crossfit_stack(served_raw, svr_pred, y, folds, AGE_BINS)
        learners[stack_name] = age_metrics(y, s_pred, _intervals(s_probs))
        preds[stack_name] = s_pred
    bands = np.array([band_of(a) for a in y])
    band_names = [f"{lo}+" if hi is None else f"{lo}-{hi}" for lo, hi in BANDS]
    band_rows = _rows_by(bands, y, preds, band_names)
    gender_rows = _rows_by(data.gender, y, preds, ["female", "male"])
    race_rows = _rows_by(data.race, y, preds, ["white", "black", "asian", "indian", "other"])
    for name, m in learners.items():
        logger.info("%s: %s", name, {k: round(v, 3) for k, v in m.items()})

    # The shipped model: every photo with a face; correction from all out-of-fold predictions.
    top, final = train_top(
        maps,
        targets,
        recipe,
        maps_flipped=maps_flipped,
        maps_views=views,
        checkpoint_dir=fold_dir / "ckpt-final",
        device=device,
        bins=AGE_BINS,
    )
    # Training time of the epochs (also when they were read back from a checkpoint).
    seconds["final_fit"] = float(sum(r.seconds for r in final.history))
    # What ships: of the served variants, the one with the lowest cross-validated MAE.
    candidates = [f"top-ldl{suffix}", f"top-ldl + correction{suffix}"]
    if cfg.stack:
        candidates.append(stack_name)
    shipped_name = min(candidates, key=lambda k: (learners[k]["mae"], candidates.index(k)))
    use_correction = shipped_name == f"top-ldl + correction{suffix}"
    temperature, knots = correction(served_raw, y) if use_correction else (1.0, None)
    extras: dict[str, Any] = {}
    if shipped_name == stack_name:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR

        svr = make_pipeline(StandardScaler(), SVR(C=cfg.svr_c, epsilon=cfg.svr_epsilon))
        svr.fit(feats, np.log1p(y))
        final_stack = fit_top_stack(served_raw, svr_pred, y, AGE_BINS)
        final_stack = dataclasses.replace(final_stack, svr=RbfSvr.from_pipeline(svr))
        extras = {"stack": final_stack.to_doc()}
        temps = [st.temperature for st in s_folds]
        logger.info(
            "stack: %s, %d support vectors", final_stack.to_doc(False), len(svr[-1].support_)
        )
    shipped_probs = {
        f"top-ldl{suffix}": served_raw,
        f"top-ldl + correction{suffix}": corrected,
        stack_name: s_probs if cfg.stack else None,
    }[shipped_name]
    band_cover = {
        b: round(float(np.mean(_inside(shipped_probs[bands == b], y[bands == b]))), 3)
        for b in band_names
    }
    cv = {
        "protocol": (
            f"{cfg.folds}-fold StratifiedKFold by age (seed {cfg.seed}) on the {n} photos with a "
            f"face (UTKFace, {len(data.dataset)} photos, {len(data.dataset) - n} without a "
            "face); the correction (and the SVR stack) of each fold fitted on the other "
            "folds' out-of-fold predictions"
        ),
        "learners": {k: _round(v) for k, v in learners.items()},
        "bands": {r[0]: dict(zip(["n", *preds], r[1:], strict=True)) for r in band_rows},
        "gender": {r[0]: dict(zip(["n", *preds], r[1:], strict=True)) for r in gender_rows},
        "race": {r[0]: dict(zip(["n", *preds], r[1:], strict=True)) for r in race_rows},
        "coverage90_by_band": band_cover,
        "fold_temperatures": temps,
        "temperature": temperature,
        "stack": {k: v for k, v in extras["stack"].items() if k != "svr"} if extras else None,
        "sigma": cfg.sigma,
        "recipe": recipe.to_dict(),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    shipped = {"protocol": cv["protocol"], **cv["learners"][shipped_name]}
    cv["shipped"] = shipped_name
    model = TopDistributionModel(
        top=for_inference(top),
        bins=tuple(float(b) for b in AGE_BINS),
        calibration=knots,
        temperature=temperature,
        metadata={
            "name": out.name,
            "task": "age",
            "training_data": f"UTKFace ({len(data.dataset)} photos, {n} with a face)",
            "dataset_sha256": data.data_hash,
            "cv": shipped,
            "licence": LICENCE,
            "recipe": recipe.to_dict(),
            "sigma": cfg.sigma,
        },
        extras=extras,
    )
    if cfg.int8:
        model = model.with_int8(calibration_maps(maps, seed=cfg.seed))
    model_path = model.save(out.with_name(out.name + ".pt"))
    logger.info("model written to %s (%.1f MB)", model_path, model_path.stat().st_size / 1e6)

    figs = {
        "scatter": _scatter_png(
            out.with_name(out.name + ".scatter.png"),
            y,
            preds[shipped_name],
            f"{out.name}: out-of-fold predictions ({shipped_name}), n={n}",
        ),
        "bands": _band_png(out.with_name(out.name + ".bands.png"), band_rows, list(preds)),
    }
    write_cv_document(
        out.with_name(out.name + ".cv.json"),
        name=out.name,
        dataset="UTKFace",
        dataset_sha256=data.data_hash,
        n_photos=len(data.dataset),
        n_with_face=n,
        folds=cfg.folds,
        seed=cfg.seed,
        table=cv["learners"],
        chosen=shipped_name,
        model_path=model_path,
        **cv,
    )
    entry = top_manifest_entry(
        out.name,
        model_path,
        "age",
        {
            "name": "age",
            "kind": "distribution",
            "scale": [0, 100],
            "bins": [int(b) for b in AGE_BINS],
        },
        inputs=(
            "Face with features['trunk.stage2'] (the trunk stage's shared stage-2 map of dlib's "
            "150x150 chip); output: a distribution over ages 0..100 years and its expectation"
        ),
        source=(
            "facecore.age.train (scripts/train_age.py): fine-tuned copy of stages "
            f"{recipe.start[-1]}-5 of dlib's face ResNet, Gaussian label distribution "
            f"(sigma {cfg.sigma}) and KL loss (Qawaqneh et al. 2017; Gao et al. 2017)"
        ),
        training_data=(
            f"UTKFace, {len(data.dataset)} photos of shared/data (dataset sha256 "
            f"{data.data_hash}), {n} with a face"
        ),
        licence=LICENCE,
        metrics={"cv": shipped, "bands": cv["bands"]},
        card=out.name + ".md",
        rebuild=REBUILD,
    )
    write_manifest_entry(entry, out.parent)

    learner_rows = [
        [name, m["mae"], m["rmse"], m["cs5"], m.get("coverage90", "")]
        for name, m in cv["learners"].items()
    ]
    card = ModelCard(
        name=out.name,
        summary=(
            "Estimates a face's age in years (0-100) as a distribution over whole years; the "
            "value is made from its expectation (see Model) and the API gives its central 90% "
            "interval. Age is the only demographic estimate facecore makes."
        ),
        licence=LICENCE,
        model=[
            "Transfer from face recognition (Qawaqneh et al. 2017): a fine-tuned copy of stages "
            f"{recipe.start[-1]}-5 of dlib's face ResNet, run from the trunk's shared stage-2 map, "
            "with a softmax over ages 0..100.",
            f"Trained with KL divergence to a discretised Gaussian (sigma {cfg.sigma} years) "
            "around the true age (deep label-distribution learning, Gao et al. 2017): a label "
            "distribution says that neighbouring ages look alike and gives the interval.",
            f"Recipe: {recipe.epochs} epochs, batch {recipe.batch_size}, one-cycle AdamW (peak lr "
            f"{recipe.lr}, weight decay {recipe.weight_decay}), exact flip augmentation from the "
            "mirrored chips' maps"
            + (
                f", and {recipe.jitter} jittered views of every chip (random shift, zoom, "
                "rotation, brightness and contrast; facecore.training.augment), each with its "
                "mirror, a training sample drawn from all of them."
                if recipe.jitter
                else "."
            ),
            _value_note(shipped_name, stack_name, temperature, extras, use_correction),
            f"File: `{model_path.name}` (float16 weights, "
            f"{model_path.stat().st_size / 1e6:.1f} MB)"
            + (f"; {INT8_CARD_NOTE}" if cfg.int8 else "."),
        ],
        training_data=(
            f"UTKFace in `../shared/data/utkface` ({len(data.dataset)} photos).\nDataset sha256 "
            f"`{data.data_hash}`. {n} with a face found by facecore's detector, "
            f"{len(data.dataset) - n} without (left out). Part of UTKFace is held back by the "
            "data's owners for an independent evaluation."
        ),
        evaluation=cv["protocol"] + ".",
        tables=[
            CardTable(
                "Learners (MAE, RMSE in years; CS(5): share within 5 years; coverage of the 90% "
                "interval)",
                ["learner", "MAE", "RMSE", "CS(5)", "90% coverage"],
                learner_rows,
                "{:.3f}",
            ),
            CardTable("MAE by true age band", ["band", "n", *preds], band_rows, "{:.2f}"),
            CardTable("MAE by gender", ["gender", "n", *preds], gender_rows, "{:.2f}"),
            CardTable(
                "MAE by race group (UTKFace's own categories)",
                ["race", "n", *preds],
                race_rows,
                "{:.2f}",
            ),
            CardTable(
                "Coverage of the shipped model's 90% interval by band",
                ["band", "coverage"],
                [[b, c] for b, c in band_cover.items()],
                "{:.3f}",
            ),
        ],
        figures=[
            (
                figs["scatter"].resolve(),
                "Out-of-fold predicted against true age (shipped learner).",
            ),
            (figs["bands"].resolve(), "MAE by true age band, every learner."),
        ],
        evaluation_notes=(
            f"Training on this project's 2-core CPU: one CV fold of the top "
            f"{seconds['top_cv_per_fold'] / 60:.1f} min, the shipped model "
            f"{seconds['final_fit'] / 60:.1f} min; the SVR baseline's 5 folds "
            f"{seconds['svr_cv']:.0f} s. Chips and maps are cached once "
            "(`.cache/age`)."
        ),
        limitations=[
            "UTKFace's ages are partly estimated by its annotators; the photos are frontal "
            "crops, so the error on in-the-wild photos is larger.",
            "Error grows with age: see the band table. The correction and the SVR stack are "
            "fitted to the overall error, not per band; their effect on each band is in the "
            "same table.",
            "Race and gender appear only to report the error per group; the model does not "
            "estimate them and facecore never serves them.",
        ],
        rebuild=REBUILD,
        rebuild_note=(
            "Deterministic on the CPU for a given seed; a run interrupted mid-fold resumes from "
            "the last finished epoch."
        ),
        packages=package_versions(),
    )
    card_path = write_card(card, out.with_name(out.name + ".md"))
    seconds["total"] = time.perf_counter() - t_all
    return AgeTrainResult(cv=cv, model_path=model_path, card_path=card_path, seconds=seconds)


def _jittered_views(data: AgeData, recipe: TopRecipe, work: Path, seed: int) -> Any:
    """The other versions of the faces' maps with ``recipe.jitter`` (mirrored, jittered and
    their mirrors; :func:`facecore.training.tops.dataset_views`), else None."""
    from facecore.training.tops import dataset_views

    if not recipe.jitter:
        return None
    views = dataset_views(data.chips, recipe.input_node, recipe.jitter, work / "maps", seed=seed)
    return [np.asarray(v)[data.rows] for v in views]


def pilot(
    data_root: str | os.PathLike[str],
    config: AgeTrainConfig | None = None,
    k: int = 1,
    *,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train the first ``k`` CV folds of ``config``'s recipe (saved, so the full run resumes
    from them) and compare them, on the same test photos, with every other recipe whose folds
    lie in the work folder: ``{folder: {recipe, folds, mae, cs5, mae_median}}`` (the expectation's
    MAE and CS(5) and the median's MAE, over the test photos of those folds)."""
    from facecore.training.folds import kfold_splits
    from facecore.training.tops import cross_validated_distributions

    cfg = config or AgeTrainConfig()
    if not 1 <= k <= cfg.folds:
        raise ValueError(f"k must be in 1..{cfg.folds}, got {k}")
    from facecore.ldl.distributions import gaussian_label_distribution

    work = Path(cfg.work_dir)
    data = load_age_data(data_root, work)
    y = data.ages
    folds = kfold_splits(len(y), cfg.folds, cfg.seed, stratify=y)[:k]
    recipe = cfg.recipe
    views = _jittered_views(data, recipe, work, cfg.seed)
    cross_validated_distributions(
        np.asarray(data.maps)[data.rows],
        gaussian_label_distribution(y, AGE_BINS, cfg.sigma),
        folds,
        recipe,
        maps_flipped=np.asarray(data.maps_flipped)[data.rows],
        maps_views=views,
        work_dir=cv_fold_dir(cfg),
        device=device,
        bins=AGE_BINS,
    )
    test = np.concatenate([te for _, te in folds])
    prefix = f"cv-{cfg.folds}f-s{cfg.seed}-"
    out: dict[str, Any] = {}
    for folder in sorted(work.glob(prefix + "*")):
        probs = []
        for j, (_, te) in enumerate(folds):
            path = folder / f"fold{j}.npz"
            if not path.is_file():
                break
            with np.load(path) as z:
                if not np.array_equal(z["test"], te):
                    break
                probs.append(z["probs"])
        if len(probs) < k:
            continue
        p = np.concatenate(probs)
        median = AGE_BINS[np.argmax(np.cumsum(p, axis=1) >= 0.5, axis=1)]
        m = age_metrics(y[test], p @ AGE_BINS)
        out[folder.name] = {
            "recipe": json.loads((folder / "recipe.json").read_text())["recipe"],
            "folds": k,
            "mae": round(m["mae"], 4),
            "cs5": round(m["cs5"], 4),
            "mae_median": round(float(np.mean(np.abs(median - y[test]))), 4),
        }
    return out


def _value_note(
    shipped: str, stack_name: str, temperature: float, extras: dict[str, Any], corrected: bool
) -> str:
    """The card's sentence on how the served age is made from the top's distribution."""
    if shipped == stack_name:
        st = extras["stack"]
        n_sv = len(st["svr"]["support"])
        return (
            "Value: a least-absolute-deviation stack of the distribution's expectation and an "
            f"RBF SVR on the frozen trunk features (log-age; {n_sv} support vectors, float16 in "
            f"the file): age = {st['intercept']:.3f} + {st['coef'][0]:.3f} x E[top] + "
            f"{st['coef'][1]:.3f} x SVR, weights fitted on out-of-fold predictions "
            "(facecore.ldl.stack); the distribution is tempered by "
            f"T={st['temperature']:.3f} (90% interval coverage) and translated to that age. "
            "The stack was chosen because its cross-fitted CV MAE is the lowest of the served "
            "variants below."
        )
    if corrected:
        return (
            f"Correction: the distribution tempered by T={temperature} and shifted so that "
            "its expectation follows an isotonic map fitted on out-of-fold predictions "
            "(corrects the regression to the mean at both ends of the age range)."
        )
    return (
        "No correction: the cross-fitted isotonic correction did not lower the CV MAE, so the "
        "expectation is served as it is."
    )


def cv_fold_dir(cfg: AgeTrainConfig) -> Path:
    """Where the cross-validation of ``cfg``'s top keeps its fold results and checkpoints."""
    tag = _recipe_tag(cfg.recipe)
    return Path(cfg.work_dir) / f"cv-{cfg.folds}f-s{cfg.seed}-sigma{cfg.sigma}-{tag}"


def _recipe_tag(recipe: TopRecipe) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(recipe.to_dict(), sort_keys=True).encode()).hexdigest()[:8]


def _round(m: dict[str, float]) -> dict[str, float]:
    return {k: (v if isinstance(v, int) else round(float(v), 4)) for k, v in m.items()}
