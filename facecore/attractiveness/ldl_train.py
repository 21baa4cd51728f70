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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore.training.learners import _Combiner
from facecore.training.publish import Figure, GroupTable, rounded
from facecore.training.runner import Data, Learner, OutOfFold, Recipe, Run, config_tag
from facecore.training.tops import FILE_LINE, TopRecipe

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

    @property
    def scale(self) -> tuple[float, float]:
        return (self.bins[0], self.bins[-1])

    @property
    def rebuild(self) -> str:
        """The command that rebuilds the shipped model (the dataset's default members)."""
        return (
            f".venv/bin/python scripts/train_attractiveness_ldl.py --dataset {self.name} "
            f"--data ../shared/data --out {self.default_out}"
        )


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


class AverageOf(_Combiner):
    """The average of ``n`` tops' distributions (an ensemble; nothing to fit), in float32 as
    the tops give them. ``X``: ``[distributions of top 1 | ... | of top n]``."""

    value_is_expectation = True

    def __init__(self, bins: tuple[float, ...] = (), n: int = 1) -> None:
        self.bins = bins
        self.n = n

    def fit(self, X: np.ndarray, y: np.ndarray) -> AverageOf:
        return self

    def _apply(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.bins)
        parts = [np.asarray(X[:, i * k : (i + 1) * k], np.float32) for i in range(self.n)]
        p = np.mean(parts, axis=0)
        return p @ np.asarray(self.bins, np.float64), p


@dataclass(frozen=True)
class LdlRecipe(Recipe):
    """The recipe of ``dataset`` (a key of :data:`DATASETS`): the CV (``folds``, ``seed``), the
    main ``top``, the ensemble's ``members`` (None: the dataset's default), ``int8``."""

    dataset: str = "scut-fbp5500"
    folds: int = 5
    seed: int = 0
    top: TopRecipe = field(default_factory=TopRecipe)
    work_dir: Path = Path(".cache/attractiveness")
    #: Ship the top in int8 (facecore.nn.quantize); the shipped figures are the int8 folds'.
    int8: bool = True
    members: tuple[TopRecipe, ...] | None = None
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
    def top_learner(self) -> str:
        """The learner that is the main float top (what other recipes read per fold)."""
        if len(self.recipes()) > 1 and not self.int8:
            return f"one top: {_describe(self.top)}"
        return "top 0"

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
        return self.spec.rebuild

    def recipes(self) -> tuple[TopRecipe, ...]:
        """The main top's recipe, then the members' (this recipe's, or the dataset's)."""
        if self.members is not None:
            return (self.top, *self.members)
        return (self.top, *(member_recipe(self.top, m) for m in self.spec.members))

    def fold_dir(self, top: TopRecipe, target_rule: str) -> Path:
        """Where the CV of ``top`` keeps its folds and checkpoints (keyed by it and the
        targets' rule)."""
        tag = config_tag({"recipe": top.to_dict(), "targets": target_rule})
        return Path(self.work_dir) / f"{self.dataset}-cv-{self.folds}f-s{self.seed}-{tag}"

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        from facecore.datasets import dataset_hash, load_mebeauty, load_scut_fbp5500
        from facecore.features import geometric_features
        from facecore.ldl.distributions import gaussian_label_distribution, rating_histograms
        from facecore.training.chips import extract_dataset_chips
        from facecore.training.tops import dataset_maps, trunk_features

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
        node_maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for r in self.recipes():
            if r.input_node not in node_maps:
                m, f = dataset_maps(chips, r.input_node, work / "maps")
                node_maps[r.input_node] = (np.asarray(m)[rows], np.asarray(f)[rows])
        geo = [geometric_features(lm) for lm in chips.landmarks[rows]]
        return Data(
            y=np.asarray(ds.targets)[rows],
            targets=d_all[rows].astype(np.float32),
            features={
                "feats": trunk_features(chips, rows, work),
                "geo": np.stack(geo).astype(np.float64),
            },
            groups={"group": np.asarray(ds.groups)[rows]},
            title=spec.title,
            n_photos=len(ds),
            data_hash=dataset_hash(ds),
            extra={
                "rule": rule,
                "sigma": sigma,
                "maps": node_maps,
                "dataset": ds,
                "rows": rows,
                "chips": chips,
                "names": [Path(ds.relative_paths[i]).name[:24] for i in rows],
            },
        )

    def learners(self, run: Run) -> list[Learner]:
        from sklearn.linear_model import BayesianRidge

        from facecore.ldl import MaxEntLDL, StructuredLDL
        from facecore.training.learners import (
            Int8Top,
            MeanDistribution,
            SvrStack,
            TopRegressor,
            feature_pipeline,
            svr_search,
        )

        bins, rule, maps = self.spec.bins, run.data.extra["rule"], run.data.extra["maps"]
        recipes, suffix = self.recipes(), ", int8" if self.int8 else ""
        n_feats = run.data.features["feats"].shape[1]
        out = [
            Learner("average", lambda r: MeanDistribution(bins), ("feats",), "targets"),
            Learner("bayes-ridge", lambda r: feature_pipeline(BayesianRidge()), ("feats",)),
            Learner(
                "maxent",
                lambda r: feature_pipeline(MaxEntLDL(alpha=0.1, bins=bins, random_state=0)),
                ("feats",),
                "targets",
            ),
            Learner(
                "sldl",
                lambda r: feature_pipeline(
                    StructuredLDL(alpha=0.3, decode="mean", bins=bins, random_state=0)
                ),
                ("feats",),
                "targets",
            ),
        ]
        floats, int8s = [], []
        many = len(recipes) > 1
        for i, top in enumerate(recipes):  # with many float tops, each alone beside the ensemble
            m, f = maps[top.input_node]
            folder, alone = self.fold_dir(top, rule), f"one top: {_describe(top)}"
            floats.append(alone if many and not self.int8 else f"top {i}")
            out.append(
                Learner(
                    floats[-1],
                    lambda r, top=top, m=m, f=f: TopRegressor(top, bins, m, f, device=r.device),
                    ("rows",),
                    "targets",
                    cache=lambda r, folder=folder: folder,
                    table=many and not self.int8,
                )
            )
            if self.int8:
                int8s.append(f"{alone}, int8" if many else f"int8 {i}")
                out.append(
                    Learner(
                        int8s[-1],
                        lambda r, top=top, m=m: Int8Top(top, bins, m, seed=self.seed),
                        ("rows",),
                        "targets",
                        cache=lambda r, folder=folder: folder,
                        table=many,
                    )
                )
        variants = {"": floats, ", int8": int8s} if self.int8 else {"": floats}
        for tag, parts in variants.items():
            out.append(
                Learner(f"top-ldl{tag}", lambda r, k=len(parts): AverageOf(bins, k), tuple(parts))
            )
            out.append(
                Learner(
                    f"top-ldl + geometric{tag}",
                    lambda r: GeometricFusion(bins),
                    (f"top-ldl{tag}", "geo"),
                )
            )
        out.append(
            Learner(
                "svr-frozen",
                lambda r: svr_search(n_feats, SVR_GRID, SVR_EPSILON, seed=self.seed),
                ("feats",),
            )
        )
        out.append(
            Learner(
                f"top-ldl + svr stack{suffix}",
                lambda r: SvrStack(bins, temper_for_coverage=False),
                (f"top-ldl{suffix}", "svr-frozen"),
            )
        )
        return out

    def metrics(self, run: Run, oof: OutOfFold) -> dict[str, Any]:
        from facecore.metrics import ldl_metrics, regression_metrics

        m = regression_metrics(run.data.y, oof.values)
        if oof is run.oof["average"]:
            m["pc"] = float("nan")  # constant within a fold
        if oof.distributions is not None:
            m |= ldl_metrics(run.data.targets, oof.distributions)
        return m

    def gains(self, run: Run) -> tuple[float, float]:
        """The CV Pearson gains of the geometric fusion and of the SVR stack over the top."""
        suffix = ", int8" if self.int8 else ""
        pc = {k: rounded(v)["pc"] for k, v in run.table.items()}
        base = pc[f"top-ldl{suffix}"]
        return pc[f"top-ldl + geometric{suffix}"] - base, pc[f"top-ldl + svr stack{suffix}"] - base

    def choose(self, run: Run) -> str:
        """The top alone, unless a combination raises the CV Pearson by :data:`FUSION_GAIN`:
        then the one that raises it more (the stack on a tie)."""
        suffix = ", int8" if self.int8 else ""
        gain, stack_gain = self.gains(run)
        if max(gain, stack_gain) >= FUSION_GAIN:
            return (
                f"top-ldl + svr stack{suffix}"
                if stack_gain >= gain
                else (f"top-ldl + geometric{suffix}")
            )
        return f"top-ldl{suffix}"

    def ship(self, run: Run, out: Path) -> Any:
        """The tops trained on every face, with the chosen fusion or stack."""
        from facecore.training.learners import SvrStack, final_stack, svr_search
        from facecore.training.tops import calibration_maps, ship_tops, stack_note

        spec, data, x, chosen = self.spec, run.data, run.data.extra, run.chosen
        y, recipes, suffix = data.y, self.recipes(), ", int8" if self.int8 else ""
        feats = data.features["feats"]
        fusion = stack = svr_params = None
        if "geometric" in chosen:
            inputs = run.inputs((f"top-ldl{suffix}", "geo"))
            fusion = GeometricFusion(spec.bins).fit(inputs, y).fusion_
        elif "stack" in chosen:
            search = svr_search(feats.shape[1], SVR_GRID, SVR_EPSILON, seed=self.seed)
            svr = search.fit(feats, y).best_estimator_
            svr_params = {k: search.best_params_[f"svr__{k}"] for k in ("C", "gamma")}
            inputs = run.inputs((f"top-ldl{suffix}", "svr-frozen"))
            combiner = SvrStack(spec.bins, temper_for_coverage=False)
            stack = final_stack(combiner, inputs, y, svr, False)
        gain, stack_gain = self.gains(run)
        run.seconds["top-ldl"] = sum(
            sum(run.oof[f"top {i}"].seconds) for i in range(len(recipes)) if f"top {i}" in run.oof
        )
        svr_folds = [
            {k: e.best_params_[f"svr__{k}"] for k in ("C", "gamma")}
            for e in run.oof["svr-frozen"].estimators
        ]
        if stack:
            note = stack_note(COMBINATION_NOTES["stack"], stack, **svr_params)
        else:
            note = COMBINATION_NOTES["fusion" if fusion else "none"]
        rebuild = spec.rebuild.replace(spec.default_out, out.as_posix())
        nodes = " and ".join(f"features['trunk.{node}']" for node in x["maps"])
        members = [r.to_dict() for r in recipes[1:]]
        return ship_tops(
            run,
            out,
            [(r, *x["maps"][r.input_node], None, self.fold_dir(r, x["rule"])) for r in recipes],
            task="attractiveness",
            output={"name": "attractiveness", "kind": "distribution",
                    "scale": [spec.scale[0], spec.scale[1]], "bins": list(spec.bins)},
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
            int8_maps={n: calibration_maps(m, seed=self.seed) for n, (m, _) in x["maps"].items()}
            if self.int8 else None,
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
                "rebuild": rebuild,
            },
        )  # fmt: skip


#: The card's sentence on what the served value combines.
COMBINATION_NOTES = {
    "stack": (
        "Value: a least-absolute-deviation stack of the distribution's expectation and an RBF "
        "SVR on the frozen trunk features ({n_support} support vectors, float16 in the file; C "
        "{C:g} and gamma {gamma:.3g} chosen by an inner 3-fold CV): {intercept:.3f} + "
        "{c[0]:.3f} x E[top] + {c[1]:.3f} x SVR, weights fitted on out-of-fold predictions "
        "(facecore.ldl.stack; CV Pearson gain {{stack_gain:+.4f}}, the geometric fusion's "
        "{{gain:+.4f}}); the distribution is translated to that value."
    ),
    "fusion": (
        "Fusion: ridge regression of the rating on the deep expectation and the 42 geometric "
        "landmark features (CV Pearson gain {gain:+.4f}); the distribution is translated to the "
        "fused value."
    ),
    "none": (
        "The top alone: neither the geometric fusion ({gain:+.4f}) nor the SVR stack "
        "({stack_gain:+.4f}) raised the CV Pearson by {least}."
    ),
}


def _describe(recipe: TopRecipe) -> str:
    """``"stages 4-5 (seed 0)"``."""
    return f"stages {recipe.start.removeprefix('stage')}-5 (seed {recipe.seed})"


def _describe_all(recipes: tuple[TopRecipe, ...]) -> str:
    """``"fine-tuned copy of stages 3-5"`` for one top, else the ensemble's members."""
    if len(recipes) == 1:
        return f"fine-tuned copy of stages {recipes[0].start.removeprefix('stage')}-5"
    return f"ensemble of {len(recipes)} fine-tuned tops, " + " and ".join(
        _describe(r) for r in recipes
    )
