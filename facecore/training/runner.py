"""One runner for every head's recipe: cross-validate the learners, choose, ship, publish.

A head's training is a :class:`Recipe`; :func:`train` loads its data, runs every learner
through :func:`out_of_fold` (the one out-of-fold helper, resumable from per-fold files),
tables and chooses, fits what ships and publishes it (:mod:`facecore.training.publish`). The
steps are described in ``docs/training.md``. This module implements no paper.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facecore.atomic import atomic_path
from facecore.training.folds import kfold_splits

__all__ = [
    "Data",
    "Learner",
    "OutOfFold",
    "Recipe",
    "Run",
    "config_tag",
    "cross_validate",
    "fold_estimators",
    "out_of_fold",
    "train",
]

logger = logging.getLogger(__name__)

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass
class Data:
    """A head's training data, rows of the photos it learns from.

    Attributes
    ----------
    y : ndarray (N,)
        The values (age, rating...).
    features : dict of str to ndarray (N, ...)
        Inputs a learner names (``"rows"``: the row numbers, what a top takes).
    targets : ndarray (N, K), optional
        Target distributions.
    groups : dict of str to ndarray (N,)
        Group labels for the per-group tables.
    title, n_photos, data_hash : the dataset, its size (with and without a face), fingerprint
    extra : dict
        Anything else the recipe's later steps need (chips, maps, the dataset).
    """

    y: np.ndarray
    features: dict[str, Any]
    targets: np.ndarray | None = None
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    title: str = ""
    n_photos: int = 0
    data_hash: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.features.setdefault("rows", np.arange(len(self.y))[:, None])


@dataclass(frozen=True)
class Learner:
    """One row of a recipe's comparison.

    Attributes
    ----------
    name : str
    make : callable
        ``make(run)`` -> the estimator (``fit``, ``predict``, maybe ``predict_distribution``).
    inputs : tuple of str
        Its ``X``, columns side by side: names of ``Data.features``, or of earlier learners
        (their out-of-fold distributions, else their values).
    target : {"y", "targets"}
        Fitted on the values or on the target distributions.
    cache : callable, optional
        ``cache(run)`` -> the folder of its fold files and checkpoints.
    post : callable, optional
        Applied to the out-of-fold values (e.g. clipping).
    table : bool
        A row of the table (False: an input of others only).
    """

    name: str
    make: Callable[[Run], Any]
    inputs: tuple[str, ...] = ("features",)
    target: str = "y"
    cache: Callable[[Run], Path] | None = None
    post: Callable[[np.ndarray], np.ndarray] | None = None
    table: bool = True


@dataclass
class OutOfFold:
    """A learner's out-of-fold predictions: values (N,), distributions (N, K) or None, the
    fitted estimator of each fold (None where read from the cache) and each fold's seconds."""

    values: np.ndarray
    distributions: np.ndarray | None
    estimators: list[Any]
    seconds: list[float]


def _is_expectation(learner: Any) -> bool:
    return bool(getattr(learner, "value_is_expectation", False))


def _expectation(p: np.ndarray, learner: Any) -> np.ndarray:
    return p @ np.asarray(learner.bins, np.float64)


def _prepare(learner: Any, k: int, folder: Path | None) -> Any:
    if hasattr(learner, "for_fold"):
        return learner.for_fold(k, folder)
    from sklearn.base import clone

    return clone(learner)


def _check_folder(folder: Path, meta: dict[str, Any] | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if meta is None:
        return
    path = folder / "recipe.json"
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved != meta:
            raise ValueError(f"{folder} holds folds of another recipe: {saved}; use a new folder")
    else:
        path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def out_of_fold(
    learner: Any,
    X: np.ndarray,
    y: np.ndarray,
    folds: Folds,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    post: Callable[[np.ndarray], np.ndarray] | None = None,
) -> OutOfFold:
    """Every row's prediction by the learner fitted on the folds that do not hold it.

    Parameters
    ----------
    learner : estimator
        Cloned per fold (``sklearn.base.clone``), or ``learner.for_fold(k, cache_dir)`` when it
        has that method (a top: its checkpoint folder, its seed).
    X : ndarray (N, ...)
    y : ndarray (N,) or (N, K)
    folds : sequence of (train_idx, test_idx)
    cache_dir : path-like, optional
        Keeps ``fold<k>.npz`` (``test``, ``probs`` or ``values``, ``seconds``) and a
        ``recipe.json`` of ``learner.cache_meta(X, y)``; a fold whose file holds the same test
        rows is read, not refitted.
    post : callable, optional
        Applied to the pooled values.

    Notes
    -----
    A learner whose value is its distribution's expectation says so
    (``value_is_expectation = True``); its value is then ``distribution @ bins`` (not a
    second pass through the learner).

    Returns
    -------
    OutOfFold
    """
    folder = None if cache_dir is None else Path(cache_dir)
    keep = getattr(learner, "keeps_folds", True)  # False: the folder is only read (checkpoints)
    dist_learner = hasattr(learner, "predict_distribution")
    if folder is not None and keep and hasattr(learner, "cache_meta"):
        _check_folder(folder, learner.cache_meta(X, y))
    n = len(X)
    values = np.full(n, np.nan)
    dists: np.ndarray | None = None
    estimators: list[Any] = []
    seconds: list[float] = []
    for k, (tr, te) in enumerate(folds):
        path = None if folder is None or not keep else folder / f"fold{k}.npz"
        if path is not None and path.is_file():
            with np.load(path) as z:
                if np.array_equal(z["test"], te):
                    if "probs" in z.files:
                        p = z["probs"]
                        if dists is None:
                            dists = np.full((n, p.shape[1]), np.nan, p.dtype)
                        dists[te] = p
                        values[te] = _expectation(p, learner)
                    else:
                        values[te] = z["values"]
                    seconds.append(float(z["seconds"]))
                    estimators.append(None)
                    logger.info("fold %d read from %s", k, path)
                    continue
            logger.warning("%s holds another split; refitting fold %d", path, k)
        est = _prepare(learner, k, folder)
        t0 = time.perf_counter()
        est.fit(X[tr], y[tr])
        took = time.perf_counter() - t0
        if dist_learner:
            p = est.predict_distribution(X[te])
            if dists is None:
                dists = np.full((n, p.shape[1]), np.nan, p.dtype)
            dists[te] = p
        values[te] = _expectation(p, est) if _is_expectation(est) else est.predict(X[te])
        if path is not None:
            saved = {"probs": p} if dist_learner else {"values": values[te]}
            with atomic_path(path) as tmp:
                np.savez(tmp, test=te, seconds=np.float64(took), **saved)
        estimators.append(est)
        seconds.append(took)
    if post is not None:
        values = post(values)
    return OutOfFold(values, dists, estimators, seconds)


class Recipe:
    """A head's training, declared; subclasses set the fields and fill in the hooks.

    Attributes
    ----------
    name : str
        The shipped model's name (manifest entry, file stem).
    folds, seed : int
        ``kfold_splits(n, folds, seed)``; stratified on ``Data.y`` with ``stratify``.
    stratify : bool
    work_dir : Path
        Caches and fold folders.
    cv_header : bool
        Whether ``cv.json`` starts with the runner's header (False: the recipe writes all).

    The card and the tables (class attributes; strings are templates of :meth:`fields`,
    :func:`facecore.training.publish.fill`): ``licence``, ``rebuild``, ``protocol``;
    ``columns`` (``(header, metric)`` of the learners' table, with ``table_title`` and
    ``table_format``); ``group_tables`` (:class:`~facecore.training.publish.GroupTable`);
    ``figures`` (:class:`~facecore.training.publish.Figure`); ``card_text`` (the
    :class:`~facecore.training.publish.ModelCard` fields: summary, model, training_data,
    evaluation, evaluation_notes, limitations, rebuild_note).
    """

    name: str = ""
    folds: int = 5
    seed: int = 0
    stratify: bool = False
    work_dir: Path = Path(".cache")
    #: ``cv.json`` starts with the runner's header (data, folds, a row per learner).
    cv_header: bool = True
    licence = ""
    rebuild = ""
    protocol = ""
    columns: ClassVar[tuple[tuple[str, str], ...]] = ()
    table_title = "Learners"
    table_format = "{:.4f}"
    group_tables: ClassVar[tuple[Any, ...]] = ()
    figures: ClassVar[tuple[Any, ...]] = ()
    card_text: ClassVar[dict[str, Any]] = {}

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        """The dataset, its targets and the learners' inputs."""
        raise NotImplementedError

    def evaluate(self, data: Data, *, device: str = "cpu") -> Run:
        """The learners compared (by default :func:`cross_validate`; a recipe evaluated on a
        held-out split instead overrides it)."""
        return cross_validate(self, data, device=device)

    def learners(self, run: Run) -> Sequence[Learner]:
        """The learners compared, in the order they are cross-validated."""
        raise NotImplementedError

    def metrics(self, run: Run, oof: OutOfFold) -> dict[str, Any]:
        """A learner's row of the table."""
        raise NotImplementedError

    def choose(self, run: Run) -> str:
        """The rule: the name of the learner that ships."""
        raise NotImplementedError

    def ship(self, run: Run, out: Path) -> Any:
        """The final fit of the chosen learner: a :class:`facecore.training.publish.Shipped`."""
        raise NotImplementedError

    def folds_of(self, data: Data) -> list[tuple[np.ndarray, np.ndarray]]:
        """The CV folds of ``data``."""
        return kfold_splits(
            len(data.y), self.folds, self.seed, stratify=data.y if self.stratify else None
        )

    def fields(self, run: Run) -> dict[str, Any]:
        """What the templates may name: the recipe, the data and its size, the chosen learner,
        the licence and the rebuild command."""
        d = run.data
        return {
            "recipe": self,
            "title": d.title,
            "n": len(d.y),
            "n_photos": d.n_photos,
            "n_without": d.n_photos - len(d.y),
            "data_hash": d.data_hash,
            "extra": d.extra,
            "chosen": run.chosen,
            "folds": self.folds,
            "seed": self.seed,
            "licence": self.licence,
            "rebuild": self.rebuild,
        }

    def summary(self, run: Run) -> dict[str, Any]:
        """The protocol and the shipped learner's row (the model's and the manifest's ``cv``)."""
        from facecore.training.publish import fill, rounded

        return {"protocol": fill(self.protocol, self.fields(run)), **rounded(run.table[run.chosen])}


@dataclass
class Run:
    """A recipe cross-validated: its data, folds, each learner's out-of-fold predictions, the
    table and the chosen learner."""

    recipe: Recipe
    data: Data
    folds: list[tuple[np.ndarray, np.ndarray]]
    device: str = "cpu"
    oof: dict[str, OutOfFold] = field(default_factory=dict)
    table: dict[str, dict[str, Any]] = field(default_factory=dict)
    chosen: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def inputs(self, names: Sequence[str]) -> np.ndarray:
        """The columns ``names`` side by side (features, or earlier learners' predictions)."""
        cols = []
        for name in names:
            if name in self.oof:
                o = self.oof[name]
                cols.append(o.values[:, None] if o.distributions is None else o.distributions)
            else:
                cols.append(self.data.features[name])
        if len(cols) == 1:
            return cols[0]
        return np.column_stack([np.asarray(c, np.float64).reshape(len(c), -1) for c in cols])


def cross_validate(recipe: Recipe, data: Data, *, device: str = "cpu") -> Run:
    """Every learner of ``recipe`` through :func:`out_of_fold`, and the table."""
    run = Run(recipe, data, recipe.folds_of(data), device)
    tabled = []
    for learner in recipe.learners(run):
        t0 = time.perf_counter()
        target = data.y if learner.target == "y" else data.targets
        folder = None if learner.cache is None else learner.cache(run)
        run.oof[learner.name] = out_of_fold(
            learner.make(run),
            run.inputs(learner.inputs),
            target,
            run.folds,
            cache_dir=folder,
            post=learner.post,
        )
        run.seconds[learner.name] = time.perf_counter() - t0
        if learner.table:
            tabled.append(learner.name)
    for name in tabled:
        run.table[name] = recipe.metrics(run, run.oof[name])
        logger.info("%s: %s", name, run.table[name])
    run.chosen = recipe.choose(run)
    logger.info("chosen: %s", run.chosen)
    return run


def fold_estimators(
    recipe: Recipe, data: Data, name: str, *, device: str = "cpu"
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[Any]]:
    """The folds of ``recipe`` on ``data`` and its learner ``name`` fitted on each fold's
    training rows (a top reads its finished fold checkpoint; one that is missing is trained)."""
    run = Run(recipe, data, recipe.folds_of(data), device)
    learner = next(ln for ln in recipe.learners(run) if ln.name == name)
    folder = None if learner.cache is None else learner.cache(run)
    target = data.y if learner.target == "y" else data.targets
    X, made = run.inputs(learner.inputs), learner.make(run)
    fitted = [
        _prepare(made, k, folder).fit(X[tr], target[tr]) for k, (tr, _) in enumerate(run.folds)
    ]
    return run.folds, fitted


def config_tag(doc: dict[str, Any]) -> str:
    """Eight hex digits of the sha256 of ``doc`` as sorted JSON: names a cache or fold folder
    by the settings that made it."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:8]


def train(
    recipe: Recipe,
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    device: str = "cpu",
) -> Any:
    """Load, cross-validate, choose, fit what ships and publish it (see the module notes).

    Returns
    -------
    facecore.training.publish.Published
    """
    from facecore.training.publish import publish

    t0 = time.perf_counter()
    out = Path(out)
    data = recipe.load(data_root)
    run = recipe.evaluate(data, device=device)
    shipped = recipe.ship(run, out)
    run.seconds["total"] = time.perf_counter() - t0
    return publish(run, shipped, out)
