"""Train, cross-validate and ship the attractiveness model on SCUT-FBP5500.

``main(data_dir, out)`` (the command ``facecore train attractiveness --data DIR --out
models/NAME`` and ``scripts/train_attractiveness.py``):

1. loads SCUT-FBP5500 from ``data_dir`` and runs every photo through
   ``FaceAnalyzer(stages=("trunk",))`` and :class:`~facecore.attractiveness.face_features.
   FaceFeatureExtractor` - the code that serves the model - keeping the largest face. Photos
   without a face are counted, reported and left out. The blocks are cached in an ``.npz`` under
   ``cache_dir`` keyed by the dataset hash, the feature-code version and the analyzer settings,
   so a rerun skips the extraction.
2. cross-validates (shuffled K-fold, fixed seed, the same folds for every row) every feature set
   with every learner of :mod:`~facecore.attractiveness.deep_regressors` (deep896, deep128,
   geometric, LBP, BLBP, PCANet x SVR, RF) and every score fusion of
   :mod:`~facecore.attractiveness.fusion` (the paper's geometric/texture/PCANet, each alone,
   each pair, all three; then each with the deep features), nested: fusion weights are learned
   inside the training folds only. Metrics: Pearson correlation (PC), MAE, RMSE of the pooled
   out-of-fold predictions, plus the spread of PC over the folds.
3. picks the fusion of two or more members with the highest cross-validated PC (ties: lower MAE,
   then fewer members) - a fixed rule - fits it on every photo with a face and writes
   ``<out>.joblib`` (an :class:`~facecore.attractiveness.model.AttractivenessModel`),
   ``<out>.md`` (model card), ``<out>.cv.json`` (the table and per-group metrics) and its entry
   in the ``manifest.json`` beside ``<out>``.

The steps are :func:`load_training_data`, :func:`cross_validate` (on
:func:`facecore.training.folds.kfold_splits`), :func:`choose_fusion`, :func:`fit_final` and the
artefact writer (:func:`model_card` through :func:`facecore.training.card.write_card`, the
manifest through :func:`facecore.model_store.write_manifest_entry`); the metrics are
:func:`facecore.metrics.regression_metrics`.

This module implements no paper itself (see :mod:`~facecore.attractiveness.deep_regressors` and
:mod:`~facecore.attractiveness.fusion`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.atomic import atomic_path
from facecore.attractiveness.face_features import (
    BLOCK_NAMES,
    FaceFeatureExtractor,
    Layout,
)
from facecore.metrics import regression_metrics
from facecore.training.card import ModelCard, markdown_table, package_versions
from facecore.training.folds import kfold_splits
from facecore.training.publish import Shipped
from facecore.training.runner import Data, Recipe, Run

if TYPE_CHECKING:
    from facecore.attractiveness.model import AttractivenessModel

__all__ = [
    "LICENCE",
    "REBUILD",
    "TABLE_HEADER",
    "DatasetFeatures",
    "ClassicalRecipe",
    "TableRow",
    "TrainingData",
    "choose_fusion",
    "cross_validate",
    "extract_dataset_features",
    "fit_final",
    "format_table",
    "group_metrics",
    "load_training_data",
    "model_card",
    "regression_metrics",
    "serving_time_ms",
]

logger = logging.getLogger(__name__)

#: Licence of every model trained here (it inherits the data's).
LICENCE = "trained on SCUT-FBP5500: non-commercial research use only"
#: The command that rebuilds the shipped model (named in the manifest and the model card).
REBUILD = (
    ".venv/bin/python scripts/train_attractiveness.py --data ../shared/data "
    "--out models/attractiveness_scut_classical"
)

#: Table names of the feature sets and the block each uses.
FEATURE_SET_ROWS: dict[str, str] = {
    "deep896": "deep",
    "deep128": "deep128",
    "geometric": "geometric",
    "lbp": "lbp",
    "blbp": "blbp",
    "pcanet": "pcanet",
}


# -- features ---------------------------------------------------------------------------------
@dataclass
class DatasetFeatures:
    """Feature blocks of every photo of a dataset.

    Attributes
    ----------
    blocks : dict of str to ndarray of shape (N, *block shape)
        Rows of photos without a face are zero.
    has_face : ndarray of shape (N,), bool
    detector : ndarray of shape (N,), str
        Detector that found the face ("" when none).
    seconds : float
        Time the extraction took (when it was run; also stored in the cache).
    cache_path : Path or None
    from_cache : bool
    """

    blocks: dict[str, np.ndarray]
    has_face: np.ndarray
    detector: np.ndarray
    seconds: float = 0.0
    cache_path: Path | None = None
    from_cache: bool = False

    def matrix(self, layout: Layout, rows: np.ndarray | None = None) -> np.ndarray:
        """The block matrix of ``rows`` (default: all), laid out by ``layout`` (float32)."""
        idx = np.arange(len(self.has_face)) if rows is None else np.asarray(rows)
        return np.concatenate(
            [self.blocks[name][idx].reshape(len(idx), -1).astype(np.float32) for name, _ in layout],
            axis=1,
        )


def _analyzer_tag(analyzer: Any) -> str:
    return hashlib.sha256(repr(analyzer.config).encode()).hexdigest()[:10]


def extract_dataset_features(
    dataset: Any,
    extractor: FaceFeatureExtractor,
    analyzer: Any = None,
    *,
    cache_dir: str | os.PathLike[str] | None = ".cache/features",
    progress: bool = False,
) -> DatasetFeatures:
    """Feature blocks of every photo of ``dataset`` (largest face), cached on disk.

    Parameters
    ----------
    dataset : FaceDataset
    extractor : FaceFeatureExtractor
    analyzer : FaceAnalyzer, optional
        Default: ``FaceAnalyzer(stages=("trunk",), max_faces=1)`` (the largest face only; the
        detector and per-face stages are those of serving).
    cache_dir : path-like or None
        Folder of the ``.npz`` cache (None: no cache).
    progress : bool
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    DatasetFeatures
    """
    from facecore.analyzer import FaceAnalyzer
    from facecore.datasets import dataset_hash, iter_images

    if analyzer is None:
        analyzer = FaceAnalyzer(stages=("trunk",), max_faces=1)
    key = (
        f"{dataset.name}-{dataset_hash(dataset)[:16]}-f{extractor.version}"
        f"-a{_analyzer_tag(analyzer)}"
    )
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.npz"
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            blocks = {name: z[f"block_{name}"] for name in BLOCK_NAMES}
            feats = DatasetFeatures(
                blocks=blocks,
                has_face=z["has_face"],
                detector=z["detector"],
                seconds=float(z["seconds"]) if "seconds" in z.files else 0.0,
                cache_path=path,
                from_cache=True,
            )
        logger.info("features of %d photos read from %s", len(feats.has_face), path)
        return feats

    analyzer.load()
    shapes = extractor.block_shapes()
    n = len(dataset)
    blocks = {
        name: np.zeros((n, *shapes[name]), dtype=np.uint8 if name == "pcanet" else np.float32)
        for name in BLOCK_NAMES
    }
    has_face = np.zeros(n, dtype=bool)
    detector = np.full(n, "", dtype="<U8")
    images = iter_images(dataset)
    if progress:
        from tqdm import tqdm

        images = tqdm(images, total=n, desc="features", unit="img")
    t0 = time.perf_counter()
    for i, image in enumerate(images):
        faces = analyzer.analyze(image)
        if not faces:
            logger.warning("no face found in %s; left out", dataset.relative_paths[i])
            continue
        for name, value in extractor.extract(image, faces[0]).items():
            blocks[name][i] = value
        has_face[i] = True
        detector[i] = faces[0].detector
    seconds = time.perf_counter() - t0
    logger.info("features of %d photos extracted in %.1f s", n, seconds)
    if path is not None:
        with atomic_path(path) as tmp:
            np.savez(
                tmp,
                has_face=has_face,
                detector=detector,
                seconds=np.float64(seconds),
                **{f"block_{k}": v for k, v in blocks.items()},
            )
        logger.info("feature cache written to %s", path)
    return DatasetFeatures(blocks, has_face, detector, seconds, path, False)


# -- table ------------------------------------------------------------------------------------
@dataclass
class TableRow:
    """One row of the cross-validation table."""

    name: str
    kind: str  # "feature set" or "fusion"
    members: tuple[str, ...]
    learner: str
    pc: float
    mae: float
    rmse: float
    pc_fold_sd: float
    weights: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "kind": self.kind,
            "members": list(self.members),
            "learner": self.learner,
            "pc": round(self.pc, 4),
            "mae": round(self.mae, 4),
            "rmse": round(self.rmse, 4),
            "pc_fold_sd": round(self.pc_fold_sd, 4),
        }
        if self.weights is not None:
            d["mean_weights_and_intercept"] = [round(w, 4) for w in self.weights]
        return d


def _row(
    name: str,
    kind: str,
    members: tuple[str, ...],
    learner: str,
    y: np.ndarray,
    pred: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray | None = None,
) -> TableRow:
    m = regression_metrics(y, pred)
    fold_pc = [regression_metrics(y[te], pred[te])["pc"] for _, te in folds]
    return TableRow(
        name,
        kind,
        members,
        learner,
        m["pc"],
        m["mae"],
        m["rmse"],
        float(np.std(fold_pc)),
        None if weights is None else np.asarray(weights).mean(axis=0).tolist(),
    )


TABLE_HEADER = ("model", "kind", "learner", "PC", "PC fold sd", "MAE", "RMSE")
_TABLE_ALIGN = ("l", "l", "l", "r", "r", "r", "r")


def _table_cells(rows: Sequence[TableRow], chosen: str | None) -> list[list[str | float]]:
    return [
        [
            r.name + (" **(chosen)**" if r.name == chosen else ""),
            r.kind,
            r.learner,
            r.pc,
            r.pc_fold_sd,
            r.mae,
            r.rmse,
        ]
        for r in rows
    ]


def format_table(rows: Sequence[TableRow], chosen: str | None = None) -> str:
    """The table as aligned text (Markdown pipe table; figures to 4 decimals)."""
    return markdown_table(TABLE_HEADER, _table_cells(rows, chosen), align=_TABLE_ALIGN)


def choose_fusion(rows: Sequence[TableRow]) -> TableRow:
    """The fusion of two or more members with the highest PC (ties: lower MAE, fewer members)."""
    fused = [r for r in rows if r.kind == "fusion" and len(r.members) >= 2]
    if not fused:
        raise ValueError("no fusion of two or more members in the table")
    return min(fused, key=lambda r: (-round(r.pc, 6), round(r.mae, 6), len(r.members)))


def serving_time_ms(
    photo: str | os.PathLike[str],
    model_name: str,
    models_dir: str | os.PathLike[str] | None = None,
    *,
    repeats: int = 20,
) -> dict[str, float]:
    """End-to-end time of scoring one photo: analyzer (detect, landmarks, trunk) + scorer.

    The photo is decoded once; each repeat runs ``FaceAnalyzer(stages=("trunk",)).analyze``
    and :class:`~facecore.attractiveness.model.AttractivenessStage` on the decoded image, after
    one untimed warm-up call (models loaded).

    Returns
    -------
    dict
        ``serving_median_ms``, ``serving_p90_ms``, ``scorer_median_ms`` (the scorer alone) and
        ``serving_repeats``.
    """
    from facecore.analyzer import FaceAnalyzer
    from facecore.attractiveness.model import AttractivenessStage
    from facecore.io import load_image

    image = load_image(photo)
    analyzer = FaceAnalyzer(stages=("trunk",)).load()
    scorer = AttractivenessStage(model=model_name, models_dir=models_dir)
    scorer.load()
    scorer(image, analyzer.analyze(image))  # warm-up
    total, scoring = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        faces = analyzer.analyze(image)
        t1 = time.perf_counter()
        scorer(image, faces)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        scoring.append(t2 - t1)
    return {
        "serving_median_ms": round(1000 * float(np.median(total)), 1),
        "serving_p90_ms": round(1000 * float(np.percentile(total, 90)), 1),
        "scorer_median_ms": round(1000 * float(np.median(scoring)), 1),
        "serving_repeats": repeats,
    }


# -- the protocol -----------------------------------------------------------------------------
@dataclass
class TrainingData:
    """The photos with a face, their targets and feature blocks (step 1 of :func:`main`).

    Attributes
    ----------
    dataset : FaceDataset
        Every photo (with and without a face).
    data_hash : str
        :func:`~facecore.datasets.dataset_hash` of ``dataset``.
    extractor : FaceFeatureExtractor
    features : DatasetFeatures
        Blocks of every photo of ``dataset``.
    rows : ndarray of shape (M,), int
        Rows of ``dataset`` with a face: the training samples.
    y : ndarray of shape (M,)
        Their mean ratings.
    groups : ndarray of shape (M,), str
        Their SCUT groups (AF, AM, CF, CM; ``"all"`` without groups).
    """

    dataset: Any
    data_hash: str
    extractor: FaceFeatureExtractor
    features: DatasetFeatures
    rows: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    @property
    def n_no_face(self) -> int:
        return int(len(self.dataset) - len(self.rows))

    def matrix(self, layout: Layout) -> np.ndarray:
        """The training samples' block matrix laid out by ``layout``, shape (M, D)."""
        return self.features.matrix(layout, self.rows)


def _fusion_name(members: Sequence[str]) -> str:
    return "fusion: " + " + ".join(members)


def _load_dataset(data_dir: str | os.PathLike[str], limit: int | None, seed: int) -> Any:
    from facecore.datasets import load_scut_fbp5500

    root = Path(data_dir)
    if not (root / "scut-fbp5500").is_dir() and (root / "labels.csv").is_file():
        root = root.parent  # the dataset folder itself was given
    ds = load_scut_fbp5500(root, landmarks=False)
    if limit is not None and limit < len(ds):
        rng = np.random.default_rng(seed)
        ds = ds.subset(np.sort(rng.permutation(len(ds))[:limit]))
    return ds


def load_training_data(
    data_dir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = ".cache/features",
    progress: bool = False,
) -> TrainingData:
    """SCUT-FBP5500 and its feature blocks; photos without a face are reported and left out.

    Parameters are those of :func:`main`.

    Returns
    -------
    TrainingData
    """
    from facecore.datasets import dataset_hash

    ds = _load_dataset(data_dir, limit, seed)
    extractor = FaceFeatureExtractor()
    feats = extract_dataset_features(ds, extractor, cache_dir=cache_dir, progress=progress)
    rows = np.flatnonzero(feats.has_face)
    data = TrainingData(
        dataset=ds,
        data_hash=dataset_hash(ds),
        extractor=extractor,
        features=feats,
        rows=rows,
        y=ds.targets[rows],
        groups=ds.groups[rows] if ds.groups is not None else np.full(len(rows), "all"),
    )
    if data.n_no_face:
        missing = [ds.relative_paths[i] for i in np.flatnonzero(~feats.has_face)]
        logger.warning("%d photo(s) without a face left out: %s", data.n_no_face, missing[:20])
    logger.info("%d photos, %d with a face, %d without", len(ds), len(rows), data.n_no_face)
    return data


def cross_validate(
    data: TrainingData,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    seed: int = 0,
    inner_folds: int = 5,
    n_jobs: int | None = 2,
    rf_trees: int = 300,
) -> tuple[list[TableRow], dict[tuple[str, ...], np.ndarray]]:
    """The cross-validation table: every feature set x learner, then every fusion.

    The SVR rows of the fusion members come from the fusion run itself (same folds, same
    estimators), the other rows from ``cross_val_predict`` on the same folds.

    Parameters
    ----------
    data : TrainingData
    folds : list of (train_idx, test_idx)
        Over the rows of ``data.y``.
    seed, inner_folds, n_jobs, rf_trees
        As in :func:`main`.

    Returns
    -------
    rows : list of TableRow
        Feature sets (:data:`FEATURE_SET_ROWS` x learners), then fusions.
    fusion_predictions : dict of members to ndarray of shape (M,)
        The pooled out-of-fold predictions of every fusion.
    """
    from sklearn.model_selection import cross_val_predict

    from facecore.attractiveness.deep_regressors import LEARNERS, DeepFeatureRegressor
    from facecore.attractiveness.fusion import (
        FeatureSetRegressor,
        fusion_combos,
        fusion_cross_val_predict,
        paper_estimators,
    )

    layout = data.extractor.layout(BLOCK_NAMES)
    X, y = data.matrix(layout), data.y
    members = paper_estimators(layout, random_state=seed)
    combos = fusion_combos()
    logger.info("cross-validating %d fusion members and %d fusions", len(members), len(combos))
    fcv = fusion_cross_val_predict(
        members,
        combos,
        X,
        y,
        cv=folds,
        inner_cv=inner_folds,
        random_state=seed,
        combiner="stack",
        n_jobs=n_jobs,
    )
    from_members = {("deep896", "svr"): "deep", ("geometric", "svr"): "geometric"}
    from_members |= {("blbp", "svr"): "texture", ("pcanet", "svr"): "pcanet"}

    table: list[TableRow] = []
    for row_name, block in FEATURE_SET_ROWS.items():
        for learner in LEARNERS:
            if (row_name, learner) in from_members:
                pred = fcv.members[from_members[(row_name, learner)]]
            else:
                est: Any
                if block in ("deep", "deep128"):
                    est = DeepFeatureRegressor(
                        learner=learner,
                        block=block,
                        layout=layout,
                        n_estimators=rf_trees,
                        random_state=seed,
                    )
                else:
                    est = FeatureSetRegressor(
                        block, layout, learner=learner, n_estimators=rf_trees, random_state=seed
                    )
                logger.info("cross-validating %s / %s", row_name, learner)
                pred = cross_val_predict(est, X, y, cv=folds, n_jobs=n_jobs)
            table.append(_row(row_name, "feature set", (block,), learner, y, pred, folds))
    for combo in combos:
        table.append(
            _row(
                _fusion_name(combo),
                "fusion",
                combo,
                "svr + stack",
                y,
                fcv.fusions[combo],
                folds,
                fcv.weights[combo],
            )
        )
    return table, dict(fcv.fusions)


def group_metrics(
    y: np.ndarray, pred: np.ndarray, groups: np.ndarray
) -> dict[str, dict[str, float]]:
    """:func:`~facecore.metrics.regression_metrics` and ``n`` of every group (sorted)."""
    return {
        g: {**regression_metrics(y[groups == g], pred[groups == g]), "n": int(np.sum(groups == g))}
        for g in sorted(set(groups.tolist()))
    }


def fit_final(
    data: TrainingData,
    chosen: TableRow,
    *,
    seed: int = 0,
    inner_folds: int = 5,
    n_jobs: int | None = 2,
) -> AttractivenessModel:
    """Fit the chosen fusion on every photo with a face, on the blocks it needs only.

    Returns
    -------
    AttractivenessModel
        Without metadata (:func:`main` adds it).
    """
    from facecore.attractiveness.fusion import (
        PAPER_MEMBERS,
        ScoreFusionRegressor,
        paper_estimators,
    )
    from facecore.attractiveness.model import AttractivenessModel

    member_blocks = {"deep": "deep", **PAPER_MEMBERS}  # the members of paper_estimators
    blocks = tuple(b for b in BLOCK_NAMES if b in {member_blocks[m] for m in chosen.members})
    layout = data.extractor.layout(blocks)
    final_members = paper_estimators(layout, random_state=seed)
    regressor = ScoreFusionRegressor(
        [(m, final_members[m]) for m in chosen.members],
        combiner="stack",
        cv=inner_folds,
        random_state=seed,
        n_jobs=n_jobs,
    ).fit(data.matrix(layout), data.y)
    return AttractivenessModel(regressor=regressor, extractor=data.extractor, layout=layout)


def _round_groups(per_group: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {g: {k: round(v, 4) for k, v in m.items()} for g, m in per_group.items()}


def _manifest_entry(
    model: AttractivenessModel,
    data: TrainingData,
    chosen: TableRow,
    cv_summary: dict[str, Any],
    per_group: dict[str, dict[str, float]],
) -> dict[str, Any]:
    from facecore.attractiveness.model import SCORE_RANGE

    crop = data.extractor.crop_spec
    scale = [int(v) if float(v).is_integer() else float(v) for v in SCORE_RANGE]
    return {
        "kind": "attractiveness",
        "task": "attractiveness",
        "architecture": "score_fusion",
        "input_size": None,
        "normalisation": None,
        "chip": {"method": crop.method, "size": crop.size, "padding": crop.padding},
        "outputs": [
            {"name": "attractiveness", "kind": "scalar", "scale": scale, "bins": None, "dim": None}
        ],
        "inputs": (
            "RGB image + Face with 68 iBUG landmarks and features['trunk'] (FaceAnalyzer stages "
            f"'landmarks' and 'trunk'); blocks {list(model.blocks)} from "
            f"facecore.attractiveness.face_features.FaceFeatureExtractor (version "
            f"{data.extractor.version}); output: attractiveness score on SCUT-FBP5500's 1-5 scale"
        ),
        "source": (
            "facecore.attractiveness.train (scripts/train_attractiveness.py): score fusion of "
            f"{' + '.join(chosen.members)} (Zang et al. 2017; Zhang, Xiao, Lu, PAA 2018)"
        ),
        "training_data": (
            f"SCUT-FBP5500, {len(data.dataset)} photos of shared/data (dataset sha256 "
            f"{data.data_hash}), {len(data.y)} with a face"
        ),
        "licence": LICENCE,
        "metrics": {"cv": cv_summary, "per_group": _round_groups(per_group)},
        "card": model.metadata["name"] + ".md",
        "rebuild": REBUILD,
    }


@dataclass(frozen=True)
class ClassicalRecipe(Recipe):
    """The classical SCUT-FBP5500 model's recipe (run by :func:`facecore.training.runner.train`).

    Attributes
    ----------
    folds, seed : int
        Outer cross-validation (shuffled ``KFold`` seeded by ``seed``; the seed also seeds the
        inner folds, PCANet, PCA and the forests).
    cache_dir : path-like or None, default ".cache/features"
        Feature cache folder (None: no cache).
    inner_folds : int
        Inner folds of the fusion weights.
    n_jobs : int or None
        Parallel cross-validation tasks.
    rf_trees : int
        Trees of the random forests.
    limit : int, optional
        Use only this many photos (a seeded random subset; for quick checks).
    progress : bool
        Progress bar during extraction.
    serving_repeats : int
        Time this many end-to-end scorings of one photo with the written model (0: skip).
    report : callable, optional
        Called with the finished table (text); e.g. ``print``. The table is always logged.
    """

    name: str = "attractiveness_scut_classical"
    folds: int = 5
    seed: int = 0
    cache_dir: str | os.PathLike[str] | None = ".cache/features"
    inner_folds: int = 5
    n_jobs: int | None = 2
    rf_trees: int = 300
    limit: int | None = None
    progress: bool = False
    serving_repeats: int = 20
    report: Callable[[str], None] | None = None
    #: Its cv.json is its own (the table's rows carry kind, members and learner).
    cv_header: bool = False

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        """SCUT-FBP5500 and its feature blocks (:func:`load_training_data`)."""
        t0 = time.perf_counter()
        data = load_training_data(
            data_root,
            limit=self.limit,
            seed=self.seed,
            cache_dir=self.cache_dir,
            progress=self.progress,
        )
        return Data(
            y=data.y,
            features={},
            groups={"group": data.groups},
            title="SCUT-FBP5500",
            n_photos=len(data.dataset),
            data_hash=data.data_hash,
            extra={"training": data, "t0": t0},
        )

    def evaluate(self, data: Data, *, device: str = "cpu") -> Run:
        """The table (:func:`cross_validate`) and the chosen fusion (:func:`choose_fusion`)."""
        run = Run(self, data, kfold_splits(len(data.y), self.folds, self.seed), device)
        t0 = time.perf_counter()
        rows, fusion_pred = cross_validate(
            data.extra["training"],
            run.folds,
            seed=self.seed,
            inner_folds=self.inner_folds,
            n_jobs=self.n_jobs,
            rf_trees=self.rf_trees,
        )
        run.seconds["cross_validation"] = time.perf_counter() - t0
        chosen = choose_fusion(rows)
        data.extra |= {"rows": rows, "chosen": chosen, "fusion_pred": fusion_pred}
        run.table = {f"{r.name} / {r.learner}": r.to_dict() for r in rows}
        run.chosen = f"{chosen.name} / {chosen.learner}"
        table = format_table(rows, chosen.name)
        if self.report is None:
            logger.info("cross-validation table:\n%s", table)
        else:
            self.report(table)
        return run

    def ship(self, run: Run, out: Path) -> Shipped:
        """The chosen fusion fitted on every photo with a face, and its documents."""
        data = run.data.extra["training"]
        rows, chosen = run.data.extra["rows"], run.data.extra["chosen"]
        per_group = group_metrics(
            data.y, run.data.extra["fusion_pred"][chosen.members], data.groups
        )
        logger.info(
            "chosen: %s (PC %.4f); fitting it on %d photos", chosen.name, chosen.pc, len(data.y)
        )
        t_fit = time.perf_counter()
        model = fit_final(
            data, chosen, seed=self.seed, inner_folds=self.inner_folds, n_jobs=self.n_jobs
        )
        t_done = time.perf_counter()
        timings: dict[str, Any] = {
            "feature_extraction_s": round(data.features.seconds, 1),
            "features_from_cache": data.features.from_cache,
            "cross_validation_s": round(run.seconds["cross_validation"], 1),
            "final_fit_s": round(t_done - t_fit, 1),
            "total_s": round(t_done - run.data.extra["t0"], 1),
        }
        versions = package_versions()
        cv_summary = {
            "protocol": f"{self.folds}-fold KFold(shuffle=True, random_state={self.seed}) on the "
            f"{len(data.y)} photos with a face; fusion weights from {self.inner_folds} inner "
            "folds (nested)",
            "pc": round(chosen.pc, 4),
            "mae": round(chosen.mae, 4),
            "rmse": round(chosen.rmse, 4),
        }
        model.metadata = {
            "name": out.name,
            "members": list(chosen.members),
            "training_data": f"SCUT-FBP5500 ({len(data.dataset)} photos, {len(data.y)} with a "
            "face)",
            "dataset_sha256": data.data_hash,
            "seed": self.seed,
            "cv": cv_summary,
            "licence": LICENCE,
            "packages": versions,
        }

        def cv_doc(model_path: Path) -> dict[str, Any]:
            # Serving time of the written file through the model store, as the stage runs it.
            if self.serving_repeats > 0:
                first = data.dataset.paths[int(data.rows[0])]
                timings.update(
                    serving_time_ms(first, out.name, out.parent, repeats=self.serving_repeats)
                )
            return {
                "name": out.name,
                "dataset": "SCUT-FBP5500",
                "dataset_sha256": data.data_hash,
                "n_photos": len(data.dataset),
                "n_with_face": int(len(data.y)),
                "n_no_face": data.n_no_face,
                "folds": self.folds,
                "inner_folds": self.inner_folds,
                "seed": self.seed,
                "feature_version": data.extractor.version,
                "rows": [r.to_dict() for r in rows],
                "chosen": chosen.name,
                "chosen_rule": "highest PC among fusions of >= 2 members (ties: lower MAE, "
                "fewer members)",
                "per_group": _round_groups(per_group),
                "timings": timings,
                "model_file_mb": round(model_path.stat().st_size / 1e6, 2),
                "packages": versions,
            }

        def card(model_path: Path, figures: list[tuple[Path, str]]) -> ModelCard:
            return model_card(
                out.name,
                n_photos=len(data.dataset),
                n_used=len(data.y),
                n_no_face=data.n_no_face,
                data_hash=data.data_hash,
                table=rows,
                chosen=chosen,
                per_group=per_group,
                regressor=model.regressor,
                blocks=model.blocks,
                extractor=data.extractor,
                timings=timings,
                size_mb=model_path.stat().st_size / 1e6,
                versions=versions,
                folds=self.folds,
                inner_folds=self.inner_folds,
                seed=self.seed,
            )

        return Shipped(
            model,
            ".joblib",
            cv_doc,
            lambda path: _manifest_entry(model, data, chosen, cv_summary, per_group),
            card,
            indent=2,
        )


def model_card(
    name: str,
    *,
    n_photos: int,
    n_used: int,
    n_no_face: int,
    data_hash: str,
    table: Sequence[TableRow],
    chosen: TableRow,
    per_group: dict[str, dict[str, float]],
    regressor: Any,
    blocks: Sequence[str],
    extractor: FaceFeatureExtractor,
    timings: dict[str, Any],
    size_mb: float,
    versions: dict[str, str],
    folds: int,
    inner_folds: int,
    seed: int,
) -> ModelCard:
    """The model card of a trained attractiveness model (see :mod:`facecore.training.card`)."""
    weights = ", ".join(
        f"{m} {w:.3f}" for m, w in zip(regressor.names, regressor.weights_, strict=True)
    )
    return ModelCard(
        name=name,
        summary="Facial attractiveness score on SCUT-FBP5500's 1-5 scale (mean rating of 60 "
        "raters).",
        licence=LICENCE,
        model=[
            f"Score-level fusion ({chosen.name.removeprefix('fusion: ')}) of per-feature-set RBF "
            "SVRs,\n  combined by non-negative least squares learned on "
            f"{inner_folds}-fold out-of-fold predictions\n  (stacking). Weights on the final "
            f"fit: {weights}; intercept {regressor.intercept_:.3f}.",
            "Papers: X. Zang et al., \"Prediction of users' facial attractiveness on an online "
            'dating\n  website", ICME Workshops 2017 (deep features + SVR/RF); B. Zhang, X. Xiao, '
            'G. Lu, "Facial\n  beauty analysis based on features prediction and beautification '
            'models", PAA 21(2), 2018\n  (geometric + greedy selection, texture, PCANet, score '
            "fusion). Departures are listed in the\n  docstrings of "
            "`facecore/attractiveness/deep_regressors.py` and `fusion.py`.",
            'Inputs: an RGB image and a `Face` with 68 landmarks and `features["trunk"]` '
            "(FaceAnalyzer\n  stages `landmarks` and `trunk`); feature blocks "
            f"{list(blocks)} from\n  `FaceFeatureExtractor` version `{extractor.version}` "
            f"({json.dumps(extractor.config())}).\n  Output clipped to [1, 5].",
            f"File: `{name}.joblib`, {size_mb:.1f} MB.",
        ],
        training_data=(
            f"SCUT-FBP5500 as in `shared/data` ({n_photos} photos; the official 40% test split "
            f"is held back).\nDataset sha256 `{data_hash}`. Photos without a detected face: "
            f"{n_no_face} (left out); trained on\n{n_used}."
        ),
        evaluation=(
            f"{folds}-fold cross-validation (`KFold(shuffle=True, random_state={seed})`, the same "
            f"folds for\nevery row) on the {n_used} photos; fusion weights learned inside the "
            f"training folds only\n({inner_folds} inner folds). PC: Pearson correlation of the "
            "pooled out-of-fold predictions\nwith the mean ratings; PC fold sd: its standard "
            "deviation over the folds. Chosen by rule: the\nfusion of two or more members with "
            "the highest PC."
        ),
        tables=[
            ("", TABLE_HEADER, _table_cells(table, chosen.name)),
            (
                "Chosen model, per group (out-of-fold predictions; AF/AM: Asian female/male, "
                "CF/CM: Caucasian\nfemale/male):",
                ("group", "n", "PC", "MAE", "RMSE"),
                [[g, m["n"], m["pc"], m["mae"], m["rmse"]] for g, m in per_group.items()],
            ),
        ],
        evaluation_notes=f"Timings on the training machine: {json.dumps(timings)}.",
        limitations=[
            "Trained on frontal, neutral, well-lit studio-style photos of young Asian and "
            "Caucasian adults;\n  scores of other photos (pose, lighting, age, ethnicity) are "
            "extrapolations.",
            "The score is the average taste of SCUT-FBP5500's raters, not a property of a person.",
            "Cross-validated figures come from the same 3,300 photos used for model choice; the "
            "held-back\n  test split gives the independent estimate.",
        ],
        rebuild=REBUILD,
        rebuild_note=f"Seed {seed}; a rerun reproduces the table.",
        packages=versions,
    )
