"""The recipe of the UTKFace age model (``age_utkface``), run by :mod:`facecore.training.runner`.

Z. Qawaqneh, A. Abu Mallouh, B. D. Barkana, "Deep Convolutional Neural Network for Age
Estimation based on VGG-Face Model", 2017 (learn age on top of a face-recognition network; here
dlib's face ResNet), with B.-B. Gao et al., "Deep Label Distribution Learning With Label
Ambiguity", IEEE TIP 2017 (KL to a discretised Gaussian around the true age). The learners
compared and the rule are described in ``docs/training.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore.metrics import cs_at, regression_metrics
from facecore.training.learners import central_intervals, coverage
from facecore.training.publish import Figure, GroupTable
from facecore.training.runner import Data, Learner, OutOfFold, Recipe, Run, config_tag, out_of_fold
from facecore.training.tops import FILE_LINE, TopRecipe

__all__ = [
    "AGE_BINS",
    "BANDS",
    "LICENCE",
    "REBUILD",
    "AgeRecipe",
    "age_metrics",
    "band_of",
    "pilot",
]

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
BAND_NAMES = tuple(f"{lo}+" if hi is None else f"{lo}-{hi}" for lo, hi in BANDS)
LICENCE = "trained on UTKFace: non-commercial research use only"
REBUILD = ".venv/bin/python scripts/train_age.py --data ../shared/data --out models/age_utkface"


def band_of(age: float) -> str:
    """The band label of an age (``"0-9"``, ..., ``"80+"``)."""
    for (lo, hi), name in zip(BANDS, BAND_NAMES, strict=True):
        if age >= lo and (hi is None or age < hi + 1):
            return name
    return BAND_NAMES[-1]


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
class AgeRecipe(Recipe):
    """Settings: the CV (``folds``, ``seed``), the label spread ``sigma`` (years), the top's
    ``top`` recipe, the SVR's ``svr_c`` / ``svr_epsilon``, ``int8`` (ship the int8 top; its
    folds' figures are the shipped ones) and ``stack`` (compare the SVR stack)."""

    name: str = "age_utkface"
    folds: int = 5
    seed: int = 0
    stratify: bool = True
    sigma: float = 3.0
    top: TopRecipe = field(default_factory=TopRecipe)
    svr_c: float = 3.0
    svr_epsilon: float = 0.05
    work_dir: Path = Path(".cache/age")
    int8: bool = True
    stack: bool = True
    #: The learner that is the float fine-tuned top (what other recipes read per fold).
    top_learner = "top-ldl"
    licence, rebuild, bins = LICENCE, REBUILD, AGE_BINS
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
        GroupTable(
            "race",
            "race",
            "MAE by race group (UTKFace's own categories)",
            ("white", "black", "asian", "indian", "other"),
        ),
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
            "augmentation from the mirrored chips' maps{jitter}",
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

    @property
    def suffix(self) -> str:
        return ", int8" if self.int8 else ""

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        from facecore.datasets import dataset_hash, load_utkface
        from facecore.ldl.distributions import gaussian_label_distribution
        from facecore.training.chips import extract_dataset_chips
        from facecore.training.tops import dataset_maps, dataset_views, trunk_features

        work = Path(self.work_dir)
        ds = load_utkface(data_root)
        chips = extract_dataset_chips(ds, cache_dir=work / "chips")
        rows = np.flatnonzero(chips.has_face)
        y = np.asarray(ds.targets)[rows]
        maps, flipped = dataset_maps(chips, self.top.input_node, work / "maps")
        views = None
        if self.top.jitter:
            all_views = dataset_views(
                chips, self.top.input_node, self.top.jitter, work / "maps", seed=self.seed
            )
            views = [np.asarray(v)[rows] for v in all_views]
        return Data(
            y=y,
            targets=gaussian_label_distribution(y, AGE_BINS, self.sigma),
            features={"feats": trunk_features(chips, rows, work)},
            groups={
                "band": np.array([band_of(a) for a in y]),
                "gender": np.asarray(ds.meta["gender"])[rows],
                "race": np.asarray(ds.meta["race"])[rows],
            },
            title="UTKFace",
            n_photos=len(ds),
            data_hash=dataset_hash(ds),
            extra={
                "rows": rows,
                "maps": np.asarray(maps)[rows],
                "flipped": np.asarray(flipped)[rows],
                "views": views,
            },
        )

    def learners(self, run: Run) -> list[Learner]:
        from facecore.training.learners import (
            Int8Top,
            IsotonicCorrection,
            SvrStack,
            TopRegressor,
            log_target_svr,
        )

        x = run.data.extra
        top = {"recipe": self.top, "bins": AGE_BINS, "maps": x["maps"]}
        out = [
            Learner(
                "svr-frozen",
                lambda r: log_target_svr(self.svr_c, self.svr_epsilon),
                ("feats",),
                post=lambda v: np.clip(v, 0, None),
            ),
            Learner(
                "top-ldl",
                lambda r: TopRegressor(
                    **top, maps_flipped=x["flipped"], maps_views=x["views"], device=r.device
                ),
                ("rows",),
                "targets",
                cache=lambda r: self.fold_dir,
            ),
            Learner("top-ldl + correction", lambda r: IsotonicCorrection(AGE_BINS), ("top-ldl",)),
        ]
        if self.int8:
            out += [
                Learner(
                    "top-ldl, int8",
                    lambda r: Int8Top(**top, seed=self.seed),
                    ("rows",),
                    "targets",
                    cache=lambda r: self.fold_dir,
                ),
                Learner(
                    "top-ldl + correction, int8",
                    lambda r: IsotonicCorrection(AGE_BINS),
                    ("top-ldl, int8",),
                ),
            ]
        if self.stack:
            out.append(
                Learner(
                    f"top-ldl + svr stack{self.suffix}",
                    lambda r: SvrStack(AGE_BINS),
                    (f"top-ldl{self.suffix}", "svr-frozen"),
                )
            )
        return out

    def metrics(self, run: Run, oof: OutOfFold) -> dict[str, Any]:
        p = oof.distributions
        iv = None if p is None else central_intervals(p, AGE_BINS)
        return age_metrics(run.data.y, oof.values, iv)

    def candidates(self) -> list[str]:
        """The served variants the rule chooses from."""
        names = [f"top-ldl{self.suffix}", f"top-ldl + correction{self.suffix}"]
        return names + ([f"top-ldl + svr stack{self.suffix}"] if self.stack else [])

    def choose(self, run: Run) -> str:
        """Of the served variants, the lowest cross-validated MAE (ties: the simpler)."""
        names = self.candidates()
        return min(names, key=lambda k: (run.table[k]["mae"], names.index(k)))

    def ship(self, run: Run, out: Path) -> Any:
        from facecore.training.learners import (
            IsotonicCorrection,
            SvrStack,
            final_stack,
            log_target_svr,
        )
        from facecore.training.publish import CardTable
        from facecore.training.tops import calibration_maps, ship_tops, stack_note

        data, x, chosen, suffix = run.data, run.data.extra, run.chosen, self.suffix
        y, served = data.y, run.oof[f"top-ldl{suffix}"].distributions
        temperature, knots, stack = 1.0, None, None
        temps = [e.temperature_ for e in run.oof[f"top-ldl + correction{suffix}"].estimators if e]
        if chosen == f"top-ldl + correction{suffix}":
            corr = IsotonicCorrection(AGE_BINS).fit(served, y)
            temperature, knots = corr.temperature_, corr.knots_
        elif chosen == f"top-ldl + svr stack{suffix}":
            svr = log_target_svr(self.svr_c, self.svr_epsilon).fit(data.features["feats"], y)
            inputs = run.inputs((f"top-ldl{suffix}", "svr-frozen"))
            stack = final_stack(SvrStack(AGE_BINS), inputs, y, svr.regressor_, True)
            temps = [e.stack_.temperature for e in run.oof[chosen].estimators if e]
        bands, probs = data.groups["band"], run.oof[chosen].distributions
        cover = {
            b: round(coverage(probs[bands == b], AGE_BINS, y[bands == b]), 3) for b in BAND_NAMES
        }
        if stack:
            note = stack_note(VALUE_NOTES["stack"], stack)
        else:
            note = VALUE_NOTES["correction" if knots is not None else "none"]
        first = self.top.start[-1]
        return ship_tops(
            run,
            out,
            [(self.top, x["maps"], x["flipped"], x["views"], self.fold_dir)],
            task="age",
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
            rebuild=REBUILD,
            int8_maps=calibration_maps(x["maps"], seed=self.seed) if self.int8 else None,
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
                "jitter": JITTER_NOTE.format(self.top.jitter) if self.top.jitter else ".",
                "value_note": note.format(temperature=temperature),
                "fold_min": np.mean(run.oof["top-ldl"].seconds) / 60,
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


#: The card's sentence on jittered views (``{}``: their number).
JITTER_NOTE = (
    ", and {} jittered views of every chip (random shift, zoom, rotation, brightness and "
    "contrast; facecore.training.augment), each with its mirror, a training sample drawn from "
    "all of them."
)
#: The card's sentence on how the served age is made from the top's distribution.
VALUE_NOTES = {
    "stack": (
        "Value: a least-absolute-deviation stack of the distribution's expectation and an "
        "RBF SVR on the frozen trunk features (log-age; {n_support} support vectors, float16 "
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
    top = next(ln for ln in recipe.learners(run) if ln.name == "top-ldl")
    X, y = run.inputs(top.inputs), data.y
    oof = out_of_fold(top.make(run), X, data.targets, run.folds, cache_dir=recipe.fold_dir)
    test = np.concatenate([te for _, te in run.folds])
    m = age_metrics(y[test], oof.values[test])
    return {"folder": recipe.fold_dir.name, "folds": k} | {
        key: round(m[key], 4) for key in ("mae", "cs5")
    }
