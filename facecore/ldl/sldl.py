"""Structural label distribution learning (SLDL): a structural SVM that outputs distributions.

Paper: Y. Ren, X. Geng, "Sense Beauty by Label Distribution Learning", IJCAI 2017. Its
Structural Label Distribution Learning (SLDL) learns the map from a face's features to its
beauty distribution with a structural support vector machine (I. Tsochantaridis, T. Joachims,
T. Hofmann, Y. Altun, "Large Margin Methods for Structured and Interdependent Output
Variables", JMLR 6, 2005): a compatibility ``F(x, d) = w . Psi(x, d)`` between an input and an
output distribution is trained so that the true distribution scores higher than every other by a
margin that grows with their distance, and the prediction is the best-scoring distribution.

Only the paper's abstract could be consulted offline; the details below are this module's
reading of "a structural SVM whose outputs are label distributions", not a transcription.

Model (margin rescaling, the primal in unconstrained form)
---------------------------------------------------------
* Joint feature map ``Psi(x, d) = [x; 1] (outer) d``, so ``F(x, d) = d . s(x)`` with the label
  scores ``s(x) = W^T x + b`` (``W``: F x K).
* Output space: a finite set of candidate distributions ``Y_1..Y_C`` (by default the distinct
  training distributions). Because ``F`` is linear in ``d``, its maximum over the whole simplex
  would always be a one-hot distribution; a finite set keeps the outputs real distributions and
  makes the argmax exact by enumeration.
* Loss ``Delta(D_i, Y_c)``: a distance between distributions (default Euclidean; ``kl``,
  ``chebyshev``, ``clark``, ``canberra`` and ``intersection`` (1 - intersection) from
  :mod:`facecore.metrics` are available).
* Objective, with ``v_ic = Delta(D_i, Y_c) + (Y_c - D_i) . s(x_i)`` (``v_i0 = 0`` for the true
  distribution itself)::

      T(W, b) = (alpha/2) ||W||^2 + (1/N) sum_i tau * log sum_{c=0..C} exp(v_ic / tau),

  whose gradient is ``dT/ds_i = sum_c q_ic (Y_c - D_i)`` with ``q_i = softmax(v_i / tau)``,
  i.e. ``dT/dW = X^T G / N + alpha W``, ``dT/db = 1^T G / N``.
* Prediction: ``argmax_c Y_c . s(x)`` (``decode="argmax"``), or the softmax-weighted mean of the
  candidates, ``sum_c softmax(Y s(x) / tau)_c Y_c`` (``decode="mean"``).

Departures from a textbook structural SVM, and why
--------------------------------------------------
* The hinge ``max_c v_ic`` is smoothed into ``tau * logsumexp(v_i / tau)`` (a softmax-margin
  loss; it tends to the hinge as ``tau -> 0`` and exceeds it by at most ``tau * log(C + 1)``),
  and the primal is minimised by L-BFGS-B with its exact gradient instead of the cutting-plane
  quadratic programmes of SVM-struct: no QP solver is needed, the fit is deterministic and its
  gradient can be checked.
* ``alpha`` is the L2 weight of the primal (``C = 1 / (alpha N)`` in SVM notation); the
  intercept is not penalised.
* More distinct training distributions than ``max_candidates`` are subsampled (seeded by
  ``random_state``) to bound the N x C work of each evaluation.
* ``decode="mean"`` is an addition (see ``docs/ldl.md`` for how the two compare).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from facecore.ldl.maxent import _bins, _check_x, check_distributions

__all__ = ["LOSSES", "StructuredLDL", "loss_matrix", "sldl_objective"]

logger = logging.getLogger(__name__)

#: The loss functions ``Delta`` by name.
LOSSES = ("euclidean", "kl", "chebyshev", "clark", "canberra", "intersection")


def loss_matrix(D: np.ndarray, Y: np.ndarray, loss: str = "euclidean") -> np.ndarray:
    """``Delta(D_i, Y_c)`` for every target row and candidate.

    Parameters
    ----------
    D : ndarray of shape (N, K)
        Target distributions.
    Y : ndarray of shape (C, K)
        Candidate distributions.
    loss : str, default "euclidean"
        One of :data:`LOSSES`; ``kl`` is ``KL(D_i || Y_c)`` as
        :func:`facecore.metrics.kl_divergence` computes it, ``intersection`` is
        ``1 - intersection``.

    Returns
    -------
    ndarray of shape (N, C), float64
    """
    from facecore import metrics

    d = np.asarray(D, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    if loss == "euclidean":
        sq = (d**2).sum(1)[:, None] + (y**2).sum(1)[None, :] - 2.0 * d @ y.T
        return np.sqrt(np.maximum(sq, 0.0))
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    fn = metrics.intersection if loss == "intersection" else metrics.LDL_METRICS[loss]
    n, c, k = len(d), len(y), d.shape[1]
    out = np.empty((n, c))
    rows = max(1, 2_000_000 // max(1, c * k))
    for start in range(0, n, rows):
        block = d[start : start + rows]
        p = np.repeat(block, c, axis=0)
        q = np.tile(y, (len(block), 1))
        out[start : start + rows] = fn(p, q).reshape(len(block), c)
    return 1.0 - out if loss == "intersection" else out


def sldl_objective(
    W: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    D: np.ndarray,
    Y: np.ndarray,
    delta: np.ndarray,
    alpha: float,
    temperature: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The smoothed structural-SVM objective ``T(W, b)`` and its exact gradient.

    Parameters
    ----------
    W : ndarray of shape (F, K)
    b : ndarray of shape (K,)
    X : ndarray of shape (N, F)
    D : ndarray of shape (N, K)
        Target distributions.
    Y : ndarray of shape (C, K)
        Candidate distributions.
    delta : ndarray of shape (N, C)
        ``Delta(D_i, Y_c)`` (:func:`loss_matrix`).
    alpha : float
        L2 weight on ``W``.
    temperature : float
        ``tau`` > 0.

    Returns
    -------
    value : float
    grad_W : ndarray of shape (F, K)
    grad_b : ndarray of shape (K,)
    """
    n = X.shape[0]
    s = X @ W + b  # (N, K) label scores
    true_score = np.einsum("nk,nk->n", D, s)
    v = np.empty((n, len(Y) + 1))
    v[:, 0] = 0.0
    v[:, 1:] = delta + s @ Y.T - true_score[:, None]
    lse, q = logsumexp(v / temperature, axis=1), softmax(v / temperature, axis=1)
    value = temperature * float(lse.sum()) / n + 0.5 * alpha * float(np.sum(W * W))
    g = (q[:, 1:] @ Y - (1.0 - q[:, 0])[:, None] * D) / n  # dT/ds
    return value, X.T @ g + alpha * W, g.sum(axis=0)


class StructuredLDL(BaseEstimator):
    """Structural label distribution learning (SLDL, Ren & Geng 2017; see the module notes).

    Parameters
    ----------
    alpha : float, default 0.3
        L2 weight on ``W``. Features should be on a common scale (e.g. standardised); the
        default is the best of a small grid on MEBeauty's standardised 896-D trunk features
        (``docs/ldl.md``).
    loss : str, default "euclidean"
        The margin's loss ``Delta``, one of :data:`LOSSES`.
    candidates : array-like of shape (C, K), optional
        The output space; default the distinct training distributions (at most
        ``max_candidates`` of them).
    temperature : float, default 0.1
        ``tau`` of the smoothed hinge (and of ``decode="mean"``), in the units of the loss.
    decode : {"argmax", "mean"}, default "argmax"
        Prediction: the best-scoring candidate (the structural SVM's), or the softmax-weighted
        mean of the candidates. A single candidate is a training histogram, often with empty
        bins, so ``"argmax"`` scores badly in KL on rating data; ``"mean"`` is better there
        (``docs/ldl.md``).
    fit_intercept : bool, default True
    bins : sequence of float, optional
        The value of each label, for :meth:`predict`; default 1..K.
    max_candidates : int, default 500
        Each evaluation costs O(N C K): 500 keeps a 5-fold run on MEBeauty near a minute.
    max_iter : int, default 1000
        L-BFGS-B iterations at most.
    tol : float, default 1e-8
        L-BFGS-B's ``ftol`` and ``gtol``.
    random_state : int, RandomState or None, default None
        Subsamples the candidates and draws the starting weights.

    Attributes
    ----------
    coef_ : ndarray of shape (F, K)
    intercept_ : ndarray of shape (K,)
    candidates_ : ndarray of shape (C, K)
    bins_ : ndarray of shape (K,)
    n_features_in_ : int
    n_iter_ : int
    converged_ : bool
    loss_ : float
        Final objective value.
    """

    def __init__(
        self,
        alpha: float = 0.3,
        loss: str = "euclidean",
        candidates: np.ndarray | None = None,
        temperature: float = 0.1,
        decode: str = "argmax",
        fit_intercept: bool = True,
        bins: Sequence[float] | None = None,
        max_candidates: int = 500,
        max_iter: int = 1000,
        tol: float = 1e-8,
        random_state: Any = None,
    ) -> None:
        self.alpha = alpha
        self.loss = loss
        self.candidates = candidates
        self.temperature = temperature
        self.decode = decode
        self.fit_intercept = fit_intercept
        self.bins = bins
        self.max_candidates = max_candidates
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _candidate_set(self, d: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        if self.candidates is not None:
            y = check_distributions(self.candidates)
            if y.shape[1] != d.shape[1]:
                raise ValueError(f"candidates have {y.shape[1]} labels, the targets {d.shape[1]}")
            return y
        _, first = np.unique(np.round(d, 9), axis=0, return_index=True)
        y = d[np.sort(first)]
        if len(y) > self.max_candidates:
            y = y[np.sort(rng.choice(len(y), self.max_candidates, replace=False))]
        return y

    def fit(self, X: np.ndarray, D: np.ndarray):
        """Fit the structural SVM.

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
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be finite and > 0, got {self.temperature}")
        if self.decode not in ("argmax", "mean"):
            raise ValueError(f"decode must be 'argmax' or 'mean', got {self.decode!r}")
        rng = check_random_state(self.random_state)
        y = self._candidate_set(d, rng)
        delta = loss_matrix(d, y, self.loss)
        n_feat, k = x.shape[1], d.shape[1]
        size = n_feat * k
        theta0 = rng.normal(scale=1e-3, size=size + (k if self.fit_intercept else 0))
        alpha, tau = float(self.alpha), float(self.temperature)
        zero_b = np.zeros(k)

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = theta[:size].reshape(n_feat, k)
            b = theta[size:] if self.fit_intercept else zero_b
            f, gw, gb = sldl_objective(w, b, x, d, y, delta, alpha, tau)
            return f, np.concatenate([gw.ravel(), gb]) if self.fit_intercept else gw.ravel()

        res = minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": self.tol},
        )
        if not res.success:
            logger.warning("StructuredLDL: L-BFGS-B stopped early: %s", res.message)
        self.coef_ = res.x[:size].reshape(n_feat, k).copy()
        self.intercept_ = res.x[size:].copy() if self.fit_intercept else zero_b
        self.candidates_ = y
        self.bins_ = _bins(self.bins, k)
        self.n_features_in_ = n_feat
        self.n_iter_ = int(res.nit)
        self.converged_ = bool(res.success)
        self.loss_ = float(res.fun)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Compatibility ``F(x, Y_c)`` of every row with every candidate, shape (N, C)."""
        check_is_fitted(self, "coef_")
        x = _check_x(X, self.n_features_in_)
        return (x @ self.coef_ + self.intercept_) @ self.candidates_.T

    def predict_distribution(self, X: np.ndarray) -> np.ndarray:
        """Predicted label distributions.

        Parameters
        ----------
        X : array-like of shape (N, F)

        Returns
        -------
        ndarray of shape (N, K), float64
            A candidate (``decode="argmax"``) or a mixture of candidates (``"mean"``).
        """
        f = self.decision_function(X)
        if self.decode == "mean":
            q = softmax(f / float(self.temperature), axis=1)
            return q @ self.candidates_
        return self.candidates_[np.argmax(f, axis=1)]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Expectation of the predicted distribution on ``bins_``, shape (N,)."""
        return self.predict_distribution(X) @ self.bins_
