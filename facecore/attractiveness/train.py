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
   with every learner of :mod:`~facecore.attractiveness.dating` (deep896, deep128, geometric,
   LBP, BLBP, PCANet x SVR, RF) and every score fusion of
   :mod:`~facecore.attractiveness.fusion` (the paper's geometric/texture/PCANet, each alone,
   each pair, all three; then each with the deep features), nested: fusion weights are learned
   inside the training folds only. Metrics: Pearson correlation (PC), MAE, RMSE of the pooled
   out-of-fold predictions, plus the spread of PC over the folds.
3. picks the fusion of two or more members with the highest cross-validated PC (ties: lower MAE,
   then fewer members) - a fixed rule - fits it on every photo with a face and writes
   ``<out>.joblib`` (an :class:`~facecore.attractiveness.model.AttractivenessModel`),
   ``<out>.md`` (model card), ``<out>.cv.json`` (the table and per-group metrics) and its entry
   in the ``manifest.json`` beside ``<out>``.

This module implements no paper itself (see :mod:`~facecore.attractiveness.dating` and
:mod:`~facecore.attractiveness.fusion`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore.attractiveness.face_features import (
    BLOCK_NAMES,
    FaceFeatureExtractor,
    Layout,
)

__all__ = [
    "LICENCE",
    "DatasetFeatures",
    "TrainResult",
    "choose_fusion",
    "extract_dataset_features",
    "format_table",
    "main",
    "regression_metrics",
    "serving_time_ms",
]

logger = logging.getLogger(__name__)

#: Licence of every model trained here (it inherits the data's).
LICENCE = "trained on SCUT-FBP5500: non-commercial research use only"
#: The command that rebuilds the shipped model (named in the manifest and the model card).
REBUILD = (
    ".venv/bin/python scripts/train_attractiveness.py --data ../shared/data "
    "--out models/attractiveness_scut"
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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            has_face=has_face,
            detector=detector,
            seconds=np.float64(seconds),
            **{f"block_{k}": v for k, v in blocks.items()},
        )
        os.replace(tmp, path)
        logger.info("feature cache written to %s", path)
    return DatasetFeatures(blocks, has_face, detector, seconds, path, False)


# -- metrics and table --------------------------------------------------------------------------
def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Pearson correlation, MAE and RMSE of predictions.

    Returns
    -------
    dict with keys ``pc``, ``mae``, ``rmse``
    """
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    pc = float(np.corrcoef(y, pred)[0, 1]) if np.ptp(pred) > 0 and np.ptp(y) > 0 else float("nan")
    err = pred - y
    return {
        "pc": pc,
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
    }


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


def format_table(rows: Sequence[TableRow], chosen: str | None = None) -> str:
    """The table as aligned text (Markdown pipe table)."""
    lines = [
        "| model | kind | learner | PC | PC fold sd | MAE | RMSE |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " **(chosen)**" if r.name == chosen else ""
        lines.append(
            f"| {r.name}{mark} | {r.kind} | {r.learner} | {r.pc:.4f} | {r.pc_fold_sd:.4f} | "
            f"{r.mae:.4f} | {r.rmse:.4f} |"
        )
    return "\n".join(lines)


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
    and :class:`~facecore.attractiveness.model.AttractivenessScorer` on the decoded image, after
    one untimed warm-up call (models loaded).

    Returns
    -------
    dict
        ``serving_median_ms``, ``serving_p90_ms``, ``scorer_median_ms`` (the scorer alone) and
        ``serving_repeats``.
    """
    from facecore.analyzer import FaceAnalyzer
    from facecore.attractiveness.model import AttractivenessScorer
    from facecore.io import load_image

    image = load_image(photo)
    analyzer = FaceAnalyzer(stages=("trunk",)).load()
    scorer = AttractivenessScorer(model_name, models_dir=models_dir)
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


# -- training ---------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`main` produced."""

    rows: list[TableRow]
    chosen: TableRow
    groups: dict[str, dict[str, float]]
    n_photos: int
    n_no_face: int
    model_path: Path
    card_path: Path
    cv_path: Path
    manifest_path: Path
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return format_table(self.rows, self.chosen.name)


def _package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in (
        "facecore",
        "numpy",
        "scipy",
        "scikit-learn",
        "scikit-image",
        "opencv-python-headless",
        "torch",
        "dlib-bin",
        "joblib",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


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


def _update_manifest(manifest_path: Path, entry: dict[str, Any]) -> None:
    if manifest_path.is_file():
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    else:
        data = {"schema": 1, "models": []}
    models = [m for m in data.get("models", []) if m.get("name") != entry["name"]]
    models.append(entry)
    data["models"] = models
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)


def main(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    folds: int = 5,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = ".cache/features",
    inner_folds: int = 5,
    n_jobs: int | None = 2,
    rf_trees: int = 300,
    limit: int | None = None,
    progress: bool = False,
    serving_repeats: int = 20,
    report: Callable[[str], None] | None = None,
) -> TrainResult:
    """Extract features, cross-validate every model, fit the chosen fusion and ship it.

    Parameters
    ----------
    data_dir : path-like
        Folder holding ``scut-fbp5500/`` (or that folder itself).
    out : path-like
        Output stem, e.g. ``models/attractiveness_scut``: writes ``<out>.joblib``, ``<out>.md``,
        ``<out>.cv.json`` and the entry named ``basename(out)`` in ``<out's folder>/manifest.json``.
    folds : int, default 5
        Outer cross-validation folds (shuffled ``KFold`` seeded by ``seed``).
    seed : int, default 0
        Seeds the folds, the inner folds, PCANet, PCA and the forests.
    cache_dir : path-like or None, default ".cache/features"
        Feature cache folder (None: no cache).
    inner_folds : int, default 5
        Inner folds of the fusion weights.
    n_jobs : int or None, default 2
        Parallel cross-validation tasks.
    rf_trees : int, default 300
        Trees of the random forests.
    limit : int, optional
        Use only this many photos (a seeded random subset; for quick checks).
    progress : bool
        Progress bar during extraction.
    serving_repeats : int, default 20
        Time this many end-to-end scorings of one photo with the written model (0: skip).
    report : callable, optional
        Called with the finished table (text); e.g. ``print``. The table is always logged.

    Returns
    -------
    TrainResult
    """
    from sklearn.model_selection import KFold, cross_val_predict

    from facecore.attractiveness.dating import LEARNERS, DeepFeatureRegressor
    from facecore.attractiveness.fusion import (
        PAPER_MEMBERS,
        FeatureSetRegressor,
        ScoreFusionRegressor,
        fusion_combos,
        fusion_cross_val_predict,
        paper_estimators,
    )
    from facecore.attractiveness.model import AttractivenessModel
    from facecore.datasets import dataset_hash
    from facecore.model_store import sha256_file

    t_start = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds = _load_dataset(data_dir, limit, seed)
    data_hash = dataset_hash(ds)
    extractor = FaceFeatureExtractor()
    feats = extract_dataset_features(ds, extractor, cache_dir=cache_dir, progress=progress)
    rows_idx = np.flatnonzero(feats.has_face)
    n_no_face = int(len(ds) - len(rows_idx))
    if n_no_face:
        missing = [ds.relative_paths[i] for i in np.flatnonzero(~feats.has_face)]
        logger.warning("%d photo(s) without a face left out: %s", n_no_face, missing[:20])
    logger.info("%d photos, %d with a face, %d without", len(ds), len(rows_idx), n_no_face)
    y = ds.targets[rows_idx]
    groups = ds.groups[rows_idx] if ds.groups is not None else np.full(len(rows_idx), "all")
    full_layout = extractor.layout(BLOCK_NAMES)
    X = feats.matrix(full_layout, rows_idx)
    cv_folds = list(KFold(folds, shuffle=True, random_state=seed).split(X))
    t_cv = time.perf_counter()

    # Fusion members (their SVR rows come from the same run).
    members = paper_estimators(full_layout, random_state=seed)
    combos = fusion_combos()
    logger.info("cross-validating %d fusion members and %d fusions", len(members), len(combos))
    fcv = fusion_cross_val_predict(
        members,
        combos,
        X,
        y,
        cv=cv_folds,
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
                if block in ("deep", "deep128"):
                    est: Any = DeepFeatureRegressor(
                        learner=learner,
                        block=block,
                        layout=full_layout,
                        n_estimators=rf_trees,
                        random_state=seed,
                    )
                else:
                    est = FeatureSetRegressor(
                        block,
                        full_layout,
                        learner=learner,
                        n_estimators=rf_trees,
                        random_state=seed,
                    )
                logger.info("cross-validating %s / %s", row_name, learner)
                pred = cross_val_predict(est, X, y, cv=cv_folds, n_jobs=n_jobs)
            table.append(_row(row_name, "feature set", (block,), learner, y, pred, cv_folds))
    for combo in combos:
        table.append(
            _row(
                _fusion_name(combo),
                "fusion",
                combo,
                "svr + stack",
                y,
                fcv.fusions[combo],
                cv_folds,
                fcv.weights[combo],
            )
        )
    chosen = choose_fusion(table)
    chosen_pred = fcv.fusions[chosen.members]
    per_group = {
        g: {
            **regression_metrics(y[groups == g], chosen_pred[groups == g]),
            "n": int(np.sum(groups == g)),
        }
        for g in sorted(set(groups.tolist()))
    }
    t_fit = time.perf_counter()
    logger.info("chosen: %s (PC %.4f); fitting it on %d photos", chosen.name, chosen.pc, len(y))

    # Final fit on every photo with a face, on the blocks the chosen fusion needs only.
    member_blocks = {"deep": "deep", **PAPER_MEMBERS}  # the members of paper_estimators
    blocks = tuple(b for b in BLOCK_NAMES if b in {member_blocks[m] for m in chosen.members})
    layout = extractor.layout(blocks)
    final_members = paper_estimators(layout, random_state=seed)
    regressor = ScoreFusionRegressor(
        [(m, final_members[m]) for m in chosen.members],
        combiner="stack",
        cv=inner_folds,
        random_state=seed,
        n_jobs=n_jobs,
    ).fit(feats.matrix(layout, rows_idx), y)
    t_done = time.perf_counter()

    versions = _package_versions()
    timings = {
        "feature_extraction_s": round(feats.seconds, 1),
        "features_from_cache": feats.from_cache,
        "cross_validation_s": round(t_fit - t_cv, 1),
        "final_fit_s": round(t_done - t_fit, 1),
        "total_s": round(t_done - t_start, 1),
    }
    cv_summary = {
        "protocol": f"{folds}-fold KFold(shuffle=True, random_state={seed}) on the {len(y)} "
        f"photos with a face; fusion weights from {inner_folds} inner folds (nested)",
        "pc": round(chosen.pc, 4),
        "mae": round(chosen.mae, 4),
        "rmse": round(chosen.rmse, 4),
    }
    model = AttractivenessModel(
        regressor=regressor,
        extractor=extractor,
        layout=layout,
        metadata={
            "name": out.name,
            "members": list(chosen.members),
            "training_data": f"SCUT-FBP5500 ({len(ds)} photos, {len(y)} with a face)",
            "dataset_sha256": data_hash,
            "seed": seed,
            "cv": cv_summary,
            "licence": LICENCE,
            "packages": versions,
        },
    )
    model_path = out.with_name(out.name + ".joblib")
    model.save(model_path)
    size_mb = model_path.stat().st_size / 1e6
    logger.info("model written to %s (%.1f MB)", model_path, size_mb)

    per_group_rounded = {g: {k: round(v, 4) for k, v in m.items()} for g, m in per_group.items()}
    manifest_path = out.parent / "manifest.json"
    entry = {
        "name": out.name,
        "file": model_path.name,
        "sha256": sha256_file(model_path),
        "kind": "attractiveness",
        "inputs": (
            "RGB image + Face with 68 iBUG landmarks and features['trunk'] (FaceAnalyzer stages "
            f"'landmarks' and 'trunk'); blocks {list(blocks)} from "
            f"facecore.attractiveness.face_features.FaceFeatureExtractor (version "
            f"{extractor.version}); output: attractiveness score on SCUT-FBP5500's 1-5 scale"
        ),
        "source": (
            "facecore.attractiveness.train (scripts/train_attractiveness.py): score fusion of "
            f"{' + '.join(chosen.members)} (Zang et al. 2017; Zhang, Xiao, Lu, PAA 2018)"
        ),
        "training_data": (
            f"SCUT-FBP5500, {len(ds)} photos of shared/data (dataset sha256 {data_hash}), "
            f"{len(y)} with a face"
        ),
        "licence": LICENCE,
        "metrics": {"cv": cv_summary, "per_group": per_group_rounded},
        "card": out.name + ".md",
        "rebuild": REBUILD,
    }
    _update_manifest(manifest_path, entry)
    logger.info("manifest entry %r written to %s", out.name, manifest_path)

    # Serving time of the shipped file through the model store, as the analyzer stage runs it.
    if serving_repeats > 0:
        timings |= serving_time_ms(
            ds.paths[int(rows_idx[0])], out.name, out.parent, repeats=serving_repeats
        )

    cv_path = out.with_name(out.name + ".cv.json")
    cv_doc = {
        "name": out.name,
        "dataset": "SCUT-FBP5500",
        "dataset_sha256": data_hash,
        "n_photos": len(ds),
        "n_with_face": int(len(y)),
        "n_no_face": n_no_face,
        "folds": folds,
        "inner_folds": inner_folds,
        "seed": seed,
        "feature_version": extractor.version,
        "rows": [r.to_dict() for r in table],
        "chosen": chosen.name,
        "chosen_rule": "highest PC among fusions of >= 2 members (ties: lower MAE, fewer members)",
        "per_group": per_group_rounded,
        "timings": timings,
        "model_file_mb": round(size_mb, 2),
        "packages": versions,
    }

    cv_path.write_text(json.dumps(cv_doc, indent=2) + "\n", encoding="utf-8")

    card_path = out.with_name(out.name + ".md")
    card_path.write_text(
        _model_card(
            out.name,
            ds,
            len(y),
            n_no_face,
            data_hash,
            table,
            chosen,
            per_group,
            regressor,
            blocks,
            extractor,
            timings,
            size_mb,
            versions,
            folds,
            inner_folds,
            seed,
        ),
        encoding="utf-8",
    )

    result = TrainResult(
        rows=table,
        chosen=chosen,
        groups=per_group,
        n_photos=len(ds),
        n_no_face=n_no_face,
        model_path=model_path,
        card_path=card_path,
        cv_path=cv_path,
        manifest_path=manifest_path,
        timings=timings,
    )
    if report is None:
        logger.info("cross-validation table:\n%s", result.table)
    else:
        report(result.table)
    return result


def _model_card(
    name: str,
    ds: Any,
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
) -> str:
    weights = ", ".join(
        f"{m} {w:.3f}" for m, w in zip(regressor.names, regressor.weights_, strict=True)
    )
    group_lines = "\n".join(
        f"| {g} | {m['n']} | {m['pc']:.4f} | {m['mae']:.4f} | {m['rmse']:.4f} |"
        for g, m in per_group.items()
    )
    version_lines = "\n".join(f"- {k} {v}" for k, v in versions.items())
    return f"""# Model card: `{name}`

Facial attractiveness score on SCUT-FBP5500's 1-5 scale (mean rating of 60 raters).

**Licence: {LICENCE}.** The model inherits the licence of its training data.

## Model
- Score-level fusion ({chosen.name.removeprefix("fusion: ")}) of per-feature-set RBF SVRs,
  combined by non-negative least squares learned on {inner_folds}-fold out-of-fold predictions
  (stacking). Weights on the final fit: {weights}; intercept {regressor.intercept_:.3f}.
- Papers: X. Zang et al., "Prediction of users' facial attractiveness on an online dating
  website", ICME Workshops 2017 (deep features + SVR/RF); B. Zhang, X. Xiao, G. Lu, "Facial
  beauty analysis based on features prediction and beautification models", PAA 21(2), 2018
  (geometric + greedy selection, texture, PCANet, score fusion). Departures are listed in the
  docstrings of `facecore/attractiveness/dating.py` and `fusion.py`.
- Inputs: an RGB image and a `Face` with 68 landmarks and `features["trunk"]` (FaceAnalyzer
  stages `landmarks` and `trunk`); feature blocks {list(blocks)} from
  `FaceFeatureExtractor` version `{extractor.version}` ({json.dumps(extractor.config())}).
  Output clipped to [1, 5].
- File: `{name}.joblib`, {size_mb:.1f} MB.

## Training data
SCUT-FBP5500 as in `shared/data` ({len(ds)} photos; the official 40% test split is held back).
Dataset sha256 `{data_hash}`. Photos without a detected face: {n_no_face} (left out); trained on
{n_used}.

## Evaluation
{folds}-fold cross-validation (`KFold(shuffle=True, random_state={seed})`, the same folds for
every row) on the {n_used} photos; fusion weights learned inside the training folds only
({inner_folds} inner folds). PC: Pearson correlation of the pooled out-of-fold predictions
with the mean ratings; PC fold sd: its standard deviation over the folds. Chosen by rule: the
fusion of two or more members with the highest PC.

{format_table(table, chosen.name)}

Chosen model, per group (out-of-fold predictions; AF/AM: Asian female/male, CF/CM: Caucasian
female/male):

| group | n | PC | MAE | RMSE |
|---|---:|---:|---:|---:|
{group_lines}

Timings on the training machine: {json.dumps(timings)}.

## Limitations
- Trained on frontal, neutral, well-lit studio-style photos of young Asian and Caucasian adults;
  scores of other photos (pose, lighting, age, ethnicity) are extrapolations.
- The score is the average taste of SCUT-FBP5500's raters, not a property of a person.
- Cross-validated figures come from the same 3,300 photos used for model choice; the held-back
  test split gives the independent estimate.

## Rebuild
```sh
{REBUILD}
```
Seed {seed}; a rerun reproduces the table. Package versions:
{version_lines}
"""
