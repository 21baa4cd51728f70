"""Per-feature-set attractiveness regressors and their score-level fusion.

Paper: B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and
beautification models", Pattern Analysis and Applications 21(2):529-542, 2018 - the facial
beauty prediction model: one regressor per feature set (geometric features ranked by the greedy
KNN selection of its Algorithm 1; texture by blocked LBP; PCANet), and the fusion of their
predictions, each alone, each pair and all three (its Table 4). The full text was not available
when this was written, so beyond those names no section or equation is cited.

What is here:

* :class:`BlockSelector` - picks one block out of a block matrix
  (:mod:`facecore.attractiveness.face_features`), reshaped to images for PCANet.
* :class:`FeatureSetRegressor` - the regressor of one feature set:

  - ``geometric``: :class:`~facecore.features.GreedyForwardSelector` (KNN + Pearson, leave-one-out,
    10 neighbours) -> learner;
  - ``lbp`` / ``blbp``: square root of the histograms (Hellinger map) -> learner;
  - ``pcanet``: :class:`~facecore.features.PCANet` fitted on the training crops -> square root ->
    PCA to ``n_components`` dimensions -> learner;
  - ``deep`` / ``deep128``: the learner on the features as they are;

  where the learner is :func:`facecore.attractiveness.deep_regressors.make_learner`
  (standardisation + RBF SVR, or a random forest).
* :class:`ScoreFusionRegressor` - score-level fusion of several such regressors. With
  ``combiner="stack"`` the fused score is a linear combination with non-negative weights and an
  intercept (stacked regression, L. Breiman, "Stacked regressions", Machine Learning 24, 1996),
  learned on out-of-fold predictions of the members *inside the training data* (an inner K-fold
  cross-validation), then every member is refitted on all the training data; with
  ``combiner="mean"`` it is the plain mean of the members' scores. Used inside an outer
  cross-validation the whole procedure is nested: no test sample is seen by the weights.
* :func:`fusion_cross_val_predict` - the outer cross-validation of many fusions at once. The
  members' inner out-of-fold predictions do not depend on which fusion they are part of, so they
  are computed once per outer fold and every fusion's combiner is fitted on its own columns; the
  result equals running ``cross_val_predict`` on each :class:`ScoreFusionRegressor` separately
  (a test checks this), at a fraction of the cost.

Departures from the paper, and why:

* The "texture" member is blocked LBP (BLBP) as :mod:`facecore.features.lbp` reads it; the plain
  multi-radius LBP block histogram is available as a feature set of its own.
* The learner after each feature set is an RBF SVR (or a random forest) with fixed default
  hyperparameters for every feature set, and the PCANet dimensionality reduction is PCA to 64
  dimensions after a Hellinger (square-root) map of the histograms; the paper's exact regressors
  and reduction are not known here. 64 dimensions keep the shipped model small (the PCA basis of
  the 32768-D PCANet output is stored with it).
* The fusion weights are learned by non-negative least squares on inner out-of-fold predictions
  (stacking) rather than set by hand, so that the same rule works for any set of members.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, check_cv, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted, validate_data

from facecore.attractiveness.deep_regressors import DeepFeatureRegressor, make_learner
from facecore.attractiveness.face_features import Layout, block_columns

__all__ = [
    "COMBINERS",
    "FEATURE_SETS",
    "PAPER_MEMBERS",
    "BlockSelector",
    "FeatureSetRegressor",
    "FusionCV",
    "MeanCombiner",
    "ScoreFusionRegressor",
    "fusion_combos",
    "fusion_cross_val_predict",
    "paper_estimators",
]

logger = logging.getLogger(__name__)

#: Feature sets a :class:`FeatureSetRegressor` handles (the blocks of ``face_features``).
FEATURE_SETS: tuple[str, ...] = ("deep", "deep128", "geometric", "lbp", "blbp", "pcanet")
#: The paper's three fusion members and the feature set each one uses.
PAPER_MEMBERS: dict[str, str] = {"geometric": "geometric", "texture": "blbp", "pcanet": "pcanet"}
#: Score combiners of :class:`ScoreFusionRegressor`.
COMBINERS: tuple[str, ...] = ("stack", "mean")


class BlockSelector(TransformerMixin, BaseEstimator):
    """Select one block's columns from a block matrix.

    Parameters
    ----------
    block : str
        Block name in ``layout``.
    layout : Layout
        ``((name, shape), ...)``, the column layout of the input matrix.
    image : bool, default False
        Return the block reshaped to ``(N, *shape)`` as uint8 (for image blocks such as the
        ``pcanet`` crop) instead of a 2-D float matrix.
    """

    def __init__(self, block: str = "deep", layout: Layout = (), image: bool = False) -> None:
        self.block = block
        self.layout = layout
        self.image = image

    def fit(self, X: Any, y: Any = None) -> BlockSelector:
        """Check that the block is in the layout; returns ``self``."""
        block_columns(self.layout, self.block)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The block of ``X`` (N, width) -> (N, block width), or (N, *shape) uint8 images."""
        X = np.asarray(X)
        cols = block_columns(self.layout, self.block)
        out = X[:, cols]
        if not self.image:
            return out
        shape = dict(self.layout)[self.block]
        return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(len(X), *shape)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class FeatureSetRegressor(RegressorMixin, BaseEstimator):
    """The regressor of one feature set (see the module notes for each set's pipeline).

    Parameters
    ----------
    feature_set : {"deep", "deep128", "geometric", "lbp", "blbp", "pcanet"}
    layout : Layout
        Column layout of ``X``.
    learner : {"svr", "rf"}, default "svr"
    n_neighbors : int, default 10
        KNN neighbours of the greedy geometric feature selection.
    pcanet_filters : (L1, L2), default (8, 8)
    pcanet_patch : int, default 5
    pcanet_block : (bh, bw), default (16, 16)
    n_components : int, default 64
        PCA dimensions after PCANet.
    C, epsilon : SVR parameters (RBF kernel, ``gamma="scale"``)
    n_estimators, max_features, min_samples_leaf : random-forest parameters
    random_state : int or None, default 0
        Seeds PCANet's patch sampling, the PCA and the forest.
    n_jobs : int or None
        Threads of the forest.

    Attributes
    ----------
    model_ : Pipeline
        The fitted pipeline (selection, feature steps, learner).
    """

    def __init__(
        self,
        feature_set: str = "geometric",
        layout: Layout = (),
        learner: str = "svr",
        n_neighbors: int = 10,
        pcanet_filters: tuple[int, int] = (8, 8),
        pcanet_patch: int = 5,
        pcanet_block: tuple[int, int] = (16, 16),
        n_components: int = 64,
        C: float = 1.0,
        epsilon: float = 0.1,
        n_estimators: int = 300,
        max_features: str | float | None = "sqrt",
        min_samples_leaf: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.feature_set = feature_set
        self.layout = layout
        self.learner = learner
        self.n_neighbors = n_neighbors
        self.pcanet_filters = pcanet_filters
        self.pcanet_patch = pcanet_patch
        self.pcanet_block = pcanet_block
        self.n_components = n_components
        self.C = C
        self.epsilon = epsilon
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _pipeline(self, n_samples: int) -> Pipeline:
        fs = self.feature_set
        if fs not in FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {FEATURE_SETS}, got {fs!r}")
        steps: list[tuple[str, Any]] = [
            ("select", BlockSelector(fs, self.layout, image=fs == "pcanet"))
        ]
        scale = True
        if fs == "geometric":
            from facecore.features import GreedyForwardSelector

            k = max(1, min(self.n_neighbors, n_samples - 2))
            steps.append(("greedy", GreedyForwardSelector(n_neighbors=k, cv="loo")))
        elif fs in ("lbp", "blbp"):
            steps.append(("hellinger", FunctionTransformer(np.sqrt)))
        elif fs == "pcanet":
            from facecore.features import PCANet

            steps += [
                (
                    "pcanet",
                    PCANet(
                        n_filters=tuple(self.pcanet_filters),
                        patch_size=self.pcanet_patch,
                        block_size=tuple(self.pcanet_block),
                        random_state=self.random_state,
                    ),
                ),
                ("hellinger", FunctionTransformer(np.sqrt)),
                (
                    "pca",
                    PCA(
                        n_components=min(self.n_components, n_samples - 1),
                        svd_solver="randomized",
                        random_state=self.random_state,
                    ),
                ),
            ]
            # PCA keeps the variance structure that the RBF kernel's distances should see;
            # standardising its components would weight noise directions like signal.
            scale = False
        learner = make_learner(
            self.learner,
            C=self.C,
            epsilon=self.epsilon,
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            scale=scale,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        steps.append(("learner", learner))
        return Pipeline(steps)

    def fit(self, X: Any, y: Any) -> FeatureSetRegressor:
        """Fit the feature steps and the learner on block matrix ``X`` (N, width), ``y`` (N,)."""
        X, y = validate_data(self, X, y, dtype=(np.float32, np.float64), y_numeric=True)
        self.model_ = self._pipeline(len(X)).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted scores, shape (N,)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        return np.asarray(self.model_.predict(X), dtype=np.float64)


class MeanCombiner(RegressorMixin, BaseEstimator):
    """Score fusion by the plain mean of the members' predictions (nothing is learned)."""

    def fit(self, X: Any, y: Any = None) -> MeanCombiner:
        """Record the number of members; returns ``self``."""
        X = validate_data(self, X, dtype=np.float64)
        self.coef_ = np.full(X.shape[1], 1.0 / X.shape[1])
        self.intercept_ = 0.0
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Mean over columns, shape (N,)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_


def _make_combiner(combiner: str) -> BaseEstimator:
    if combiner == "stack":
        return LinearRegression(positive=True)
    if combiner == "mean":
        return MeanCombiner()
    raise ValueError(f"combiner must be one of {COMBINERS}, got {combiner!r}")


def _inner_cv(cv: int, random_state: int | None) -> KFold:
    return KFold(n_splits=int(cv), shuffle=True, random_state=random_state)


def _oof_and_fit(
    estimator: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    inner: KFold,
    X_test: np.ndarray | None = None,
) -> tuple[np.ndarray, BaseEstimator, np.ndarray | None]:
    """Inner out-of-fold predictions on (X, y), the member refitted on all of it, and its
    predictions on ``X_test``."""
    oof = cross_val_predict(clone(estimator), X, y, cv=inner)
    fitted = clone(estimator).fit(X, y)
    test = None if X_test is None else np.asarray(fitted.predict(X_test), dtype=np.float64)
    return np.asarray(oof, dtype=np.float64), fitted, test


class ScoreFusionRegressor(RegressorMixin, BaseEstimator):
    """Score-level fusion of several regressors (see the module notes).

    Parameters
    ----------
    estimators : list of (str, estimator)
        The members, each taking the same ``X``.
    combiner : {"stack", "mean"}, default "stack"
        ``"stack"``: non-negative linear weights + intercept learned on inner out-of-fold
        predictions; ``"mean"``: the plain mean.
    cv : int, default 5
        Inner folds (shuffled K-fold) of the out-of-fold predictions (``"stack"`` only).
    random_state : int or None, default 0
        Seeds the inner fold shuffling.
    n_jobs : int or None, default None
        Members fitted in parallel.

    Attributes
    ----------
    estimators_ : list of estimator
        The members refitted on all the training data.
    combiner_ : estimator
        The fitted combiner; ``combiner_.coef_`` are the members' weights.
    weights_ : ndarray of shape (n_members,)
    intercept_ : float
    """

    def __init__(
        self,
        estimators: Sequence[tuple[str, BaseEstimator]] = (),
        combiner: str = "stack",
        cv: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.estimators = estimators
        self.combiner = combiner
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs

    @property
    def names(self) -> tuple[str, ...]:
        """The members' names."""
        return tuple(name for name, _ in self.estimators)

    def fit(self, X: Any, y: Any) -> ScoreFusionRegressor:
        """Fit the combiner on inner out-of-fold predictions, then every member on all of X.

        Parameters
        ----------
        X : array-like of shape (N, D)
        y : array-like of shape (N,)

        Returns
        -------
        self
        """
        if not self.estimators:
            raise ValueError("estimators must name at least one (name, estimator) pair")
        X, y = validate_data(self, X, y, dtype=(np.float32, np.float64), y_numeric=True)
        combiner = _make_combiner(self.combiner)
        members = [est for _, est in self.estimators]
        if self.combiner == "mean":
            fitted = Parallel(n_jobs=self.n_jobs)(delayed(clone(est).fit)(X, y) for est in members)
            self.combiner_ = combiner.fit(np.zeros((1, len(members))))
        else:
            inner = _inner_cv(self.cv, self.random_state)
            results = Parallel(n_jobs=self.n_jobs)(
                delayed(_oof_and_fit)(est, X, y, inner) for est in members
            )
            oof = np.column_stack([r[0] for r in results])
            fitted = [r[1] for r in results]
            self.combiner_ = combiner.fit(oof, y)
        self.estimators_ = list(fitted)
        self.weights_ = np.asarray(self.combiner_.coef_, dtype=np.float64)
        self.intercept_ = float(self.combiner_.intercept_)
        logger.info(
            "score fusion of %s: weights %s, intercept %.3f",
            self.names,
            np.round(self.weights_, 3).tolist(),
            self.intercept_,
        )
        return self

    def member_predictions(self, X: Any) -> np.ndarray:
        """Each member's predictions, shape (N, n_members)."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, dtype=(np.float32, np.float64), reset=False)
        return np.column_stack([np.asarray(e.predict(X), np.float64) for e in self.estimators_])

    def predict(self, X: Any) -> np.ndarray:
        """Fused scores, shape (N,)."""
        return np.asarray(self.combiner_.predict(self.member_predictions(X)), dtype=np.float64)


def fusion_combos(
    members: Sequence[str] = tuple(PAPER_MEMBERS), extra: Sequence[str] = ("deep",)
) -> list[tuple[str, ...]]:
    """The fusions of the paper's Table 4, then each with ``extra`` members added.

    Returns
    -------
    list of tuple of str
        Every non-empty subset of ``members`` (singles, pairs, ..., all, in that order), then the
        same subsets preceded by ``extra`` when it is not empty.
    """
    subsets = [
        tuple(c) for r in range(1, len(members) + 1) for c in itertools.combinations(members, r)
    ]
    if not extra:
        return subsets
    return subsets + [tuple(extra) + s for s in subsets]


def paper_estimators(
    layout: Layout, random_state: int | None = 0, **params: Any
) -> dict[str, BaseEstimator]:
    """The fusion members: the paper's three plus the deep-feature SVR.

    Parameters
    ----------
    layout : Layout
        Column layout of the block matrix.
    random_state : int or None
    **params
        Extra :class:`FeatureSetRegressor` parameters (e.g. ``n_components``).

    Returns
    -------
    dict of str to estimator
        ``"deep"`` (:class:`~facecore.attractiveness.deep_regressors.DeepFeatureRegressor`, SVR),
        ``"geometric"``, ``"texture"`` (BLBP) and ``"pcanet"`` (:class:`FeatureSetRegressor`,
        SVR), restricted to the blocks present in ``layout``.
    """
    present = {name for name, _ in layout}
    out: dict[str, BaseEstimator] = {}
    if "deep" in present:
        out["deep"] = DeepFeatureRegressor(
            learner="svr", block="deep", layout=layout, random_state=random_state
        )
    for member, feature_set in PAPER_MEMBERS.items():
        if feature_set in present:
            out[member] = FeatureSetRegressor(
                feature_set, layout, learner="svr", random_state=random_state, **params
            )
    return out


@dataclass
class FusionCV:
    """Outer cross-validated predictions of fusion members and fusions.

    Attributes
    ----------
    members : dict of str to ndarray of shape (N,)
        Each member's outer out-of-fold predictions (the member alone).
    fusions : dict of tuple of str to ndarray of shape (N,)
        Each fusion's outer out-of-fold predictions.
    weights : dict of tuple of str to ndarray of shape (n_folds, n_members + 1)
        Per outer fold, each fusion's member weights and intercept (last column).
    """

    members: dict[str, np.ndarray] = field(default_factory=dict)
    fusions: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)
    weights: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)


def fusion_cross_val_predict(
    estimators: Mapping[str, BaseEstimator],
    combos: Iterable[Sequence[str]],
    X: Any,
    y: Any,
    *,
    cv: Any = 5,
    inner_cv: int = 5,
    random_state: int | None = 0,
    combiner: str = "stack",
    n_jobs: int | None = None,
) -> FusionCV:
    """Nested cross-validated predictions of many score fusions sharing their members.

    For every outer fold and member: inner out-of-fold predictions on the outer training part
    (``inner_cv`` shuffled folds seeded by ``random_state``, exactly as
    :meth:`ScoreFusionRegressor.fit` makes them) and the member fitted on the whole outer
    training part, predicting the outer test part. Each fusion's combiner is then fitted on its
    members' inner predictions. The fusion of ``combo`` gets the same predictions as
    ``cross_val_predict(ScoreFusionRegressor([(m, estimators[m]) for m in combo],
    combiner, inner_cv, random_state), X, y, cv=cv)``.

    Parameters
    ----------
    estimators : mapping of str to estimator
        Every member any fusion uses.
    combos : iterable of sequence of str
        The fusions, by member names.
    X : ndarray of shape (N, D)
    y : ndarray of shape (N,)
    cv : int, cross-validation generator or iterable of (train, test), default 5
        The outer folds (an int means unshuffled ``KFold``, as in scikit-learn; pass a shuffled
        ``KFold`` for the usual protocol).
    inner_cv : int, default 5
    random_state : int or None, default 0
        Seeds the inner folds.
    combiner : {"stack", "mean"}, default "stack"
    n_jobs : int or None
        (fold, member) tasks run in parallel.

    Returns
    -------
    FusionCV
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.float64)
    combos = [tuple(c) for c in combos]
    unknown = sorted({m for c in combos for m in c} - set(estimators))
    if unknown:
        raise ValueError(f"fusions name unknown members {unknown}; known: {sorted(estimators)}")
    names = list(estimators)
    folds = list(check_cv(cv).split(X, y))
    inner = _inner_cv(inner_cv, random_state)

    def task(est: BaseEstimator, train: np.ndarray, test: np.ndarray) -> tuple[Any, Any]:
        oof, _, pred = _oof_and_fit(est, X[train], y[train], inner, X[test])
        return oof, pred

    results = Parallel(n_jobs=n_jobs)(
        delayed(task)(estimators[name], train, test) for train, test in folds for name in names
    )
    out = FusionCV(
        members={n: np.full(len(y), np.nan) for n in names},
        fusions={c: np.full(len(y), np.nan) for c in combos},
        weights={c: np.zeros((len(folds), len(c) + 1)) for c in combos},
    )
    for f, (train, test) in enumerate(folds):
        part = results[f * len(names) : (f + 1) * len(names)]
        oof = {n: r[0] for n, r in zip(names, part, strict=True)}
        pred = {n: r[1] for n, r in zip(names, part, strict=True)}
        for n in names:
            out.members[n][test] = pred[n]
        for c in combos:
            comb = _make_combiner(combiner)
            comb.fit(np.column_stack([oof[m] for m in c]), y[train])
            out.fusions[c][test] = comb.predict(np.column_stack([pred[m] for m in c]))
            out.weights[c][f] = [*np.ravel(comb.coef_), float(comb.intercept_)]
    return out
