"""Evaluation metrics of the heads: regression, cumulative score and label distributions.

* :func:`regression_metrics` - Pearson correlation (PC), MAE and RMSE, the attractiveness
  literature's three figures (e.g. Xie et al., "SCUT-FBP5500", ICPR 2018).
* :func:`cs_at` - the cumulative score CS(l) of age estimation: the share of predictions whose
  absolute error is at most ``l`` years (X. Geng, Z.-H. Zhou, K. Smith-Miles, "Automatic Age
  Estimation Based on Facial Aging Patterns", IEEE TPAMI 29(12), 2007).
* The six label-distribution measures of X. Geng, "Label Distribution Learning", IEEE TKDE
  28(7), 2016, Table 2: distances :func:`chebyshev`, :func:`clark`, :func:`canberra`,
  :func:`kl_divergence` (lower is better) and similarities :func:`cosine`,
  :func:`intersection` (higher is better); :func:`ldl_metrics` gives their means over rows.

Departures from the paper's formulas, for numerical safety:

* Clark and Canberra: a label where both distributions are 0 contributes 0 (the paper's
  ``0 / 0`` term).
* KL: ``sum_j p_j ln((p_j + eps) / (q_j + eps))`` with ``eps = 1e-10`` (:data:`KL_EPS`), so a
  predicted 0 where the truth is positive gives a large finite value (about ``p_j * 23``) rather
  than infinity, and a true 0 contributes 0. Identical distributions still give exactly 0.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "KL_EPS",
    "LDL_METRICS",
    "canberra",
    "chebyshev",
    "clark",
    "cosine",
    "cs_at",
    "intersection",
    "kl_divergence",
    "ldl_metrics",
    "regression_metrics",
]

#: The epsilon of :func:`kl_divergence`.
KL_EPS = 1e-10


# -- regression ---------------------------------------------------------------------------------
def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Pearson correlation, MAE and RMSE of predictions.

    Parameters
    ----------
    y, pred : array-like of shape (N,)
        Targets and predictions.

    Returns
    -------
    dict with keys ``pc``, ``mae``, ``rmse``
        ``pc`` is NaN when ``y`` or ``pred`` is constant.
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


def cs_at(y: np.ndarray, pred: np.ndarray, years: float = 5) -> float:
    """Cumulative score: the share of predictions with ``|pred - y| <= years``.

    Parameters
    ----------
    y, pred : array-like of shape (N,)
        True and predicted ages (any unit; ``years`` is in the same unit).
    years : float, default 5
        The error threshold ``l`` of CS(l).

    Returns
    -------
    float in [0, 1]
    """
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if y.shape != pred.shape or y.size == 0:
        raise ValueError(
            f"y and pred must have the same non-empty shape, got {y.shape}, {pred.shape}"
        )
    return float(np.mean(np.abs(pred - y) <= years))


# -- label distributions --------------------------------------------------------------------------
def _pair(p_true: np.ndarray, p_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_true, dtype=np.float64)
    q = np.asarray(p_pred, dtype=np.float64)
    if p.shape != q.shape or p.ndim not in (1, 2) or p.shape[-1] == 0:
        raise ValueError(
            f"p_true and p_pred must have the same shape (L,) or (N, L), got {p.shape}, {q.shape}"
        )
    if (p < 0).any() or (q < 0).any():
        raise ValueError("label distributions must be non-negative")
    return p, q


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def chebyshev(p_true: np.ndarray, p_pred: np.ndarray) -> np.ndarray:
    """Chebyshev distance ``max_j |p_j - q_j|`` (lower is better).

    Parameters
    ----------
    p_true, p_pred : array-like of shape (L,) or (N, L)
        True and predicted distributions over L labels (rows sum to 1).

    Returns
    -------
    ndarray of shape () or (N,)
        One value per row.
    """
    p, q = _pair(p_true, p_pred)
    return np.max(np.abs(p - q), axis=-1)


def clark(p_true: np.ndarray, p_pred: np.ndarray) -> np.ndarray:
    """Clark distance ``sqrt(sum_j (p_j - q_j)^2 / (p_j + q_j)^2)`` (lower is better).

    Parameters and returns as :func:`chebyshev`; at most ``sqrt(L)``.
    """
    p, q = _pair(p_true, p_pred)
    return np.sqrt(np.sum(_safe_ratio((p - q) ** 2, (p + q) ** 2), axis=-1))


def canberra(p_true: np.ndarray, p_pred: np.ndarray) -> np.ndarray:
    """Canberra distance ``sum_j |p_j - q_j| / (p_j + q_j)`` (lower is better).

    Parameters and returns as :func:`chebyshev`; at most ``L``.
    """
    p, q = _pair(p_true, p_pred)
    return np.sum(_safe_ratio(np.abs(p - q), p + q), axis=-1)


def kl_divergence(p_true: np.ndarray, p_pred: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """Kullback-Leibler divergence ``sum_j p_j ln((p_j + eps) / (q_j + eps))`` (lower is better).

    Parameters
    ----------
    p_true, p_pred : array-like of shape (L,) or (N, L)
    eps : float, default :data:`KL_EPS`
        Added inside the logarithm (see the module docstring).

    Returns
    -------
    ndarray of shape () or (N,)
    """
    p, q = _pair(p_true, p_pred)
    return np.sum(p * (np.log(p + eps) - np.log(q + eps)), axis=-1)


def cosine(p_true: np.ndarray, p_pred: np.ndarray) -> np.ndarray:
    """Cosine similarity ``sum_j p_j q_j / (||p|| ||q||)`` (higher is better, at most 1).

    Parameters and returns as :func:`chebyshev`; 0 for an all-zero row.
    """
    p, q = _pair(p_true, p_pred)
    norm = np.linalg.norm(p, axis=-1) * np.linalg.norm(q, axis=-1)
    return _safe_ratio(np.sum(p * q, axis=-1), norm)


def intersection(p_true: np.ndarray, p_pred: np.ndarray) -> np.ndarray:
    """Intersection similarity ``sum_j min(p_j, q_j)`` (higher is better, at most 1).

    Parameters and returns as :func:`chebyshev`.
    """
    p, q = _pair(p_true, p_pred)
    return np.sum(np.minimum(p, q), axis=-1)


#: The measures of :func:`ldl_metrics`, in Geng's order (four distances, two similarities).
LDL_METRICS = {
    "chebyshev": chebyshev,
    "clark": clark,
    "canberra": canberra,
    "kl": kl_divergence,
    "cosine": cosine,
    "intersection": intersection,
}


def ldl_metrics(p_true: np.ndarray, p_pred: np.ndarray) -> dict[str, float]:
    """Geng's six label-distribution measures, each averaged over rows.

    Parameters
    ----------
    p_true, p_pred : array-like of shape (N, L) or (L,)
        True and predicted distributions.

    Returns
    -------
    dict
        Keys ``chebyshev``, ``clark``, ``canberra``, ``kl`` (distances, lower is better),
        ``cosine``, ``intersection`` (similarities, higher is better).
    """
    return {name: float(np.mean(fn(p_true, p_pred))) for name, fn in LDL_METRICS.items()}
