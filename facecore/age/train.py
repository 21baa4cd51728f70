"""The recipe of the UTKFace age model (``age_utkface``), run by :mod:`facecore.training.runner`.

Z. Qawaqneh, A. Abu Mallouh, B. D. Barkana, "Deep Convolutional Neural Network for Age
Estimation based on VGG-Face Model", 2017 (learn age on top of a face-recognition network; here
dlib's face ResNet), with B.-B. Gao et al., "Deep Label Distribution Learning With Label
Ambiguity", IEEE TIP 2017 (KL to a discretised Gaussian around the true age). The learners
compared and the rule are described in ``docs/training.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facecore.metrics import cs_at, regression_metrics
from facecore.training.distribution_recipe import FILE_LINE, DistributionRecipe, value_note
from facecore.training.learners import (
    IsotonicCorrection,
    central_intervals,
    coverage,
    log_target_svr,
)
from facecore.training.publish import CardTable, Figure, GroupTable
from facecore.training.runner import Data, Learner, OutOfFold, Run, config_tag, out_of_fold
from facecore.training.tops import TopRecipe

__all__ = ["AGE_BINS", "LICENCE", "REBUILD", "AgeRecipe", "age_metrics", "band_of", "pilot"]

#: Bins of the age distribution: whole years 0..100.
AGE_BINS = np.arange(0, 101, dtype=np.float64)
#: The age bands the card reports, and the first age of each.
BAND_NAMES = ("0-9", "10-19", "20-39", "40-59", "60-79", "80+")
BAND_STARTS = (0, 10, 20, 40, 60, 80)
RACES = ("white", "black", "asian", "indian", "other")
LICENCE = "trained on UTKFace: non-commercial research use only"
REBUILD = ".venv/bin/python scripts/train_age.py --data ../shared/data --out models/age_utkface"


def band_of(age: float) -> str:
    """The band label of an age (``"0-9"``, ..., ``"80+"``)."""
    return BAND_NAMES[max(int(np.searchsorted(BAND_STARTS, age, side="right")) - 1, 0)]


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


@dataclass(frozen=True)
class AgeRecipe(DistributionRecipe):
    """Settings: the CV (``folds``, ``seed``), the label spread ``sigma`` (years), the top's
    ``top`` recipe, the SVR's ``svr_c`` / ``svr_epsilon`` and the
    :class:`~facecore.training.distribution_recipe.DistributionRecipe` fields."""

    name: str = "age_utkface"
    stratify: bool = True
    sigma: float = 3.0
    svr_c: float = 3.0
    svr_epsilon: float = 0.05
    work_dir: Path = Path(".cache/age")
    licence, rebuild, bins, task = LICENCE, REBUILD, AGE_BINS, "age"
    protocol = (
        "{folds}-fold StratifiedKFold by age (seed {seed}) on the {n} photos with a face "
        "(UTKFace, {n_photos} photos, {n_without} without a face); the correction (and the SVR "
        "stack) of each fold fitted on the other folds' out-of-fold predictions"
    )
    columns = (("MAE", "mae"), ("RMSE", "rmse"), ("CS(5)", "cs5"), ("90% coverage", "coverage90"))
    table_title = (
        "Learners (MAE, RMSE in years; CS(5): share within 5 years; coverage of the 90% interval)"
    )
    table_format = "{:.3f}"
    group_tables = (
        GroupTable("bands", "band", "MAE by true age band", BAND_NAMES, entry=True),
        GroupTable("gender", "gender", "MAE by gender", ("female", "male")),
        GroupTable("race", "race", "MAE by race group (UTKFace's own categories)", RACES),
    )
    figures = (
        Figure(
            "scatter",
            "scatter",
            "Out-of-fold predicted against true age (shipped learner).",
            {
                "title": "{name}: out-of-fold predictions ({chosen}), n={n}",
                "labels": ("true age (years)", "predicted age (years)"),
                "limits": (0, 100),
            },
        ),
        Figure(
            "bands",
            "group_bars",
            "MAE by true age band, every learner.",
            {"table": "bands", "xlabel": "true age band", "ylabel": "MAE (years)"},
        ),
    )
    card_text = {
        "summary": (
            "Estimates a face's age in years (0-100) as a distribution over whole years; the "
            "value is made from its expectation (see Model) and the API gives its central 90% "
            "interval. Age is the only demographic estimate facecore makes."
        ),
        "model": (
            "Transfer from face recognition (Qawaqneh et al. 2017): a fine-tuned copy of stages "
            "{first_stage}-5 of dlib's face ResNet, run from the trunk's shared stage-2 map, "
            "with a softmax over ages 0..100.",
            "Trained with KL divergence to a discretised Gaussian (sigma {recipe.sigma} years) "
            "around the true age (deep label-distribution learning, Gao et al. 2017): a label "
            "distribution says that neighbouring ages look alike and gives the interval.",
            "Recipe: {recipe.top.epochs} epochs, batch {recipe.top.batch_size}, one-cycle AdamW "
            "(peak lr {recipe.top.lr}, weight decay {recipe.top.weight_decay}"
            "{recipe.top.clip_note}), exact flip "
            "augmentation from the mirrored chips' maps.",
            "{value_note}",
            FILE_LINE,
        ),
        "training_data": (
            "UTKFace in `../shared/data/utkface` ({n_photos} photos).\nDataset sha256 "
            "`{data_hash}`. {n} with a face found by facecore's detector, {n_without} without "
            "(left out). Part of UTKFace is held back by the data's owners for an independent "
            "evaluation."
        ),
        "evaluation": "{protocol}.",
        "evaluation_notes": (
            "Training on this project's 2-core CPU: one CV fold of the top {fold_min:.1f} min, "
            "the shipped model {final_min:.1f} min; the SVR baseline's 5 folds {svr_s:.0f} s. "
            "Chips and maps are cached once (`.cache/age`)."
        ),
        "limitations": (
            "UTKFace's ages are partly estimated by its annotators; the photos are frontal "
            "crops, so the error on in-the-wild photos is larger.",
            "Error grows with age: see the band table. The correction and the SVR stack are "
            "fitted to the overall error, not per band; their effect on each band is in the "
            "same table.",
            "Race and gender appear only to report the error per group; the model does not "
            "estimate them and facecore never serves them.",
        ),
        "rebuild_note": (
            "Deterministic on the CPU for a given seed; a run interrupted mid-fold resumes from "
            "the last finished epoch."
        ),
    }

    @property
    def fold_dir(self) -> Path:
        """The top's fold results and checkpoints (keyed by its recipe)."""
        tag = config_tag(self.top.to_dict())
        return Path(self.work_dir) / f"cv-{self.folds}f-s{self.seed}-sigma{self.sigma}-{tag}"

    def top_folder(self, top: TopRecipe, data: Data) -> Path:
        return self.fold_dir

    def make_correction(self) -> IsotonicCorrection:
        return IsotonicCorrection(AGE_BINS)

    def make_svr(self, n_features: int) -> Any:
        return log_target_svr(self.svr_c, self.svr_epsilon)

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        from facecore.datasets import dataset_hash, load_utkface
        from facecore.ldl.distributions import gaussian_label_distribution
        from facecore.training.chips import extract_dataset_chips
        from facecore.training.tops import trunk_features

        work = Path(self.work_dir)
        ds = load_utkface(data_root)
        chips = extract_dataset_chips(ds, cache_dir=work / "chips")
        rows = np.flatnonzero(chips.has_face)
        y = np.asarray(ds.targets)[rows]
        return Data(
            y=y,
            targets=gaussian_label_distribution(y, AGE_BINS, self.sigma),
            features={
                "trunk": trunk_features(chips, rows, work),
                **self.appearance_inputs(ds, chips, rows),
            },
            groups={
                "band": np.array([band_of(a) for a in y]),
                "gender": np.asarray(ds.meta["gender"])[rows],
                "race": np.asarray(ds.meta["race"])[rows],
            },
            title="UTKFace",
            n_photos=len(ds),
            data_hash=dataset_hash(ds),
            extra=self.top_inputs(chips, rows),
        )

    def learners(self, run: Run) -> list[Learner]:
        svrs = self.svr_learners(run, post=lambda v: np.clip(v, 0, None))
        return [*svrs, *self.top_learners(run), *self.stack_learners()]

    def metrics(self, run: Run, oof: OutOfFold) -> dict[str, Any]:
        p = oof.distributions
        iv = None if p is None else central_intervals(p, AGE_BINS)
        return age_metrics(run.data.y, oof.values, iv)

    def choose(self, run: Run) -> str:
        """Of the served variants, the lowest cross-validated MAE (ties: the simpler)."""
        names = self.candidates()
        return min(names, key=lambda k: (run.table[k]["mae"], names.index(k)))

    def ship(self, run: Run, out: Path) -> Any:
        data, chosen, suffix = run.data, run.chosen, self.suffix
        y, (corr, stack, _) = data.y, self.fit_served(run)
        temperature, knots = (1.0, None) if corr is None else (corr.temperature_, corr.knots_)
        temps = [e.temperature_ for e in run.oof[f"top-ldl + correction{suffix}"].estimators if e]
        if stack:
            temps = [e.stack_.temperature for e in run.oof[chosen].estimators if e]
        bands, probs = data.groups["band"], run.oof[chosen].distributions
        cover = {
            b: round(coverage(probs[bands == b], AGE_BINS, y[bands == b]), 3) for b in BAND_NAMES
        }
        note = value_note(VALUE_NOTES, stack, knots is not None)
        first = self.top.start[-1]
        return self.ship_tops(
            run,
            out,
            output={"name": "age", "kind": "distribution", "scale": [0, 100],
                    "bins": [int(b) for b in AGE_BINS]},
            inputs=(
                "Face with features['trunk.stage2'] (the trunk stage's shared stage-2 map of "
                "dlib's 150x150 chip); output: a distribution over ages 0..100 years and its "
                "expectation"
            ),
            source=(
                f"facecore.age.train (scripts/train_age.py): fine-tuned copy of stages {first}-5 "
                f"of dlib's face ResNet, Gaussian label distribution (sigma {self.sigma}) and KL "
                "loss (Qawaqneh et al. 2017; Gao et al. 2017)"
            ),
            stack=stack,
            model={"calibration": knots, "temperature": temperature},
            metadata={"sigma": self.sigma},
            cv={
                "coverage90_by_band": cover,
                "fold_temperatures": temps,
                "temperature": temperature,
                "sigma": self.sigma,
            },
            fields={
                "first_stage": first,
                "value_note": note.format(temperature=temperature),
                "fold_min": np.mean(run.oof[self.top_learner].seconds) / 60,
                "svr_s": sum(run.oof["svr-frozen"].seconds),
            },
            tables=[
                CardTable(
                    "Coverage of the shipped model's 90% interval by band",
                    ["band", "coverage"],
                    [[b, c] for b, c in cover.items()],
                    "{:.3f}",
                )
            ],
        )  # fmt: skip


#: The card's sentence on how the served age is made from the top's distribution.
VALUE_NOTES = {
    "stack": (
        "Value: a least-absolute-deviation stack of the distribution's expectation and an "
        "RBF SVR on {svr_inputs} (log-age; {n_support} support vectors, float16 "
        "in the file): age = {intercept:.3f} + {c[0]:.3f} x E[top] + {c[1]:.3f} x SVR, weights "
        "fitted on out-of-fold predictions (facecore.ldl.stack); the distribution is tempered "
        "by T={temperature:.3f} (90% interval coverage) and translated to that age. The stack "
        "was chosen because its cross-fitted CV MAE is the lowest of the served variants below."
    ),
    "correction": (
        "Correction: the distribution tempered by T={temperature} and shifted so that its "
        "expectation follows an isotonic map fitted on out-of-fold predictions (corrects the "
        "regression to the mean at both ends of the age range)."
    ),
    "none": (
        "No correction: the cross-fitted isotonic correction did not lower the CV MAE, so the "
        "expectation is served as it is."
    ),
}


def pilot(
    data_root: str | os.PathLike[str], recipe: AgeRecipe, k: int = 1, *, device: str = "cpu"
) -> dict[str, Any]:
    """Train (or read) the first ``k`` CV folds of ``recipe``'s top, kept so that the full run
    resumes from them: ``{folder, folds, mae, cs5}`` of the expectation over those folds' test
    photos (two recipes' pilots are compared on the same photos)."""
    if not 1 <= k <= recipe.folds:
        raise ValueError(f"k must be in 1..{recipe.folds}, got {k}")
    data = recipe.load(data_root)
    run = Run(recipe, data, recipe.folds_of(data)[:k], device)
    top = next(ln for ln in recipe.learners(run) if ln.name == recipe.top_learner)
    X, y = run.inputs(top.inputs), data.y
    oof = out_of_fold(top.make(run), X, data.targets, run.folds, cache_dir=recipe.fold_dir)
    test = np.concatenate([te for _, te in run.folds])
    m = age_metrics(y[test], oof.values[test])
    return {"folder": recipe.fold_dir.name, "folds": k} | {
        key: round(m[key], 4) for key in ("mae", "cs5")
    }
