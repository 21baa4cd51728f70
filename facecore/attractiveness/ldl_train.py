"""The recipes of the rating-distribution attractiveness models (SCUT-FBP5500, MEBeauty).

Y. Fan, S. Liu, B. Li, Z. Guo, A. Samal, J. Wan, S. Z. Li, "Label Distribution-Based Facial
Attractiveness Computation by Deep Residual Learning", IEEE Trans. Multimedia 2018: fine-tune a
face-pretrained ResNet with a KL loss on rating distributions (the score is the expectation) and
fuse the deep output with geometric features. Departure: SCUT-FBP5500's targets are
label-enhanced with the spread of MEBeauty's individual ratings (:func:`label_sigma`). The
targets, the learners compared and the rule are described in ``docs/training.md``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from facecore.training.distribution_recipe import FILE_LINE, DistributionRecipe, value_note
from facecore.training.learners import _Combiner, svr_search
from facecore.training.publish import Figure, GroupTable, rounded
from facecore.training.runner import Data, Learner, OutOfFold, Run, config_tag
from facecore.training.tops import TopRecipe

__all__ = [
    "DATASETS",
    "FUSION_GAIN",
    "SVR_GRID",
    "GeometricFusion",
    "LdlDataset",
    "LdlRecipe",
    "label_sigma",
    "member_recipe",
]

#: The least CV Pearson gain for which the geometric fusion is shipped.
FUSION_GAIN = 0.002


@dataclass(frozen=True)
class LdlDataset:
    """A rated face set and how its model is named and trained."""

    name: str
    title: str
    default_out: str
    bins: tuple[float, ...]
    licence: str
    #: The shipped model's extra tops (``START:SEED`` each; averaged with the main top).
    members: tuple[str, ...] = ()


DATASETS = {
    "mebeauty": LdlDataset(
        "mebeauty",
        "MEBeauty",
        "models/attractiveness_mebeauty",
        tuple(float(b) for b in range(1, 11)),
        "trained on MEBeauty: non-commercial research use only",
    ),
    "scut-fbp5500": LdlDataset(
        "scut-fbp5500",
        "SCUT-FBP5500",
        "models/attractiveness_scut",
        tuple(float(b) for b in np.arange(1.0, 5.01, 0.5)),
        "trained on SCUT-FBP5500 (label spread from MEBeauty): non-commercial research use only",
        members=("stage4:0",),
    ),
}


def member_recipe(recipe: TopRecipe, text: str) -> TopRecipe:
    """``recipe`` with the start and seed of ``"START:SEED"`` (e.g. ``"stage4:0"``).

    Raises
    ------
    ValueError
        If ``text`` is not of that form.
    """
    start, sep, seed = text.partition(":")
    if start not in ("stage1", "stage2", "stage3", "stage4", "stage5") or not seed.isdigit():
        raise ValueError(f"an extra top is START:SEED with START stage1..stage5, got {text!r}")
    return dataclasses.replace(recipe, start=start, seed=int(seed))


def label_sigma(data_root: str | os.PathLike[str]) -> float:
    """The spread of individual ratings, from MEBeauty, on SCUT-FBP5500's 1-5 scale: the median
    over faces of the standard deviation of a face's ratings, times 4/9."""
    from facecore.datasets import load_mebeauty

    ds = load_mebeauty(data_root)
    m = ds.ratings.matrix(len(ds))
    enough = np.sum(np.isfinite(m), axis=1) >= 5
    sd = np.nanstd(m[enough], axis=1, ddof=1)
    return float(np.median(sd) * 4.0 / 9.0)


#: The frozen-feature SVR's epsilon (on the rating itself; standardised features).
SVR_EPSILON = 0.05
#: (C, gamma x D) pairs the SVR's settings are chosen from, by an inner 3-fold CV inside each
#: training set (D: the number of features; gamma 1/D is scikit-learn's "scale" on
#: standardised features). gamma 0.5/D won every inner CV of a wider grid (C 1, 2, 4 x gamma
#: 0.5/D, 1/D) on SCUT-FBP5500; the grid keeps only it, to keep the fits few.
SVR_GRID = tuple((c, 0.5) for c in (1.0, 2.0, 4.0))


class GeometricFusion(_Combiner):
    """Ridge regression of the rating on the deep expectation and the 42 geometric landmark
    features (standardised; strength by leave-one-out GCV), the fusion of Fan et al. (IEEE TMM
    2018); the value is clipped to the bins and the distribution translated to it.
    ``X``: ``[distributions (N, K) | geometric features (N, G)]``."""

    def __init__(self, bins: tuple[float, ...] = ()) -> None:
        self.bins = bins

    def fit(self, X: np.ndarray, y: np.ndarray) -> GeometricFusion:
        from sklearn.linear_model import RidgeCV

        probs, geo = self._split(X)
        Z = np.column_stack([probs @ np.asarray(self.bins, np.float64), geo])
        mean, scale = Z.mean(0), Z.std(0)
        scale[scale == 0] = 1.0
        ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit((Z - mean) / scale, y)
        self.fusion_ = {
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": np.asarray(ridge.coef_).tolist(),
            "intercept": float(ridge.intercept_),
            "alpha": float(ridge.alpha_),
        }
        return self

    def _apply(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from facecore.attractiveness.ldl_model import apply_fusion
        from facecore.ldl.distributions import move_distributions

        probs, geo = self._split(X)
        b = np.asarray(self.bins, np.float64)
        values = np.clip(apply_fusion(self.fusion_, probs @ b, geo), b[0], b[-1])
        return values, move_distributions(probs, b, values)


@dataclass(frozen=True)
class LdlRecipe(DistributionRecipe):
    """The recipe of ``dataset`` (a key of :data:`DATASETS`): the CV (``folds``, ``seed``), the
    main ``top``, the ensemble's ``members`` (None: the dataset's default) and the
    :class:`~facecore.training.distribution_recipe.DistributionRecipe` fields."""

    dataset: str = "scut-fbp5500"
    work_dir: Path = Path(".cache/attractiveness")
    members: tuple[TopRecipe, ...] | None = None
    task, correction, correction_inputs = "attractiveness", "geometric", ("geo",)
    stack_tempered = False
    protocol = (
        "{folds}-fold KFold(shuffle=True, random_state={seed}) on the {n} photos with a face "
        "({title}, {n_photos} photos); targets: {extra[rule]}"
    )
    columns = tuple(
        (c.upper() if c in ("pc", "mae", "rmse") else c, c)
        for c in ("pc", "mae", "rmse", "chebyshev", "clark", "canberra", "kl", "cosine")
    ) + (("intersection", "intersection"),)
    table_title = "Learners in the same folds"
    group_tables = (
        GroupTable(
            "per_group", "group", "Shipped learner ({chosen}) per group", None, "shipped", True
        ),
    )
    figures = (
        Figure(
            "scatter",
            "scatter",
            "Out-of-fold predicted against rated score, per group.",
            {"title": "{name}: out-of-fold predictions ({chosen})", "by": "group"},
        ),
        Figure(
            "distributions",
            "distributions",
            "Five faces across the range: target distribution against the out-of-fold prediction.",
        ),
    )
    card_text = {
        "summary": (
            "Attractiveness on {title}'s rating scale ({lo:g}-{hi:g}) as a distribution over its "
            "rating values; the value is the expectation{fused}. It says how the raters of this "
            "dataset would rate a face, nothing more."
        ),
        "model": (
            "{tops} of dlib's face ResNet over the trunk's shared maps, softmax over the rating "
            "values, KL loss on rating distributions (Fan et al., IEEE TMM 2018){ensemble}",
            "Targets: {extra[rule]}.",
            "Recipe: {recipe.top.epochs} epochs, batch {recipe.top.batch_size}, one-cycle AdamW "
            "(peak lr {recipe.top.lr}{recipe.top.clip_note}), exact flip augmentation.",
            "{value_note}",
            FILE_LINE,
        ),
        "training_data": (
            "{title} in `../shared/data` ({n_photos} photos).\nDataset sha256 `{data_hash}`. "
            "{n} with a face and a target. Part of the set is held back by the data's owners "
            "for an independent evaluation."
        ),
        "evaluation": (
            "{protocol}. PC, MAE and RMSE compare the predicted value with the published mean "
            "score; the six LDL measures compare the predicted distribution with the target "
            "distribution. The learners on trunk features are standardised per training fold."
        ),
        "evaluation_notes": (
            "Training on this project's 2-core CPU: the top's {folds} CV folds {top_min:.1f} min "
            "in all, the shipped model {final_min:.1f} min (chips and maps cached once)."
        ),
        "limitations": (
            "A rating is a judgement of the dataset's raters about its photos: it is not a "
            "property of the person, and it does not transfer to other populations or photo "
            "styles without a drop in agreement.",
            "Never use it to make decisions about people.",
        ),
        "rebuild_note": "Deterministic on the CPU for a given seed; interrupted runs resume.",
    }

    @property
    def spec(self) -> LdlDataset:
        return DATASETS[self.dataset]

    @property
    def name(self) -> str:  # type: ignore[override]
        return Path(self.spec.default_out).name

    @property
    def bins(self) -> tuple[float, ...]:
        return self.spec.bins

    @property
    def licence(self) -> str:  # type: ignore[override]
        return self.spec.licence

    @property
    def rebuild(self) -> str:  # type: ignore[override]
        """The command that rebuilds the shipped model (the dataset's default members)."""
        return (
            f".venv/bin/python scripts/train_attractiveness_ldl.py --dataset {self.dataset} "
            f"--data ../shared/data --out {self.spec.default_out}"
        )

    def recipes(self) -> tuple[TopRecipe, ...]:
        """The main top's recipe, then the members' (this recipe's, or the dataset's)."""
        return self._recipes

    @cached_property
    def _recipes(self) -> tuple[TopRecipe, ...]:
        # The same objects on every call: the model file pickles them once (same bytes).
        if self.members is not None:
            return (self.top, *self.members)
        return (self.top, *(member_recipe(self.top, m) for m in self.spec.members))

    def fold_dir(self, top: TopRecipe, target_rule: str) -> Path:
        """Where the CV of ``top`` keeps its folds and checkpoints (keyed by it and the
        targets' rule)."""
        tag = config_tag({"recipe": top.to_dict(), "targets": target_rule})
        return Path(self.work_dir) / f"{self.dataset}-cv-{self.folds}f-s{self.seed}-{tag}"

    def top_folder(self, top: TopRecipe, data: Data) -> Path:
        return self.fold_dir(top, data.extra["rule"])

    def make_correction(self) -> GeometricFusion:
        return GeometricFusion(self.bins)

    def make_svr(self, n_features: int) -> Any:
        return svr_search(n_features, SVR_GRID, SVR_EPSILON, seed=self.seed)

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        from facecore.datasets import dataset_hash, load_mebeauty, load_scut_fbp5500
        from facecore.features import geometric_features
        from facecore.ldl.distributions import gaussian_label_distribution, rating_histograms
        from facecore.training.chips import extract_dataset_chips
        from facecore.training.tops import trunk_features

        spec, work = self.spec, Path(self.work_dir)
        ds = {"mebeauty": load_mebeauty, "scut-fbp5500": load_scut_fbp5500}[spec.name](data_root)
        chips = extract_dataset_chips(ds, cache_dir=work / "chips")
        sigma = None
        if spec.name == "mebeauty":
            r = ds.ratings
            d_all = rating_histograms(r.image_index, r.rating, len(ds), spec.bins)
            rule = "histogram of the individual ratings on 1..10"
        else:
            sigma = label_sigma(data_root)
            d_all = gaussian_label_distribution(ds.targets, spec.bins, sigma)
            rule = f"discretised Gaussian around the mean on 1,1.5..5, sigma {sigma:.3f}"
        rows = np.flatnonzero(chips.has_face & np.isfinite(d_all).all(axis=1))
        geo = [geometric_features(lm) for lm in chips.landmarks[rows]]
        return Data(
            y=np.asarray(ds.targets)[rows],
            targets=d_all[rows].astype(np.float32),
            features={
                "trunk": trunk_features(chips, rows, work),
                "geo": np.stack(geo).astype(np.float64),
                **self.appearance_inputs(ds, chips, rows),
            },
            groups={"group": np.asarray(ds.groups)[rows]},
            title=spec.title,
            n_photos=len(ds),
            data_hash=dataset_hash(ds),
            extra={
                **self.top_inputs(chips, rows),
                "rule": rule,
                "sigma": sigma,
                "dataset": ds,
                "chips": chips,
                "names": [Path(ds.relative_paths[i]).name[:24] for i in rows],
            },
        )

    def learners(self, run: Run) -> list[Learner]:
        from sklearn.linear_model import BayesianRidge

        from facecore.ldl import MaxEntLDL, StructuredLDL
        from facecore.training.learners import MeanDistribution, feature_pipeline

        bins = self.bins
        maxent = MaxEntLDL(alpha=0.1, bins=bins, random_state=0)
        sldl = StructuredLDL(alpha=0.3, decode="mean", bins=bins, random_state=0)
        return [
            Learner("average", lambda r: MeanDistribution(bins), ("trunk",), "targets"),
            Learner("bayes-ridge", lambda r: feature_pipeline(BayesianRidge()), ("trunk",)),
            Learner("maxent", lambda r: feature_pipeline(maxent), ("trunk",), "targets"),
            Learner("sldl", lambda r: feature_pipeline(sldl), ("trunk",), "targets"),
            *self.top_learners(run),
            *self.svr_learners(run),
            *self.stack_learners(),
        ]

    def metrics(self, run: Run, oof: OutOfFold) -> dict[str, Any]:
        from facecore.metrics import ldl_metrics, regression_metrics

        m = regression_metrics(run.data.y, oof.values)
        if oof is run.oof["average"]:
            m["pc"] = float("nan")  # constant within a fold
        if oof.distributions is not None:
            m |= ldl_metrics(run.data.targets, oof.distributions)
        return m

    def gains(self, run: Run) -> tuple[float, float, str]:
        """The CV Pearson gains over the top of the geometric fusion and of the best SVR stack
        (the highest CV Pearson, the first on a tie), and that stack."""
        top, fusion, *stacks = self.candidates()
        pc = {k: rounded(run.table[k])["pc"] for k in (top, fusion, *stacks)}
        best = max(stacks, key=lambda k: (pc[k], -stacks.index(k)))
        return pc[fusion] - pc[top], pc[best] - pc[top], best

    def choose(self, run: Run) -> str:
        """The top alone, unless a combination raises the CV Pearson by :data:`FUSION_GAIN`:
        then the one that raises it more (the best stack on a tie)."""
        top, fusion = self.candidates()[:2]
        gain, stack_gain, stack = self.gains(run)
        if max(gain, stack_gain) >= FUSION_GAIN:
            return stack if stack_gain >= gain else fusion
        return top

    def ship(self, run: Run, out: Path) -> Any:
        """The tops trained on every face, with the chosen fusion or stack."""
        spec, x, recipes = self.spec, run.data.extra, self.recipes()
        fusion, stack, svr = self.fit_served(run)
        fusion = None if fusion is None else fusion.fusion_
        svr_params = None if svr is None else _svr_settings(svr)
        gain, stack_gain, _ = self.gains(run)
        svr_name = self.chosen_svr(run) or "svr-frozen"
        svr_folds = [_svr_settings(e) for e in run.oof[svr_name].estimators]
        floats = [self._top_names(i, r)[0] for i, r in enumerate(recipes)]
        run.seconds["top-ldl"] = sum(sum(run.oof[name].seconds) for name in floats)
        note = value_note(COMBINATION_NOTES, stack, fusion is not None, **(svr_params or {}))
        rebuild = self.rebuild.replace(spec.default_out, out.as_posix())
        nodes = " and ".join(f"features['trunk.{node}']" for node in x["maps"])
        members = [r.to_dict() for r in recipes[1:]]
        return self.ship_tops(
            run,
            out,
            output={"name": "attractiveness", "kind": "distribution",
                    "scale": [spec.bins[0], spec.bins[-1]], "bins": list(spec.bins)},
            inputs=(
                f"Face with {nodes} (the trunk's shared maps of dlib's 150x150 chip)"
                + (" and the 68 landmarks (geometric features)" if fusion else "")
                + f"; output: a distribution over {spec.title}'s rating values "
                f"{spec.bins[0]:g}..{spec.bins[-1]:g} and its expectation"
            ),
            source=(
                "facecore.attractiveness.ldl_train (scripts/train_attractiveness_ldl.py): "
                f"{_describe_all(recipes)} of dlib's face ResNet with KL loss on "
                "rating distributions (Fan et al., IEEE TMM 2018)"
                + ("; fused with geometric features by ridge regression" if fusion else "")
            ),
            rebuild=rebuild,
            stack=stack,
            metadata={"dataset": spec.title, "targets": x["rule"], "members": members,
                      "fusion": fusion},
            cv={
                "fusion_gain_pc": round(gain, 4),
                "stack_gain_pc": round(stack_gain, 4),
                "svr_settings": {
                    "grid": [list(g) for g in SVR_GRID],
                    "folds": svr_folds,
                    "shipped": svr_params,
                },
                "label_sigma": x["sigma"],
                "members": members,
            },
            fields={
                "lo": spec.bins[0],
                "hi": spec.bins[-1],
                "fused": " fused with geometric features" if fusion else "",
                "tops": _describe_all(recipes).capitalize(),
                "ensemble": "; the distribution is the average of the tops' softmax outputs."
                if len(recipes) > 1 else ".",
                "value_note": note.format(gain=gain, stack_gain=stack_gain, least=FUSION_GAIN),
                "top_min": run.seconds["top-ldl"] / 60,
            },
        )  # fmt: skip


#: The card's sentence on what the served value combines.
COMBINATION_NOTES = {
    "stack": (
        "Value: a least-absolute-deviation stack of the distribution's expectation and an RBF "
        "SVR on {svr_inputs} ({n_support} support vectors, float16 in the file; C "
        "{C:g} and gamma {gamma:.3g} chosen by an inner 3-fold CV): {intercept:.3f} + "
        "{c[0]:.3f} x E[top] + {c[1]:.3f} x SVR, weights fitted on out-of-fold predictions "
        "(facecore.ldl.stack; CV Pearson gain {{stack_gain:+.4f}}, the geometric fusion's "
        "{{gain:+.4f}}); the distribution is translated to that value."
    ),
    "correction": (
        "Fusion: ridge regression of the rating on the deep expectation and the 42 geometric "
        "landmark features (CV Pearson gain {gain:+.4f}); the distribution is translated to the "
        "fused value."
    ),
    "none": (
        "The top alone: neither the geometric fusion ({gain:+.4f}) nor the SVR stack "
        "({stack_gain:+.4f}) raised the CV Pearson by {least}."
    ),
}


def _svr_settings(search: Any) -> dict[str, float]:
    return {k: search.best_params_[f"svr__{k}"] for k in ("C", "gamma")}


def _describe_all(recipes: tuple[TopRecipe, ...]) -> str:
    """``"fine-tuned copy of stages 3-5"`` for one top, else the ensemble's members."""
    if len(recipes) == 1:
        return f"fine-tuned copy of {recipes[0].stages}"
    return f"ensemble of {len(recipes)} fine-tuned tops, " + " and ".join(
        f"{r.stages} (seed {r.seed})" for r in recipes
    )
