"""Maximum-entropy label distribution learning fitted by BFGS (SA-BFGS).

Paper: X. Geng, "Label Distribution Learning", IEEE Transactions on Knowledge and Data
Engineering 28(7), 2016 (arXiv:1408.6027), its "specialized algorithms": the maximum-entropy
model

    p(y_k | x) = exp(theta_k . x) / sum_l exp(theta_l . x)

is fitted by minimising the Kullback-Leibler divergence from the target distributions ``D``
(equal, up to a constant, to their cross-entropy with the model); SA-IIS does it by improved
iterative scaling, SA-BFGS by BFGS with the exact gradient. Here, with ``Z = X W + b``, ``P =
softmax(Z)`` row-wise and N samples,

    T(W, b) = (1/N) sum_i sum_k D_ik (log D_ik - log P_ik) + (alpha/2) ||W||_F^2,

    dT/dW = X^T (P - D) / N + alpha W,      dT/db = 1^T (P - D) / N,

(rows of ``D`` sum to 1), minimised by L-BFGS-B (``scipy.optimize.minimize``).

Departures from the paper, and why:

* L2 regularisation ``alpha`` (the paper's objective has none): high-dimensional features
  (the trunk's 896) separate the training distributions and the unregularised weights grow
  without bound; ``alpha`` is the usual ridge on ``W`` (the intercept ``b`` is not penalised).
* An intercept ``b`` (``fit_intercept``); Geng's features absorb it as a constant feature.
* The loss is averaged over samples, not summed, so ``alpha`` does not depend on N.
* Limited-memory BFGS instead of full BFGS (the Hessian of 896 x K parameters is not needed).
* ``random_state`` only draws the starting weights (small Gaussian noise); the objective is
  convex, so different seeds reach the same optimum up to the tolerance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

__all__ = ["MaxEntLDL", "check_distributions", "maxent_objective"]

logger = logging.getLogger(__name__)


def check_distributions(D: Any, n_rows: int | None = None) -> np.ndarray:
    """Validate target label distributions and renormalise their rows.

    Parameters
    ----------
    D : array-like of shape (N, K)
        Non-negative, finite rows with a positive sum (each is divided by its sum).
    n_rows : int, optional
        Required N.

    Returns
    -------
    ndarray of shape (N, K), float64
    """
    d = np.asarray(D, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] < 2:
        raise ValueError(f"label distributions must have shape (N, K) with K >= 2, got {d.shape}")
    if n_rows is not None and d.shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but the label distributions have {d.shape[0]}")
    if not np.isfinite(d).all():
        bad = int(np.flatnonzero(~np.isfinite(d).all(axis=1))[0])
        raise ValueError(f"label distributions must be finite (row {bad} is not)")
    if (d < 0).any():
        raise ValueError("label distributions must be non-negative")
    total = d.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise ValueError(f"row {int(np.flatnonzero(total[:, 0] <= 0)[0])} of D sums to 0")
    return d / total


def _bins(bins: Sequence[float] | None, k: int) -> np.ndarray:
    if bins is None:
        return np.arange(1, k + 1, dtype=np.float64)
    b = np.asarray(bins, dtype=np.float64)
    if b.shape != (k,):
        raise ValueError(f"bins must have {k} values (one per label), got shape {b.shape}")
    return b


def _log_softmax(z: np.ndarray) -> np.ndarray:
    zs = z - z.max(axis=1, keepdims=True)
    return zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))


def maxent_objective(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, D: np.ndarray, alpha: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """The SA-BFGS objective ``T(W, b)`` and its exact gradient (see the module notes).

    Parameters
    ----------
    W : ndarray of shape (F, K)
    b : ndarray of shape (K,)
    X : ndarray of shape (N, F)
    D : ndarray of shape (N, K)
        Target distributions (rows sum to 1).
    alpha : float
        L2 weight on ``W``.

    Returns
    -------
    value : float
        Mean KL divergence plus the penalty.
    grad_W : ndarray of shape (F, K)
    grad_b : ndarray of shape (K,)
    """
    n = X.shape[0]
    logp = _log_softmax(X @ W + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(D > 0, D * np.log(D), 0.0)
    kl = float((plogp - D * logp).sum()) / n
    r = (np.exp(logp) - D) / n
    return (
        kl + 0.5 * alpha * float(np.sum(W * W)),
        X.T @ r + alpha * W,
        r.sum(axis=0),
    )


class MaxEntLDL(BaseEstimator):
    """Maximum-entropy LDL (SA-BFGS, Geng 2016): ``p(y | x) = softmax(W^T x + b)``.

    Parameters
    ----------
    alpha : float, default 0.1
        L2 weight on ``W`` (objective: mean KL + ``alpha/2 ||W||^2``). Features should be on a
        common scale (e.g. standardised) for one ``alpha`` to suit all of them; the default is
        the best of 0.01, 0.1 and 1 on MEBeauty's standardised 896-D trunk features
        (``docs/ldl.md``).
    fit_intercept : bool, default True
    bins : sequence of float, optional
        The value of each label, for :meth:`predict`; default 1..K.
    max_iter : int, default 1000
        L-BFGS-B iterations at most.
    tol : float, default 1e-8
        L-BFGS-B's ``ftol``; its ``gtol`` is ``tol`` too.
    random_state : int, RandomState or None, default None
        Draws the starting weights (see the module notes).

    Attributes
    ----------
    coef_ : ndarray of shape (F, K)
    intercept_ : ndarray of shape (K,)
    bins_ : ndarray of shape (K,)
    n_features_in_ : int
    n_iter_ : int
    converged_ : bool
    loss_ : float
        Final objective value.
    """

    def __init__(
        self,
        alpha: float = 0.1,
        fit_intercept: bool = True,
        bins: Sequence[float] | None = None,
        max_iter: int = 1000,
        tol: float = 1e-8,
        random_state: Any = None,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.bins = bins
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X: np.ndarray, D: np.ndarray):
        """Fit the model to label distributions.

        Parameters
        ----------
        X : array-like of shape (N, F)
        D : array-like of shape (N, K)
            Target distributions (rows are renormalised to sum to 1).

        Returns
        -------
        self
        """
        from scipy.optimize import minimize

        x = _check_x(X)
        d = check_distributions(D, x.shape[0])
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be finite and >= 0, got {self.alpha}")
        n_feat, k = x.shape[1], d.shape[1]
        rng = check_random_state(self.random_state)
        w0 = rng.normal(scale=1e-3, size=n_feat * k)
        if self.fit_intercept:
            # start from the marginal distribution of the targets
            b0 = np.log(np.clip(d.mean(axis=0), 1e-12, None))
            theta0 = np.concatenate([w0, b0 - b0.mean()])
        else:
            theta0 = w0
        alpha = float(self.alpha)

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = theta[: n_feat * k].reshape(n_feat, k)
            b = theta[n_feat * k :] if self.fit_intercept else np.zeros(k)
            f, gw, gb = maxent_objective(w, b, x, d, alpha)
            return f, np.concatenate([gw.ravel(), gb]) if self.fit_intercept else gw.ravel()

        res = minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": self.tol},
        )
        if not res.success:
            logger.warning("MaxEntLDL: L-BFGS-B stopped early: %s", res.message)
        self.coef_ = res.x[: n_feat * k].reshape(n_feat, k).copy()
        self.intercept_ = res.x[n_feat * k :].copy() if self.fit_intercept else np.zeros(k)
        self.bins_ = _bins(self.bins, k)
        self.n_features_in_ = n_feat
        self.n_iter_ = int(res.nit)
        self.converged_ = bool(res.success)
        self.loss_ = float(res.fun)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logits ``X W + b``, shape (N, K)."""
        check_is_fitted(self, "coef_")
        x = _check_x(X, self.n_features_in_)
        return x @ self.coef_ + self.intercept_

    def predict_distribution(self, X: np.ndarray) -> np.ndarray:
        """Predicted label distributions.

        Parameters
        ----------
        X : array-like of shape (N, F)

        Returns
        -------
        ndarray of shape (N, K), float64
            Rows sum to 1.
        """
        return np.exp(_log_softmax(self.decision_function(X)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Expectation of the predicted distribution on ``bins_``, shape (N,)."""
        return self.predict_distribution(X) @ self.bins_


def _check_x(X: Any, n_features: int | None = None) -> np.ndarray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"X must have shape (N, F), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("X has no rows")
    if not np.isfinite(x).all():
        raise ValueError("X must be finite")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"X has {x.shape[1]} features, the model was fitted with {n_features}")
    return x
