"""One runner for every head's recipe: cross-validate the learners, choose, ship, publish.

A head's training is a :class:`Recipe`; :func:`train` loads its data, runs every learner
through :func:`out_of_fold` (the one out-of-fold helper, resumable from per-fold files),
tables and chooses, fits what ships and publishes it (:mod:`facecore.training.publish`). The
steps are described in ``docs/training.md``. This module implements no paper.
"""

from __future__ import annotations

import hashlib
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
from facecore.training.publish import Published, fill, publish, rounded

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
    """A head's training data, a row per photo with a face: the values ``y`` (N,), the inputs
    a learner names (``features``; ``"rows"``, the row numbers, is what a top takes), the target
    distributions (N, K), the ``groups`` of the per-group tables, the dataset's ``title``, its
    ``n_photos`` (with a face or not) and fingerprint, and anything else the recipe's later
    steps need (``extra``: chips, maps, the dataset)."""

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
    """One row of a recipe's comparison: the estimator ``make(run)`` fitted on ``inputs`` side
    by side (``Data.features`` or earlier learners' out-of-fold distributions, else values) to
    ``target`` (``"y"`` or ``"targets"``); ``cache(run)``, the folder of its fold files and
    checkpoints; ``post(values)`` changes its out-of-fold values (e.g. clips them); ``table``
    False: an input of others only."""

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


def _expectation(p: np.ndarray, learner: Any) -> np.ndarray:
    return p @ np.asarray(learner.bins, np.float64)


def _prepare(learner: Any, k: int, folder: Path | None) -> Any:
    if hasattr(learner, "for_fold"):
        return learner.for_fold(k, folder)
    from sklearn.base import clone

    return clone(learner)


def _check_folder(folder: Path, meta: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.json"
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved != meta:
            raise ValueError(f"{folder} holds folds of another recipe: {saved}; use a new folder")
    else:
        path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _read_fold(path: Path | None, test: np.ndarray) -> dict[str, np.ndarray] | None:
    if path is None or not path.is_file():
        return None
    with np.load(path) as z:
        if np.array_equal(z["test"], test):
            return {k: z[k] for k in z.files}
    logger.warning("%s holds another split; refitting that fold", path)
    return None


def out_of_fold(
    learner: Any,
    X: np.ndarray,
    y: np.ndarray,
    folds: Folds,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> OutOfFold:
    """Every row's prediction by the learner fitted on the folds that do not hold it.

    The learner is cloned per fold (``sklearn.base.clone``), or ``learner.for_fold(k,
    cache_dir)`` when it has that method (a top: its checkpoint folder, its seed). ``cache_dir``
    keeps ``fold<k>.npz`` (read back when it holds the same test rows) and a ``recipe.json`` of
    ``learner.cache_meta(X, y)``. A learner with ``value_is_expectation`` has the values
    ``distribution @ bins``.
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
        est, saved = None, _read_fold(path, te)
        if saved is not None:
            logger.info("fold %d read from %s", k, path)
            p = saved.get("probs")
            v = saved["values"] if p is None else _expectation(p, learner)
        else:
            est = _prepare(learner, k, folder)
            t0 = time.perf_counter()
            est.fit(X[tr], y[tr])
            saved = {"seconds": np.float64(time.perf_counter() - t0)}
            p = est.predict_distribution(X[te]) if dist_learner else None
            expectation = getattr(est, "value_is_expectation", False)
            v = _expectation(p, est) if expectation else est.predict(X[te])
        if p is not None:
            if dists is None:
                dists = np.full((n, p.shape[1]), np.nan, p.dtype)
            dists[te] = p
        values[te] = v
        if est is not None and path is not None:
            saved |= {"probs": p} if dist_learner else {"values": values[te]}
            with atomic_path(path) as tmp:
                np.savez(tmp, test=te, **saved)
        estimators.append(est)
        seconds.append(float(saved["seconds"]))
    return OutOfFold(values, dists, estimators, seconds)


class Recipe:
    """A head's training, declared; subclasses set the fields and fill in the hooks.

    ``name`` is the shipped model's (manifest entry, file stem); ``folds``, ``seed`` and
    ``stratify`` (on ``Data.y``) give :func:`kfold_splits`; ``work_dir`` holds caches and fold
    folders; ``cv_header`` False: the recipe writes all of ``cv.json``. The rest are the card's
    (strings are templates of :meth:`fields`): ``columns`` the learners' table's ``(header,
    metric)``, ``group_tables`` and ``figures`` :mod:`~facecore.training.publish` records,
    ``card_text`` the text of the :class:`~facecore.training.publish.ModelCard` fields.
    """

    name: str = ""
    folds: int = 5
    seed: int = 0
    stratify: bool = False
    work_dir: Path = Path(".cache")
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


def _setup(run: Run, learner: Learner) -> tuple[Any, np.ndarray, np.ndarray, Path | None]:
    """A learner's estimator, inputs, targets and fold folder in ``run``."""
    target = run.data.y if learner.target == "y" else run.data.targets
    folder = None if learner.cache is None else learner.cache(run)
    return learner.make(run), run.inputs(learner.inputs), target, folder


def cross_validate(recipe: Recipe, data: Data, *, device: str = "cpu") -> Run:
    """Every learner of ``recipe`` through :func:`out_of_fold`, and the table."""
    run = Run(recipe, data, recipe.folds_of(data), device)
    learners = list(recipe.learners(run))
    for learner in learners:
        t0 = time.perf_counter()
        est, X, target, folder = _setup(run, learner)
        oof = out_of_fold(est, X, target, run.folds, cache_dir=folder)
        if learner.post is not None:
            oof.values = learner.post(oof.values)
        run.oof[learner.name] = oof
        run.seconds[learner.name] = time.perf_counter() - t0
    for name in (ln.name for ln in learners if ln.table):
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
    est, X, y, folder = _setup(run, next(ln for ln in recipe.learners(run) if ln.name == name))
    return run.folds, [
        _prepare(est, k, folder).fit(X[tr], y[tr]) for k, (tr, _) in enumerate(run.folds)
    ]


def config_tag(doc: dict[str, Any]) -> str:
    """Eight hex digits of the sha256 of ``doc`` as sorted JSON: names a cache or fold folder
    by the settings that made it."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:8]


def train(
    recipe: Recipe,
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    device: str = "cpu",
) -> Published:
    """Load, cross-validate, choose, fit what ships and publish it."""
    t0 = time.perf_counter()
    out = Path(out)
    data = recipe.load(data_root)
    run = recipe.evaluate(data, device=device)
    shipped = recipe.ship(run, out)
    run.seconds["total"] = time.perf_counter() - t0
    return publish(run, shipped, out)
