"""Attractiveness as a rating distribution: cross-validation and shipping (SCUT-FBP5500, MEBeauty).

Paper: Y. Fan, S. Liu, B. Li, Z. Guo, A. Samal, J. Wan, S. Z. Li, "Label Distribution-Based
Facial Attractiveness Computation by Deep Residual Learning", IEEE Trans. Multimedia 2018:
fine-tune a face-pretrained ResNet with a KL loss on rating distributions (the score is the
expectation) and fuse the deep output with geometric features.

Targets (label distributions on the dataset's rating values):

* **MEBeauty** publishes every rater's 1-10 rating: the target of a face is the histogram of its
  ratings over 1..10 (:func:`facecore.ldl.distributions.rating_histograms`).
* **SCUT-FBP5500** publishes only means. Label enhancement: a discretised Gaussian around the
  mean on the bins 1, 1.5, ..., 5, with the spread learned from the data that has raters:
  :func:`label_sigma` is the median over MEBeauty's faces of the standard deviation of their
  individual ratings, rescaled from MEBeauty's 1-10 to SCUT's 1-5 (factor 4/9).

Learners, in the same folds (:func:`facecore.training.folds.kfold_splits`, unstratified, seed
0: on SCUT-FBP5500 these are exactly the folds of the classical model's CV):

* ``average`` - every face the training folds' mean distribution (the LDL baseline);
* ``bayes-ridge`` - Bayesian ridge of the mean on the frozen trunk's 896-D features (the kind of
  learner of the public MEBeauty benchmark);
* ``maxent`` and ``sldl`` - :class:`facecore.ldl.MaxEntLDL` (SA-BFGS) and
  :class:`facecore.ldl.StructuredLDL` (``decode="mean"``) on the same standardised features;
* ``top-ldl`` - a fine-tuned copy of stages 3-5 of dlib's face ResNet over the cached frozen
  stage-2 map (:mod:`facecore.training.tops`), KL loss, flips; with members
  (:attr:`LdlDataset.members`, e.g. SCUT-FBP5500's copy of stages 4-5 over the stage-3 map),
  the average of every top's softmax (an ensemble), and each top alone beside it (``one top:``);
* ``top-ldl + svr stack`` - the served tops' expectation stacked with an RBF SVR on the frozen
  trunk features (:mod:`facecore.ldl.stack`);
* ``top-ldl + geometric`` - the paper's fusion: a ridge regression of the rating on the deep
  expectation and the 42 geometric landmark features (:func:`facecore.features.geometric_features`),
  cross-fitted (each fold's ridge is fitted on the other folds' out-of-fold deep predictions);
  the deep distribution is translated to the fused value.

The shipped model is the deep top (or ensemble) trained on every face, with the fusion or the
stack when it pays (a CV Pearson gain of at least 0.002). Outputs: ``<out>.pt``, the manifest
entry, ``<out>.cv.json``, the card ``<out>.md`` and its figures.
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

from facecore.attractiveness.ldl_model import apply_fusion
from facecore.training.tops import TopRecipe

__all__ = [
    "DATASETS",
    "FUSION_GAIN",
    "LdlDataset",
    "LdlTrainConfig",
    "cv_fold_dir",
    "dataset_targets",
    "fuse_geometric",
    "label_sigma",
    "main",
    "member_recipe",
]

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class LdlTrainConfig:
    folds: int = 5
    seed: int = 0
    recipe: TopRecipe = field(default_factory=TopRecipe)
    work_dir: Path = Path(".cache/attractiveness")
    #: Ship the top in int8 (facecore.nn.quantize); the shipped figures are the int8 folds'.
    int8: bool = True
    #: Extra tops averaged with ``recipe``'s (an ensemble): ``recipe`` with another start and
    #: seed each; None: the dataset's default (:attr:`LdlDataset.members`).
    members: tuple[TopRecipe, ...] | None = None

    def recipes(self, dataset: LdlDataset) -> tuple[TopRecipe, ...]:
        """The main recipe, then the members' (this config's, or the dataset's default)."""
        if self.members is not None:
            return (self.recipe, *self.members)
        return (self.recipe, *(member_recipe(self.recipe, m) for m in dataset.members))


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


def _loader(name: str) -> Any:
    from facecore.datasets import load_mebeauty, load_scut_fbp5500

    return {"mebeauty": load_mebeauty, "scut-fbp5500": load_scut_fbp5500}[name]


def _targets(
    spec: LdlDataset, ds: Any, data_root: str | os.PathLike[str]
) -> tuple[np.ndarray, str, float | None]:
    from facecore.ldl.distributions import gaussian_label_distribution, rating_histograms

    if spec.name == "mebeauty":
        r = ds.ratings
        d = rating_histograms(r.image_index, r.rating, len(ds), spec.bins)
        return d, "histogram of the individual ratings on 1..10", None
    sigma = label_sigma(data_root)
    d = gaussian_label_distribution(ds.targets, spec.bins, sigma)
    return d, f"discretised Gaussian around the mean on 1,1.5..5, sigma {sigma:.3f}", sigma


def dataset_targets(dataset: str, data_root: str | os.PathLike[str]) -> tuple[Any, np.ndarray, str]:
    """``dataset`` (a key of :data:`DATASETS`) loaded, its target distributions (N, K) and the
    rule that made them (which keys its cross-validation folder, :func:`cv_fold_dir`)."""
    ds = _loader(dataset)(data_root)
    d, rule, _ = _targets(DATASETS[dataset], ds, data_root)
    return ds, d, rule


def _geometric(landmarks: np.ndarray) -> np.ndarray:
    from facecore.features import geometric_features

    return np.stack([geometric_features(lm) for lm in landmarks]).astype(np.float64)


def fuse_geometric(deep: np.ndarray, geometric: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """A ridge regression of ``y`` on ``[deep expectation, geometric features]`` (standardised;
    ridge strength by leave-one-out GCV), as plain numbers for the model file."""
    from sklearn.linear_model import RidgeCV

    X = np.column_stack([deep, geometric])
    mean, scale = X.mean(0), X.std(0)
    scale[scale == 0] = 1.0
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit((X - mean) / scale, y)
    return {
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": np.asarray(ridge.coef_).tolist(),
        "intercept": float(ridge.intercept_),
        "alpha": float(ridge.alpha_),
    }


def _scatter_png(
    path: Path, y: np.ndarray, pred: np.ndarray, groups: np.ndarray, title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(set(groups.tolist()))
    cols = min(len(names), 4)
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), dpi=90, squeeze=False)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    for ax, g in zip(axes.ravel(), names, strict=False):
        sel = groups == g
        r = np.corrcoef(y[sel], pred[sel])[0, 1] if sel.sum() > 2 else float("nan")
        ax.scatter(y[sel], pred[sel], s=4, alpha=0.35)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_title(f"{g} (n={int(sel.sum())}, r={r:.3f})", fontsize=8)
        ax.set_xlabel("rated", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _distributions_png(
    path: Path, bins: np.ndarray, true: np.ndarray, pred: np.ndarray, names: list[str]
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 2.6), dpi=90, squeeze=False)
    w = 0.4 * float(bins[1] - bins[0])
    for ax, t, p, name in zip(axes[0], true, pred, names, strict=True):
        ax.bar(bins - w / 2, t, w, label="target")
        ax.bar(bins + w / 2, p, w, label="predicted")
        ax.set_title(name, fontsize=7)
        ax.set_xticks(bins[:: max(1, len(bins) // 5)])
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


@dataclass
class LdlTrainResult:
    cv: dict[str, Any]
    model_path: Path
    card_path: Path


def main(
    dataset: str,
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    config: LdlTrainConfig | None = None,
    *,
    device: str = "cpu",
) -> LdlTrainResult:
    """Cross-validate every learner on ``dataset``, train the shipped model, write artefacts."""
    from sklearn.linear_model import BayesianRidge
    from sklearn.preprocessing import StandardScaler

    from facecore.datasets import dataset_hash
    from facecore.heads.distribution import TopDistributionModel
    from facecore.ldl import MaxEntLDL, StructuredLDL
    from facecore.ldl.distributions import move_distributions
    from facecore.ldl.stack import RbfSvr, crossfit_stack, fit_top_stack
    from facecore.metrics import ldl_metrics, regression_metrics
    from facecore.model_store import write_manifest_entry
    from facecore.nn.dlib_resnet import for_inference
    from facecore.training.card import CardTable, ModelCard, package_versions, write_card
    from facecore.training.chips import extract_dataset_chips
    from facecore.training.folds import kfold_splits
    from facecore.training.tops import (
        INT8_CARD_NOTE,
        calibration_maps,
        cross_validated_distributions,
        dataset_maps,
        int8_cross_validated,
        top_manifest_entry,
        train_top,
        trunk_features,
        write_cv_document,
    )

    spec = DATASETS[dataset]
    cfg = config or LdlTrainConfig()
    out = Path(out or spec.default_out)
    work = Path(cfg.work_dir)
    recipe = cfg.recipe
    bins = np.asarray(spec.bins)
    t_all = time.perf_counter()

    ds = _loader(dataset)(data_root)
    chips = extract_dataset_chips(ds, cache_dir=work / "chips")
    d_all, target_rule, sigma = _targets(spec, ds, data_root)
    rows = np.flatnonzero(chips.has_face & np.isfinite(d_all).all(axis=1))
    n = len(rows)
    logger.info("%s: %d photos, %d with a face and a target", spec.title, len(ds), n)
    y = np.asarray(ds.targets)[rows]
    D = d_all[rows].astype(np.float32)
    groups = np.asarray(ds.groups)[rows]
    recipes = cfg.recipes(spec)
    node_maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for r in recipes:
        if r.input_node not in node_maps:
            maps_all, flipped_all = dataset_maps(chips, r.input_node, work / "maps")
            node_maps[r.input_node] = (np.asarray(maps_all)[rows], np.asarray(flipped_all)[rows])
    maps, flipped = node_maps[recipe.input_node]

    feats = trunk_features(chips, rows, work)
    geo = _geometric(chips.landmarks[rows])
    folds = kfold_splits(n, cfg.folds, cfg.seed)
    seconds: dict[str, float] = {}

    preds: dict[str, np.ndarray] = {}
    dists: dict[str, np.ndarray | None] = {}
    avg = np.empty_like(D, dtype=np.float64)
    for tr, te in folds:
        avg[te] = D[tr].mean(0)
    preds["average"], dists["average"] = avg @ bins, avg

    def feature_cv(make: Any, scalar: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
        p = np.empty(n)
        dist = None if scalar else np.empty_like(D, dtype=np.float64)
        t0 = time.perf_counter()
        for tr, te in folds:
            sc = StandardScaler().fit(feats[tr])
            m = make()
            if scalar:
                m.fit(sc.transform(feats[tr]), y[tr])
                p[te] = m.predict(sc.transform(feats[te]))
            else:
                m.fit(sc.transform(feats[tr]), D[tr])
                dist[te] = m.predict_distribution(sc.transform(feats[te]))
                p[te] = dist[te] @ bins
        return p, dist, time.perf_counter() - t0

    preds["bayes-ridge"], dists["bayes-ridge"], seconds["bayes-ridge"] = feature_cv(
        BayesianRidge, True
    )
    preds["maxent"], dists["maxent"], seconds["maxent"] = feature_cv(
        lambda: MaxEntLDL(alpha=0.1, bins=spec.bins, random_state=0), False
    )
    preds["sldl"], dists["sldl"], seconds["sldl"] = feature_cv(
        lambda: StructuredLDL(alpha=0.3, decode="mean", bins=spec.bins, random_state=0), False
    )

    # Every top of the ensemble (one, unless members are set) in the same folds; what is
    # served: each fold's tops in int8 (ranges from its own training photos), unless the config
    # says float32; the float rows stay in the table to show what int8 costs.
    fold_dirs = [
        cv_fold_dir(dataset, dataclasses.replace(cfg, recipe=r), target_rule) for r in recipes
    ]
    raws, int8s = [], []
    seconds["top-ldl"] = seconds["int8_cv"] = 0.0
    for r, fdir in zip(recipes, fold_dirs, strict=True):
        r_maps, r_flipped = node_maps[r.input_node]
        p, fold_seconds = cross_validated_distributions(
            r_maps, D, folds, r, maps_flipped=r_flipped, work_dir=fdir, device=device, bins=bins
        )
        raws.append(p)
        seconds["top-ldl"] += float(np.sum(fold_seconds))
        if cfg.int8:
            t0 = time.perf_counter()
            int8s.append(
                int8_cross_validated(r_maps, folds, r, len(bins), work_dir=fdir, seed=cfg.seed)
            )
            seconds["int8_cv"] += time.perf_counter() - t0
    if len(recipes) > 1:  # each top alone, as served, beside the ensemble
        for r, p in zip(recipes, int8s or raws, strict=True):
            name = f"one top: {_describe(r)}" + (", int8" if int8s else "")
            preds[name], dists[name] = p @ bins, p.astype(np.float64)
    raw = np.mean(raws, axis=0)
    variants = {"": raw}
    suffix = ""
    if cfg.int8:
        variants[", int8"] = np.mean(int8s, axis=0)
        suffix = ", int8"
    for tag, probs in variants.items():
        d = probs @ bins
        preds[f"top-ldl{tag}"], dists[f"top-ldl{tag}"] = d, probs.astype(np.float64)
        fused = np.empty(n)
        for tr, te in folds:
            fused[te] = apply_fusion(fuse_geometric(d[tr], geo[tr], y[tr]), d[te], geo[te])
        fused = np.clip(fused, bins[0], bins[-1])
        preds[f"top-ldl + geometric{tag}"] = fused
        dists[f"top-ldl + geometric{tag}"] = move_distributions(
            probs.astype(np.float64), bins, fused
        )
    deep = preds[f"top-ldl{suffix}"]
    # An RBF SVR on the frozen trunk features, and the served top stacked with it
    # (facecore.ldl.stack): each fold's weights fitted on the other folds' predictions only.
    svr_pred, seconds["svr-frozen"], svr_folds = _svr_oof(feats, y, folds, cfg.seed)
    preds["svr-frozen"], dists["svr-frozen"] = svr_pred, None
    stack_name = f"top-ldl + svr stack{suffix}"
    served = variants[suffix]
    preds[stack_name], dists[stack_name], _ = crossfit_stack(
        served, svr_pred, y, folds, bins, temper_for_coverage=False
    )

    table: dict[str, dict[str, float]] = {}
    for name, p in preds.items():
        m = regression_metrics(y, p)
        if name == "average":
            m["pc"] = float("nan")  # constant within a fold
        dist = dists[name]
        if dist is not None:
            m |= ldl_metrics(D, dist)
        table[name] = {k: (None if v != v else round(float(v), 4)) for k, v in m.items()}
        logger.info("%s: %s", name, table[name])

    base_pc = table[f"top-ldl{suffix}"]["pc"]
    gain = table[f"top-ldl + geometric{suffix}"]["pc"] - base_pc
    stack_gain = table[stack_name]["pc"] - base_pc
    # The top alone, unless a combination raises the CV Pearson by FUSION_GAIN: then the larger.
    shipped = f"top-ldl{suffix}"
    if max(gain, stack_gain) >= FUSION_GAIN:
        shipped = stack_name if stack_gain >= gain else f"top-ldl + geometric{suffix}"
    per_group = {}
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        m = regression_metrics(y[sel], preds[shipped][sel])
        per_group[g] = {k: round(float(v), 4) for k, v in m.items()} | {"n": int(sel.sum())}

    tops = []
    seconds["final_fit"] = 0.0
    for r, fdir in zip(recipes, fold_dirs, strict=True):
        r_maps, r_flipped = node_maps[r.input_node]
        top, final = train_top(
            r_maps,
            D,
            r,
            maps_flipped=r_flipped,
            checkpoint_dir=fdir / "ckpt-final",
            device=device,
            bins=bins,
        )
        tops.append(for_inference(top))
        # Training time of the epochs (also when they were read back from a checkpoint).
        seconds["final_fit"] += float(sum(h.seconds for h in final.history))
    fusion = fuse_geometric(deep, geo, y) if "geometric" in shipped else None
    extras: dict[str, Any] = {}
    svr_params: dict[str, float] | None = None
    if shipped == stack_name:
        svr_params = select_svr(feats, y, cfg.seed)
        svr = _svr_pipeline(**svr_params).fit(feats, y)
        final_stack = fit_top_stack(served, svr_pred, y, bins, temper_for_coverage=False)
        final_stack = dataclasses.replace(final_stack, svr=RbfSvr.from_pipeline(svr, False))
        extras = {"stack": final_stack.to_doc()}
        logger.info(
            "stack: %s, %d support vectors", final_stack.to_doc(False), len(svr[-1].support_)
        )
    data_hash = dataset_hash(ds)
    protocol = (
        f"{cfg.folds}-fold KFold(shuffle=True, random_state={cfg.seed}) on the {n} photos with a "
        f"face ({spec.title}, {len(ds)} photos); targets: {target_rule}"
    )
    cv_summary = {"protocol": protocol, **table[shipped]}
    cv = {
        "protocol": protocol,
        "learners": table,
        "shipped": shipped,
        "fusion_gain_pc": round(gain, 4),
        "stack_gain_pc": round(stack_gain, 4),
        "stack": {k: v for k, v in extras["stack"].items() if k != "svr"} if extras else None,
        "svr_settings": {
            "grid": [list(g) for g in SVR_GRID],
            "folds": svr_folds,
            "shipped": svr_params,
        },
        "per_group": per_group,
        "label_sigma": sigma,
        "recipe": recipe.to_dict(),
        "members": [r.to_dict() for r in recipes[1:]],
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    model = TopDistributionModel(
        top=tops[0],
        members=tuple(tops[1:]),
        bins=spec.bins,
        metadata={
            "name": out.name,
            "task": "attractiveness",
            "dataset": spec.title,
            "training_data": f"{spec.title} ({len(ds)} photos, {n} with a face)",
            "dataset_sha256": data_hash,
            "targets": target_rule,
            "cv": cv_summary,
            "licence": spec.licence,
            "recipe": recipe.to_dict(),
            "members": [r.to_dict() for r in recipes[1:]],
            "fusion": fusion,
        },
        extras=extras,
    )
    if cfg.int8:
        model = model.with_int8(
            {node: calibration_maps(m, seed=cfg.seed) for node, (m, _) in node_maps.items()}
        )
    model_path = model.save(out.with_name(out.name + ".pt"))
    figs = [
        (
            _scatter_png(
                out.with_name(out.name + ".scatter.png"),
                y,
                preds[shipped],
                groups,
                f"{out.name}: out-of-fold predictions ({shipped})",
            ),
            "Out-of-fold predicted against rated score, per group.",
        )
    ]
    order = np.argsort(y)
    pick = order[np.linspace(0, n - 1, 5).round().astype(int)]
    figs.append(
        (
            _distributions_png(
                out.with_name(out.name + ".distributions.png"),
                bins,
                D[pick],
                dists[shipped][pick],
                [Path(ds.relative_paths[rows[i]]).name[:24] for i in pick],
            ),
            "Five faces across the range: target distribution against the out-of-fold prediction.",
        )
    )
    figs = [(Path(f).resolve(), caption) for f, caption in figs]
    write_cv_document(
        out.with_name(out.name + ".cv.json"),
        name=out.name,
        dataset=spec.title,
        dataset_sha256=data_hash,
        n_photos=len(ds),
        n_with_face=n,
        folds=cfg.folds,
        seed=cfg.seed,
        table=table,
        chosen=shipped,
        model_path=model_path,
        **cv,
    )
    entry = top_manifest_entry(
        out.name,
        model_path,
        "attractiveness",
        {
            "name": "attractiveness",
            "kind": "distribution",
            "scale": [spec.scale[0], spec.scale[1]],
            "bins": list(spec.bins),
        },
        inputs=(
            "Face with "
            + " and ".join(f"features['trunk.{node}']" for node in node_maps)
            + " (the trunk's shared maps of dlib's 150x150 chip)"
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
        training_data=(
            f"{spec.title}, {len(ds)} photos of shared/data (dataset sha256 {data_hash}), "
            f"{n} with a face"
        ),
        licence=spec.licence,
        metrics={"cv": cv_summary, "per_group": per_group},
        card=out.name + ".md",
        rebuild=spec.rebuild,
    )
    write_manifest_entry(entry, out.parent)

    cols = ["pc", "mae", "rmse", "chebyshev", "clark", "canberra", "kl", "cosine", "intersection"]
    heads = ["PC", "MAE", "RMSE", *cols[3:]]
    rows_table = [
        [name, *[("" if m.get(c) is None else m[c]) for c in cols]] for name, m in table.items()
    ]
    card = ModelCard(
        name=out.name,
        summary=(
            f"Attractiveness on {spec.title}'s rating scale ({spec.bins[0]:g}-{spec.bins[-1]:g}) "
            "as a distribution over its rating values; the value is the expectation"
            + (" fused with geometric features" if fusion else "")
            + ". It says how the raters of this dataset would rate a face, nothing more."
        ),
        licence=spec.licence,
        model=[
            f"{_describe_all(recipes).capitalize()} of dlib's face ResNet over the trunk's "
            "shared maps, softmax over the rating values, KL loss on rating distributions "
            "(Fan et al., IEEE TMM 2018)"
            + (
                "; the distribution is the average of the tops' softmax outputs."
                if len(recipes) > 1
                else "."
            ),
            f"Targets: {target_rule}.",
            f"Recipe: {recipe.epochs} epochs, batch {recipe.batch_size}, one-cycle AdamW (peak "
            f"lr {recipe.lr}), exact flip augmentation.",
            _combination_note(shipped, stack_name, extras, fusion, gain, stack_gain, svr_params),
            f"File: `{model_path.name}` (float16 weights, "
            f"{model_path.stat().st_size / 1e6:.1f} MB)"
            + (f"; {INT8_CARD_NOTE}" if cfg.int8 else "."),
        ],
        training_data=(
            f"{spec.title} in `../shared/data` ({len(ds)} photos).\nDataset sha256 "
            f"`{data_hash}`. {n} with a face and a target. Part of the set is held back by the "
            "data's owners for an independent evaluation."
        ),
        evaluation=(
            protocol + ". PC, MAE and RMSE compare the predicted value with the published mean "
            "score; the six LDL measures compare the predicted distribution with the target "
            "distribution. The learners on trunk features are standardised per training fold."
        ),
        tables=[
            CardTable("Learners in the same folds", ["learner", *heads], rows_table),
            CardTable(
                f"Shipped learner ({shipped}) per group",
                ["group", "n", "PC", "MAE", "RMSE"],
                [[g, m["n"], m["pc"], m["mae"], m["rmse"]] for g, m in per_group.items()],
            ),
        ],
        figures=figs,
        evaluation_notes=(
            f"Training on this project's 2-core CPU: the top's {cfg.folds} CV folds "
            f"{seconds['top-ldl'] / 60:.1f} min in all, the shipped model "
            f"{seconds['final_fit'] / 60:.1f} min (chips and maps cached once)."
        ),
        limitations=[
            "A rating is a judgement of the dataset's raters about its photos: it is not a "
            "property of the person, and it does not transfer to other populations or photo "
            "styles without a drop in agreement.",
            "Never use it to make decisions about people.",
        ],
        rebuild=spec.rebuild
        if out.as_posix() == spec.default_out
        else spec.rebuild.replace(spec.default_out, out.as_posix()),
        rebuild_note="Deterministic on the CPU for a given seed; interrupted runs resume.",
        packages=package_versions(),
    )
    card_path = write_card(card, out.with_name(out.name + ".md"))
    cv["seconds"]["total"] = round(time.perf_counter() - t_all, 1)
    return LdlTrainResult(cv=cv, model_path=model_path, card_path=card_path)


#: The frozen-feature SVR's epsilon (on the rating itself; standardised features).
SVR_EPSILON = 0.05
#: (C, gamma x D) pairs the SVR's settings are chosen from, by an inner 3-fold CV inside each
#: training set (D: the number of features; gamma 1/D is scikit-learn's "scale" on
#: standardised features). gamma 0.5/D won every inner CV of a wider grid (C 1, 2, 4 x gamma
#: 0.5/D, 1/D) on SCUT-FBP5500; the grid keeps only it, to keep the fits few.
SVR_GRID = tuple((c, 0.5) for c in (1.0, 2.0, 4.0))
SVR_INNER_FOLDS = 3


def _svr_pipeline(C: float = 1.0, gamma: Any = "scale") -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return make_pipeline(StandardScaler(), SVR(C=C, epsilon=SVR_EPSILON, gamma=gamma))


def select_svr(
    feats: np.ndarray, y: np.ndarray, seed: int = 0, grid: Any = SVR_GRID
) -> dict[str, float]:
    """The ``(C, gamma)`` of :data:`SVR_GRID` with the lowest mean absolute error in a seeded
    inner :data:`SVR_INNER_FOLDS`-fold CV on ``(feats, y)`` (a training set only)."""
    from joblib import Parallel, delayed

    from facecore.training.folds import kfold_splits

    inner = kfold_splits(len(y), SVR_INNER_FOLDS, seed)
    d = feats.shape[1]

    def mae(c: float, g: float) -> float:
        err = 0.0
        for tr, te in inner:
            p = _svr_pipeline(c, g / d).fit(feats[tr], y[tr]).predict(feats[te])
            err += float(np.abs(p - y[te]).sum())
        return err / len(y)

    scores = Parallel(n_jobs=2)(delayed(mae)(c, g) for c, g in grid)
    c, g = grid[int(np.argmin(scores))]
    return {"C": float(c), "gamma": float(g) / d}


def _svr_oof(
    feats: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], seed: int = 0
) -> tuple[np.ndarray, float, list[dict[str, float]]]:
    """Out-of-fold ratings of the RBF SVR on frozen trunk features (each fold's settings chosen
    inside its training set, :func:`select_svr`), the time, and each fold's settings."""
    pred = np.empty(len(y))
    chosen = []
    t0 = time.perf_counter()
    for tr, te in folds:
        params = select_svr(feats[tr], y[tr], seed)
        chosen.append(params)
        pred[te] = _svr_pipeline(**params).fit(feats[tr], y[tr]).predict(feats[te])
    return pred, time.perf_counter() - t0, chosen


def _combination_note(
    shipped: str,
    stack_name: str,
    extras: dict[str, Any],
    fusion: Any,
    gain: float,
    stack_gain: float,
    svr: dict[str, float] | None = None,
) -> str:
    """The card's sentence on what the served value combines."""
    if shipped == stack_name:
        st = extras["stack"]
        svr = svr or {"C": float("nan"), "gamma": float("nan")}
        return (
            "Value: a least-absolute-deviation stack of the distribution's expectation and an "
            f"RBF SVR on the frozen trunk features ({len(st['svr']['support'])} support "
            f"vectors, float16 in the file; C {svr['C']:g} and gamma {svr['gamma']:.3g} "
            f"chosen by an inner 3-fold CV): {st['intercept']:.3f} + {st['coef'][0]:.3f} x "
            f"E[top] + {st['coef'][1]:.3f} x SVR, weights fitted on out-of-fold predictions "
            f"(facecore.ldl.stack; CV Pearson gain {stack_gain:+.4f}, the geometric fusion's "
            f"{gain:+.4f}); the distribution is translated to that value."
        )
    if fusion:
        return (
            "Fusion: ridge regression of the rating on the deep expectation and the 42 "
            f"geometric landmark features (CV Pearson gain {gain:+.4f}); the distribution "
            "is translated to the fused value."
        )
    return (
        f"The top alone: neither the geometric fusion ({gain:+.4f}) nor the SVR stack "
        f"({stack_gain:+.4f}) raised the CV Pearson by {FUSION_GAIN}."
    )


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


def cv_fold_dir(dataset: str, cfg: LdlTrainConfig, target_rule: str) -> Path:
    """Where the cross-validation of the top on ``dataset`` keeps its folds and checkpoints."""
    tag = _tag(cfg.recipe, target_rule)
    return Path(cfg.work_dir) / f"{dataset}-cv-{cfg.folds}f-s{cfg.seed}-{tag}"


def _tag(recipe: TopRecipe, target_rule: str) -> str:
    import hashlib

    doc = json.dumps({"recipe": recipe.to_dict(), "targets": target_rule}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:8]
