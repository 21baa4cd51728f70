"""Greedy forward feature selection scored by cross-validated KNN regression.

Paper: B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and
beautification models", Pattern Analysis and Applications 21(2):529-542, 2018, Algorithm 1
(feature selection for the facial beauty prediction model).

Algorithm 1 as implemented: start from the empty set ``S``. At each step, for every feature
``f`` not in ``S``, predict the target of every training sample from the features ``S + {f}`` with
a k-nearest-neighbour regressor that has not seen that sample (cross-validated predictions), and
score the candidate by the Pearson correlation between those predictions and the target. Add
the best-scoring feature to ``S`` and record its score. Repeat until ``max_features`` features
are in ``S`` (all of them by default). The selected subset is the prefix of the ranking with the
highest score on this curve (or its first ``n_features_to_select`` features when given).

Departures from the paper, and why:

* Features are standardised (zero mean, unit variance over the training data) before the KNN
  distances are taken, so that a feature's weight does not depend on its unit. The scaler sees no
  target, so this leaks nothing about ``y`` into the cross-validation.
* ``cv="loo"`` (the default) computes leave-one-out predictions exactly but fast, by querying
  ``n_neighbors + 1`` neighbours of each training sample and dropping the sample itself; an
  integer ``cv`` uses shuffled K-fold cross-validation seeded by ``random_state``.
* A candidate whose predictions are constant has an undefined correlation; it scores ``-inf``.
  Ties are broken in favour of the lower feature index, so the result is deterministic.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsRegressor, NearestNeighbors
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["GreedyForwardSelector", "knn_cv_predictions", "pearson_score"]

logger = logging.getLogger(__name__)


def pearson_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation of two vectors; ``-inf`` when either is constant.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (N,)

    Returns
    -------
    float
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    for v in (t, p):
        if v.size < 2 or np.ptp(v) <= 1e-12 * np.abs(v).max():
            return float("-inf")
    a = t - t.mean()
    b = p - p.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denom)


def _loo_knn_predictions(
    X: np.ndarray, y: np.ndarray, n_neighbors: int, weights: str
) -> np.ndarray:
    n = X.shape[0]
    k = min(n_neighbors + 1, n)
    dist, ind = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    # Drop each sample's own index; if duplicates pushed it out of the list, drop the farthest.
    is_self = ind == np.arange(n)[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    ind = ind[keep].reshape(n, k - 1)
    dist = dist[keep].reshape(n, k - 1)
    if weights == "distance":
        with np.errstate(divide="ignore"):
            w = 1.0 / dist
        zero = np.isinf(w)
        rows_with_zero = zero.any(axis=1)
        w[rows_with_zero] = zero[rows_with_zero].astype(float)
        return np.sum(w * y[ind], axis=1) / np.sum(w, axis=1)
    return y[ind].mean(axis=1)


def knn_cv_predictions(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_neighbors: int = 5,
    weights: str = "uniform",
    cv: int | str = "loo",
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray:
    """Cross-validated KNN-regression predictions of ``y`` from ``X``.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    y : ndarray of shape (N,)
    n_neighbors : int, default 5
    weights : {"uniform", "distance"}, default "uniform"
    cv : "loo" or int, default "loo"
        Leave-one-out, or the number of shuffled folds.
    random_state : int, RandomState or None
        Seeds the fold shuffling (integer ``cv`` only).

    Returns
    -------
    ndarray of shape (N,)
        The prediction of each sample by a model that did not see it.
    """
    if cv == "loo":
        return _loo_knn_predictions(X, y, n_neighbors, weights)
    pred = np.empty_like(y, dtype=np.float64)
    folds = KFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    for train, test in folds.split(X):
        k = min(n_neighbors, len(train))
        model = KNeighborsRegressor(n_neighbors=k, weights=weights).fit(X[train], y[train])
        pred[test] = model.predict(X[test])
    return pred


class GreedyForwardSelector(SelectorMixin, BaseEstimator):
    """Greedy forward selection with cross-validated KNN + Pearson scoring (Algorithm 1).

    Parameters
    ----------
    n_neighbors : int, default 5
        Neighbours of the KNN regressor.
    cv : "loo" or int, default "loo"
        Leave-one-out (exact and fast for KNN), or the number of shuffled K folds.
    max_features : int or None, default None
        Stop the search after this many features (None: rank all features).
    n_features_to_select : int or None, default None
        Keep the first this many ranked features; None keeps the best-scoring prefix.
    weights : {"uniform", "distance"}, default "uniform"
        KNN weighting.
    standardize : bool, default True
        Standardise features before taking KNN distances.
    random_state : int, RandomState or None, default None
        Seeds the fold shuffling when ``cv`` is an integer.

    Attributes
    ----------
    ranking_ : ndarray of shape (n_steps,), int
        Feature indices in the order they were added.
    curve_ : ndarray of shape (n_steps,), float
        ``curve_[i]``: cross-validated Pearson correlation with the first ``i + 1`` ranked features.
    selected_ : ndarray of shape (n_selected,), int
        The chosen features, in the order they were added.
    support_ : ndarray of shape (n_features_in_,), bool
        Mask of ``selected_``.
    best_score_ : float
        Score of the selected subset (``curve_[n_selected - 1]``).
    n_features_in_ : int
    """

    def __init__(
        self,
        n_neighbors: int = 5,
        cv: int | str = "loo",
        max_features: int | None = None,
        n_features_to_select: int | None = None,
        weights: str = "uniform",
        standardize: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.cv = cv
        self.max_features = max_features
        self.n_features_to_select = n_features_to_select
        self.weights = weights
        self.standardize = standardize
        self.random_state = random_state

    def _check_params(self, n_samples: int, n_features: int) -> tuple[int, int | str]:
        if not isinstance(self.n_neighbors, int | np.integer) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive integer, got {self.n_neighbors!r}")
        if self.weights not in ("uniform", "distance"):
            raise ValueError(f"weights must be 'uniform' or 'distance', got {self.weights!r}")
        if n_samples < 2:
            raise ValueError(
                f"need at least 2 samples to cross-validate, got n_samples = {n_samples}"
            )
        if self.cv == "loo":
            cv: int | str = "loo"
        elif isinstance(self.cv, int | np.integer) and self.cv >= 2:
            cv = int(self.cv)
            if cv > n_samples:
                raise ValueError(f"cv={cv} folds need at least {cv} samples, got {n_samples}")
        else:
            raise ValueError(f"cv must be 'loo' or an integer >= 2, got {self.cv!r}")
        max_f = n_features if self.max_features is None else self.max_features
        if not isinstance(max_f, int | np.integer) or not max_f >= 1:
            raise ValueError(f"max_features must be a positive integer, got {self.max_features!r}")
        max_f = min(int(max_f), n_features)
        if self.n_features_to_select is not None and not (
            isinstance(self.n_features_to_select, int | np.integer)
            and 1 <= self.n_features_to_select <= max_f
        ):
            raise ValueError(
                f"n_features_to_select must be an integer in [1, {max_f}], "
                f"got {self.n_features_to_select!r}"
            )
        return max_f, cv

    def fit(self, X: Any, y: Any) -> GreedyForwardSelector:
        """Rank features by greedy forward search and choose the subset.

        Parameters
        ----------
        X : array-like of shape (N, D)
        y : array-like of shape (N,)
            Continuous target (e.g. attractiveness score).

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        n, d = X.shape
        max_f, cv = self._check_params(n, d)
        if self.standardize:
            std = X.std(axis=0)
            X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
        # One fixed seed for every candidate when folds are shuffled, so candidates are compared
        # on the same folds.
        seed: Any = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = seed.randint(np.iinfo(np.int32).max)
        ranking: list[int] = []
        curve: list[float] = []
        remaining = list(range(d))
        for step in range(max_f):
            scores = np.array(
                [
                    pearson_score(
                        y,
                        knn_cv_predictions(
                            X[:, ranking + [f]],
                            y,
                            n_neighbors=self.n_neighbors,
                            weights=self.weights,
                            cv=cv,
                            random_state=seed,
                        ),
                    )
                    for f in remaining
                ]
            )
            best = int(np.argmax(scores))  # first maximum: lowest remaining index on ties
            ranking.append(remaining.pop(best))
            curve.append(float(scores[best]))
            logger.debug("step %d: added feature %d, score %.4f", step + 1, ranking[-1], curve[-1])
        self.ranking_ = np.array(ranking, dtype=np.int64)
        self.curve_ = np.array(curve, dtype=np.float64)
        if self.n_features_to_select is None:
            n_sel = int(np.argmax(self.curve_)) + 1
        else:
            n_sel = int(self.n_features_to_select)
        self.selected_ = self.ranking_[:n_sel].copy()
        self.best_score_ = float(self.curve_[n_sel - 1])
        self.support_ = np.zeros(d, dtype=bool)
        self.support_[self.selected_] = True
        logger.info(
            "greedy KNN selection: %d of %d features, cross-validated r=%.4f",
            n_sel,
            d,
            self.best_score_,
        )
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
