"""Attractiveness from deep face features with an RBF SVR or a random forest.

Paper: X. Zang, T. Yamasaki, K. Aizawa et al., "Prediction of users' facial attractiveness on an
online dating website", IEEE ICME Workshops, 2017 (bibliographic details as recalled; the full
text was not available when this was written, so no section or equation is cited). Its method:
take the activations of a face-recognition CNN (VGG-Face) as a fixed feature vector and regress
the attractiveness score on it with support vector regression (RBF kernel) and with a random
forest.

:class:`DeepFeatureRegressor` is that method as a scikit-learn estimator; :func:`make_learner`
builds its learner (standardisation + ``SVR(kernel="rbf")``, or a ``RandomForestRegressor``) and
is shared with :mod:`facecore.attractiveness.fusion`.

Departures from the paper, and why:

* The face network is dlib's face-recognition ResNet (the one facecore ships, run in PyTorch by
  :mod:`facecore.nn`), not VGG-Face, which is neither bundled nor small. Its features are the
  896-D pooled multi-level trunk features (block ``"deep"``) or the 128-D descriptor
  (``"deep128"``), see :mod:`facecore.attractiveness.face_features`.
* Hyperparameters are fixed a priori to common defaults (``C=1``, ``epsilon=0.1``,
  ``gamma="scale"`` on standardised features; 300 trees, ``max_features="sqrt"``,
  ``min_samples_leaf=5``), not tuned per data set: the paper's grid is not known and tuning on
  the evaluation folds would inflate the cross-validated figures.
* :class:`CompactSVR` stores its support vectors as float32 when pickled (restored to float64 on
  load, as libsvm needs), halving the size of shipped model files; predictions change by about
  1e-7 relative.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LEARNERS", "CompactSVR", "DeepFeatureRegressor", "make_learner"]

logger = logging.getLogger(__name__)

#: Learners of the paper.
LEARNERS: tuple[str, ...] = ("svr", "rf")


class CompactSVR(SVR):
    """``sklearn.svm.SVR`` that pickles its support vectors as float32.

    Identical to :class:`~sklearn.svm.SVR` in fitting and prediction; only the pickled state
    differs (about half the size). On unpickling the support vectors are cast back to float64.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        sv = state.get("support_vectors_")
        if isinstance(sv, np.ndarray) and sv.dtype == np.float64:
            state["support_vectors_"] = sv.astype(np.float32)
            state["_compact_support_vectors"] = True
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if state.pop("_compact_support_vectors", False):
            state["support_vectors_"] = np.ascontiguousarray(
                state["support_vectors_"], dtype=np.float64
            )
        super().__setstate__(state)


def make_learner(
    learner: str = "svr",
    *,
    C: float = 1.0,
    epsilon: float = 0.1,
    gamma: str | float = "scale",
    n_estimators: int = 300,
    max_features: str | float | None = "sqrt",
    min_samples_leaf: int = 5,
    scale: bool = True,
    random_state: int | None = 0,
    n_jobs: int | None = None,
) -> BaseEstimator:
    """The paper's learner: scaling + RBF SVR, or a random forest.

    Parameters
    ----------
    learner : {"svr", "rf"}
    C, epsilon, gamma
        ``SVR`` parameters (RBF kernel).
    n_estimators, max_features, min_samples_leaf
        ``RandomForestRegressor`` parameters.
    scale : bool, default True
        Standardise features before the SVR (the forest needs no scaling).
    random_state : int or None
        Seeds the forest (the SVR is deterministic).
    n_jobs : int or None
        Threads of the forest.

    Returns
    -------
    estimator
        An unfitted ``Pipeline`` (SVR) or ``RandomForestRegressor``.
    """
    if learner == "svr":
        svr = CompactSVR(kernel="rbf", C=C, epsilon=epsilon, gamma=gamma)
        steps: list[tuple[str, Any]] = [("scale", StandardScaler())] if scale else []
        return Pipeline([*steps, ("svr", svr)])
    if learner == "rf":
        return RandomForestRegressor(
            n_estimators=n_estimators,
            max_features=max_features,
            min_samples_leaf=min_samples_leaf,
            random_state=random_state,
            n_jobs=n_jobs,
        )
    raise ValueError(f"learner must be one of {LEARNERS}, got {learner!r}")


class DeepFeatureRegressor(RegressorMixin, BaseEstimator):
    """Attractiveness regression on deep face features (Zang et al.): RBF SVR or random forest.

    Parameters
    ----------
    learner : {"svr", "rf"}, default "svr"
    block : str, default "deep"
        Feature block to use when ``layout`` is given (``"deep"`` or ``"deep128"``).
    layout : Layout or None, default None
        Column layout of ``X`` (:mod:`facecore.attractiveness.face_features`); None means ``X``
        is the feature matrix itself.
    C, epsilon, gamma : SVR parameters (RBF kernel, standardised features)
    n_estimators, max_features, min_samples_leaf : forest parameters
    random_state : int or None, default 0
    n_jobs : int or None, default None
        Threads of the forest.

    Attributes
    ----------
    model_ : estimator
        The fitted learner (a ``Pipeline`` for the SVR).
    n_features_in_ : int

    Examples
    --------
    >>> DeepFeatureRegressor(learner="svr").fit(X, y).predict(X[:3])  # doctest: +SKIP
    """

    def __init__(
        self,
        learner: str = "svr",
        block: str = "deep",
        layout: Any = None,
        C: float = 1.0,
        epsilon: float = 0.1,
        gamma: str | float = "scale",
        n_estimators: int = 300,
        max_features: str | float | None = "sqrt",
        min_samples_leaf: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.learner = learner
        self.block = block
        self.layout = layout
        self.C = C
        self.epsilon = epsilon
        self.gamma = gamma
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _select(self, X: np.ndarray) -> np.ndarray:
        if self.layout is None:
            return X
        from facecore.attractiveness.face_features import block_columns

        return X[:, block_columns(self.layout, self.block)]

    def fit(self, X: Any, y: Any) -> DeepFeatureRegressor:
        """Fit the learner.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Deep features, or a block matrix when ``layout`` is given.
        y : array-like of shape (N,)
            Attractiveness scores.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), y_numeric=True)
        model = make_learner(
            self.learner,
            C=self.C,
            epsilon=self.epsilon,
            gamma=self.gamma,
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        self.model_ = clone(model).fit(self._select(X), y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted scores, shape (N,)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return np.asarray(self.model_.predict(self._select(X)), dtype=np.float64)
