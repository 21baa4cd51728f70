"""The classical SCUT-FBP5500 attractiveness model's recipe (``attractiveness_scut_classical``).

Every feature set x learner of :mod:`~facecore.attractiveness.deep_regressors` and every score
fusion of :mod:`~facecore.attractiveness.fusion` cross-validated on the same folds; the chosen
fusion (:func:`choose_fusion`) fitted on every photo with a face. The feature blocks of the
training photos come from the serving code (:func:`extract_dataset_features`), cached. This module
implements no paper itself (see ``deep_regressors`` and ``fusion``); the steps are in
``docs/training.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sklearn.model_selection import cross_val_predict

from facecore.analyzer import FaceAnalyzer
from facecore.atomic import atomic_path
from facecore.attractiveness.deep_regressors import LEARNERS, DeepFeatureRegressor
from facecore.attractiveness.face_features import BLOCK_NAMES, FaceFeatureExtractor
from facecore.attractiveness.fusion import (
    PAPER_MEMBERS,
    FeatureSetRegressor,
    ScoreFusionRegressor,
    fusion_combos,
    fusion_cross_val_predict,
    paper_estimators,
)
from facecore.attractiveness.model import SCORE_RANGE, AttractivenessModel, AttractivenessStage
from facecore.datasets import dataset_hash, iter_images, load_scut_fbp5500
from facecore.io import load_image
from facecore.metrics import regression_metrics
from facecore.training.publish import ModelCard, Shipped, markdown_table, package_versions, rounded
from facecore.training.runner import Data, Recipe, Run

__all__ = [
    "LICENCE",
    "REBUILD",
    "ClassicalRecipe",
    "DatasetFeatures",
    "choose_fusion",
    "extract_dataset_features",
    "format_table",
    "model_card",
]

logger = logging.getLogger(__name__)

#: Licence of every model trained here (it inherits the data's).
LICENCE = "trained on SCUT-FBP5500: non-commercial research use only"
#: The command that rebuilds the shipped model (named in the manifest and the model card).
REBUILD = (
    ".venv/bin/python scripts/train_attractiveness.py --data ../shared/data "
    "--out models/attractiveness_scut_classical"
)
#: Table rows of the feature sets: name -> block.
FEATURE_SET_ROWS = {"deep896": "deep", "deep128": "deep128", "geometric": "geometric"}
FEATURE_SET_ROWS |= {"lbp": "lbp", "blbp": "blbp", "pcanet": "pcanet"}
#: The block of each member of :func:`~facecore.attractiveness.fusion.paper_estimators`.
MEMBER_BLOCKS = {"deep": "deep", **PAPER_MEMBERS}
TABLE_HEADER = ("model", "kind", "learner", "PC", "PC fold sd", "MAE", "RMSE")
CHOSEN_RULE = "highest PC among fusions of >= 2 members (ties: lower MAE, fewer members)"


def _table_cells(rows: Sequence[dict[str, Any]], chosen: str | None) -> list[list[Any]]:
    cells = ("kind", "learner", "pc", "pc_fold_sd", "mae", "rmse")
    mark = {chosen: " **(chosen)**"}
    return [[r["name"] + mark.get(r["name"], ""), *(r[c] for c in cells)] for r in rows]


def format_table(rows: Sequence[dict[str, Any]], chosen: str | None = None) -> str:
    """The table rows (``cv.json``'s) as a Markdown pipe table, figures to 4 decimals."""
    align = ("l", "l", "l", "r", "r", "r", "r")
    return markdown_table(TABLE_HEADER, _table_cells(rows, chosen), align=align)


def choose_fusion(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fusion of two or more members with the highest PC (ties: lower MAE, fewer members)."""
    fused = [r for r in rows if r["kind"] == "fusion" and len(r["members"]) >= 2]
    if not fused:
        raise ValueError("no fusion of two or more members in the table")
    return min(fused, key=lambda r: (-round(r["pc"], 6), round(r["mae"], 6), len(r["members"])))


class DatasetFeatures(NamedTuple):
    """Feature blocks of every photo of a dataset (zero where no face was found), which photos
    have a face, the seconds the extraction took (kept in the cache) and whether it was read."""

    blocks: dict[str, np.ndarray]
    has_face: np.ndarray
    seconds: float
    from_cache: bool


def extract_dataset_features(
    dataset: Any,
    extractor: FaceFeatureExtractor,
    *,
    cache_dir: str | os.PathLike[str] | None = ".cache/features",
    progress: bool = False,
) -> DatasetFeatures:
    """Feature blocks of every photo of ``dataset`` (its largest face), by the serving code.

    Parameters
    ----------
    dataset : FaceDataset
    extractor : FaceFeatureExtractor
    cache_dir : path-like or None
        Folder of the ``.npz`` cache, keyed by the dataset's hash, the feature version and the
        analyzer's settings (None: neither read nor written).
    progress : bool
        Show a tqdm bar (on stderr).

    Returns
    -------
    DatasetFeatures
    """
    analyzer = FaceAnalyzer(stages=("trunk",), max_faces=1)
    tag = hashlib.sha256(repr(analyzer.config).encode()).hexdigest()[:10]
    key = f"{dataset.name}-{dataset_hash(dataset)[:16]}-f{extractor.version}-a{tag}"
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.npz"
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            blocks = {name: z[f"block_{name}"] for name in BLOCK_NAMES}
            seconds = float(z["seconds"]) if "seconds" in z.files else 0.0
            feats = DatasetFeatures(blocks, z["has_face"], seconds, True)
        logger.info("features of %d photos read from %s", len(feats.has_face), path)
        return feats
    analyzer.load()
    n, shapes = len(dataset), extractor.block_shapes()
    blocks = {
        name: np.zeros((n, *shapes[name]), dtype=np.uint8 if name == "pcanet" else np.float32)
        for name in BLOCK_NAMES
    }
    has_face = np.zeros(n, dtype=bool)
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
    seconds = time.perf_counter() - t0
    logger.info("features of %d photos extracted in %.1f s", n, seconds)
    if path is not None:
        with atomic_path(path) as tmp:
            arrays = {f"block_{k}": v for k, v in blocks.items()}
            np.savez(tmp, has_face=has_face, seconds=seconds, **arrays)
    return DatasetFeatures(blocks, has_face, seconds, False)


@dataclass(frozen=True)
class ClassicalRecipe(Recipe):
    """The classical SCUT-FBP5500 model's recipe.

    Attributes
    ----------
    folds, seed : int
        Outer shuffled ``KFold``; the seed also seeds the inner folds, PCANet, PCA and forests.
    cache_dir : path-like or None
        Feature cache folder (None: no cache).
    inner_folds, n_jobs, rf_trees : int
        Inner folds of the fusion weights, parallel CV tasks, trees of the random forests.
    limit : int, optional
        Only this many photos (a seeded random subset; quick checks).
    progress : bool
        Progress bar during extraction.
    serving_repeats : int
        Timed end-to-end scorings of one photo with the written model (0: none).
    report : callable, optional
        Called with the finished table (text), e.g. ``print``; else it is logged.
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
    cv_header: bool = False  # its cv.json is its own (rows carry kind, members and learner)

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        """SCUT-FBP5500, its feature blocks (``features["X"]``: every block) and groups."""
        t0 = time.perf_counter()
        ds = load_scut_fbp5500(data_root, landmarks=False)
        if self.limit is not None and self.limit < len(ds):  # a seeded subset, in dataset order
            pick = np.random.default_rng(self.seed).permutation(len(ds))[: self.limit]
            ds = ds.subset(np.sort(pick))
        extractor = FaceFeatureExtractor()
        feats = extract_dataset_features(
            ds, extractor, cache_dir=self.cache_dir, progress=self.progress
        )
        rows = np.flatnonzero(feats.has_face)
        if len(rows) < len(ds):
            missing = [ds.relative_paths[i] for i in np.flatnonzero(~feats.has_face)]
            logger.warning("%d photo(s) without a face left out: %s", len(missing), missing[:20])
        groups = ds.groups[rows] if ds.groups is not None else np.full(len(rows), "all")
        return Data(
            y=ds.targets[rows],
            features={"X": _matrix(feats, rows, BLOCK_NAMES)},
            groups={"group": groups},
            title="SCUT-FBP5500",
            n_photos=len(ds),
            data_hash=dataset_hash(ds),
            extra={
                "dataset": ds,
                "rows": rows,
                "extractor": extractor,
                "features": feats,
                "t0": t0,
            },
        )

    def evaluate(self, data: Data, *, device: str = "cpu") -> Run:
        """The table (every feature set x learner, then every fusion) and the chosen fusion."""
        run = Run(self, data, self.folds_of(data), device)
        t0 = time.perf_counter()
        X, y, combos = data.features["X"], data.y, fusion_combos()
        layout = data.extra["extractor"].layout(BLOCK_NAMES)
        fcv = fusion_cross_val_predict(
            paper_estimators(layout, random_state=self.seed),
            combos,
            X,
            y,
            cv=run.folds,
            inner_cv=self.inner_folds,
            random_state=self.seed,
            n_jobs=self.n_jobs,
        )
        kw = {"layout": layout, "n_estimators": self.rf_trees, "random_state": self.seed}
        rows, member_of = [], {b: m for m, b in MEMBER_BLOCKS.items()}
        for name, block in FEATURE_SET_ROWS.items():
            for learner in LEARNERS:
                if learner == "svr" and block in member_of:  # the fusion run's member
                    pred = fcv.members[member_of[block]]
                else:
                    est = (
                        DeepFeatureRegressor(learner=learner, block=block, **kw)
                        if block in ("deep", "deep128")
                        else FeatureSetRegressor(block, learner=learner, **kw)
                    )
                    logger.info("cross-validating %s / %s", name, learner)
                    pred = cross_val_predict(est, X, y, cv=run.folds, n_jobs=self.n_jobs)
                rows.append(_row(run, name, "feature set", (block,), learner, pred))
        for c in combos:
            row = _row(run, "fusion: " + " + ".join(c), "fusion", c, "svr + stack", fcv.fusions[c])
            rows.append(row | {"mean_weights_and_intercept": fcv.weights[c].mean(0).tolist()})
        run.seconds["cross_validation"] = time.perf_counter() - t0
        data.extra["fusion_pred"] = fcv.fusions
        run.table = {f"{r['name']} / {r['learner']}": r for r in rows}
        chosen = choose_fusion(rows)
        run.chosen = f"{chosen['name']} / {chosen['learner']}"
        report = self.report or partial(logger.info, "cross-validation table:\n%s")
        report(format_table(rows, chosen["name"]))
        return run

    def ship(self, run: Run, out: Path) -> Shipped:
        """The chosen fusion fitted on every photo with a face (on the blocks it needs), and
        its ``cv.json``, manifest entry and card."""
        data, ex, n = run.data, run.data.extra, len(run.data.y)
        rows, chosen = list(run.table.values()), run.table[run.chosen]
        members = tuple(chosen["members"])
        y, pred, groups = data.y, ex["fusion_pred"][members], data.groups["group"]
        per_group = {
            str(g): rounded({**regression_metrics(y[groups == g], pred[groups == g]), "n": int(n)})
            for g, n in zip(*np.unique(groups, return_counts=True), strict=True)
        }
        logger.info("chosen: %s (PC %.4f); fitting it on %d photos", run.chosen, chosen["pc"], n)
        t_fit = time.perf_counter()
        blocks = [b for b in BLOCK_NAMES if b in {MEMBER_BLOCKS[m] for m in members}]
        layout = ex["extractor"].layout(blocks)
        estimators = paper_estimators(layout, random_state=self.seed)
        regressor = ScoreFusionRegressor(
            [(m, estimators[m]) for m in members],
            cv=self.inner_folds,
            random_state=self.seed,
            n_jobs=self.n_jobs,
        ).fit(_matrix(ex["features"], ex["rows"], blocks), data.y)
        model = AttractivenessModel(regressor=regressor, extractor=ex["extractor"], layout=layout)
        t_done = time.perf_counter()
        timings: dict[str, Any] = {
            "feature_extraction_s": round(ex["features"].seconds, 1),
            "features_from_cache": ex["features"].from_cache,
            "cross_validation_s": round(run.seconds["cross_validation"], 1),
            "final_fit_s": round(t_done - t_fit, 1),
            "total_s": round(t_done - ex["t0"], 1),
        }
        protocol = (
            f"{self.folds}-fold KFold(shuffle=True, random_state={self.seed}) on the {n} photos "
            f"with a face; fusion weights from {self.inner_folds} inner folds (nested)"
        )
        cv_summary = {"protocol": protocol} | {
            k: round(chosen[k], 4) for k in ("pc", "mae", "rmse")
        }
        version, versions = ex["extractor"].version, package_versions()
        model.metadata = {
            "name": out.name,
            "members": list(members),
            "training_data": f"SCUT-FBP5500 ({data.n_photos} photos, {n} with a face)",
            "dataset_sha256": data.data_hash,
            "seed": self.seed,
            "cv": cv_summary,
            "licence": LICENCE,
            "packages": versions,
        }
        cv = {
            "name": out.name,
            "dataset": data.title,
            "dataset_sha256": data.data_hash,
            "n_photos": data.n_photos,
            "n_with_face": n,
            "n_no_face": data.n_photos - n,
            **{k: getattr(self, k) for k in ("folds", "inner_folds", "seed")},
            "feature_version": version,
            "rows": rounded(rows),
            "chosen": chosen["name"],
            "chosen_rule": CHOSEN_RULE,
            "per_group": per_group,
            "timings": timings,
            "model_file_mb": None,  # once written
            "packages": versions,
        }

        def cv_doc(model_path: Path) -> dict[str, Any]:
            if self.serving_repeats > 0:  # the written file served through the model store
                photo = ex["dataset"].paths[int(ex["rows"][0])]
                timings.update(_serving_ms(photo, out, self.serving_repeats))
            cv["model_file_mb"] = round(model_path.stat().st_size / 1e6, 2)
            return cv

        scale = [int(v) if float(v).is_integer() else float(v) for v in SCORE_RANGE]
        crop = ex["extractor"].crop_spec
        entry = {
            "kind": "attractiveness",
            "task": "attractiveness",
            "architecture": "score_fusion",
            "input_size": None,
            "normalisation": None,
            "chip": {"method": crop.method, "size": crop.size, "padding": crop.padding},
            "outputs": [
                dict(name="attractiveness", kind="scalar", scale=scale, bins=None, dim=None)
            ],
            "inputs": "RGB image + Face with 68 iBUG landmarks and features['trunk'] (FaceAnalyzer"
            f" stages 'landmarks' and 'trunk'); blocks {list(model.blocks)} from facecore."
            f"attractiveness.face_features.FaceFeatureExtractor (version {version}); output: "
            "attractiveness score on SCUT-FBP5500's 1-5 scale",
            "source": "facecore.attractiveness.train (scripts/train_attractiveness.py): score "
            f"fusion of {' + '.join(members)} (Zang et al. 2017; Zhang, Xiao, Lu, PAA 2018)",
            "training_data": f"SCUT-FBP5500, {data.n_photos} photos of shared/data (dataset "
            f"sha256 {data.data_hash}), {n} with a face",
            "licence": LICENCE,
            "metrics": {"cv": cv_summary, "per_group": per_group},
            "card": out.name + ".md",
            "rebuild": REBUILD,
        }
        return Shipped(
            model,
            ".joblib",
            cv_doc,
            lambda path: entry,
            lambda path, figures: model_card(cv, model, path.stat().st_size / 1e6),
            indent=2,
        )


def _row(
    run: Run, name: str, kind: str, members: tuple[str, ...], learner: str, pred: np.ndarray
) -> dict[str, Any]:
    """A row of the table: PC, MAE, RMSE of the pooled predictions, the sd of PC over folds."""
    y = run.data.y
    fold_pc = [regression_metrics(y[te], pred[te])["pc"] for _, te in run.folds]
    return {"name": name, "kind": kind, "members": list(members), "learner": learner} | {
        **regression_metrics(y, pred),
        "pc_fold_sd": float(np.std(fold_pc)),
    }


def _matrix(feats: DatasetFeatures, rows: np.ndarray, blocks: Sequence[str]) -> np.ndarray:
    """The ``blocks`` of ``rows`` side by side, (len(rows), D) float32."""
    return np.concatenate(
        [feats.blocks[b][rows].reshape(len(rows), -1).astype(np.float32) for b in blocks], axis=1
    )


def _serving_ms(photo: str | os.PathLike[str], out: Path, repeats: int) -> dict[str, Any]:
    """Time of scoring ``photo`` (decoded) with the written model ``out``: the analyzer, then
    the stage (one untimed warm-up call)."""
    image = load_image(photo)
    analyzer = FaceAnalyzer(stages=("trunk",)).load()
    scorer = AttractivenessStage(model=out.name, models_dir=out.parent)
    scorer.load()
    scorer(image, analyzer.analyze(image))
    total, scoring = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        faces = analyzer.analyze(image)
        t1 = time.perf_counter()
        scorer(image, faces)
        total.append(time.perf_counter() - t0)
        scoring.append(time.perf_counter() - t1)
    return {
        "serving_median_ms": round(1000 * float(np.median(total)), 1),
        "serving_p90_ms": round(1000 * float(np.percentile(total, 90)), 1),
        "scorer_median_ms": round(1000 * float(np.median(scoring)), 1),
        "serving_repeats": repeats,
    }


def model_card(cv: dict[str, Any], model: Any, size_mb: float) -> ModelCard:
    """The card of a trained model from its ``cv.json`` document, the model
    (:class:`~facecore.attractiveness.model.AttractivenessModel`) and its file's size."""
    reg, ex = model.regressor, model.extractor
    weights = ", ".join(f"{m} {w:.3f}" for m, w in zip(reg.names, reg.weights_, strict=True))
    n, folds, inner, seed = cv["n_with_face"], cv["folds"], cv["inner_folds"], cv["seed"]
    return ModelCard(
        name=cv["name"],
        summary="Facial attractiveness score on SCUT-FBP5500's 1-5 scale (mean rating of 60 "
        "raters).",
        licence=LICENCE,
        model=[
            f"Score-level fusion ({cv['chosen'].removeprefix('fusion: ')}) of per-feature-set RBF "
            "SVRs,\n  combined by non-negative least squares learned on "
            f"{inner}-fold out-of-fold predictions\n  (stacking). Weights on the final "
            f"fit: {weights}; intercept {reg.intercept_:.3f}.",
            "Papers: X. Zang et al., \"Prediction of users' facial attractiveness on an online "
            'dating\n  website", ICME Workshops 2017 (deep features + SVR/RF); B. Zhang, X. Xiao, '
            'G. Lu, "Facial\n  beauty analysis based on features prediction and beautification '
            'models", PAA 21(2), 2018\n  (geometric + greedy selection, texture, PCANet, score '
            "fusion). Departures are listed in the\n  docstrings of "
            "`facecore/attractiveness/deep_regressors.py` and `fusion.py`.",
            'Inputs: an RGB image and a `Face` with 68 landmarks and `features["trunk"]` '
            "(FaceAnalyzer\n  stages `landmarks` and `trunk`); feature blocks "
            f"{list(model.blocks)} from\n  `FaceFeatureExtractor` version `{ex.version}` "
            f"({json.dumps(ex.config())}).\n  Output clipped to [1, 5].",
            f"File: `{cv['name']}.joblib`, {size_mb:.1f} MB.",
        ],
        training_data=(
            f"SCUT-FBP5500 as in `shared/data` ({cv['n_photos']} photos; the official 40% test "
            f"split is held back).\nDataset sha256 `{cv['dataset_sha256']}`. Photos without a "
            f"detected face: {cv['n_no_face']} (left out); trained on\n{n}."
        ),
        evaluation=(
            f"{folds}-fold cross-validation (`KFold(shuffle=True, random_state={seed})`, the same "
            f"folds for\nevery row) on the {n} photos; fusion weights learned inside the "
            f"training folds only\n({inner} inner folds). PC: Pearson correlation of the "
            "pooled out-of-fold predictions\nwith the mean ratings; PC fold sd: its standard "
            "deviation over the folds. Chosen by rule: the\nfusion of two or more members with "
            "the highest PC."
        ),
        tables=[
            ("", TABLE_HEADER, _table_cells(cv["rows"], cv["chosen"])),
            (
                "Chosen model, per group (out-of-fold predictions; AF/AM: Asian female/male, "
                "CF/CM: Caucasian\nfemale/male):",
                ("group", "n", "PC", "MAE", "RMSE"),
                [[g, m["n"], m["pc"], m["mae"], m["rmse"]] for g, m in cv["per_group"].items()],
            ),
        ],
        evaluation_notes=f"Timings on the training machine: {json.dumps(cv['timings'])}.",
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
        packages=cv["packages"],
    )
