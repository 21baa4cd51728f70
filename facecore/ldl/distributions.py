"""Label distributions from labels, and the operations on predicted distributions.

A single label (an age, a mean rating) becomes a distribution by label enhancement: a Gaussian
around it discretised on the bins (B. Gao et al., "Deep Label Distribution Learning With Label
Ambiguity", IEEE TIP 2017, Eq. 1: ``p_k ∝ exp(-(b_k - y)^2 / (2 sigma^2))``, normalised over the
bins). Where individual ratings exist, their histogram is the distribution itself.

A predicted distribution is translated along its bins (:func:`shift_distribution`,
:func:`move_distributions`), widened (:func:`temper`) and corrected by a monotone map of its
expectation (:func:`calibrate`). Calibration departs from Gao et al.: the isotonic map, fitted on
cross-validated predictions, corrects the regression to the mean at the ends of the range, and
the distribution is translated to the calibrated value so that value and distribution agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "calibrate",
    "gaussian_label_distribution",
    "move_distributions",
    "probability_higher",
    "rating_histograms",
    "shift_distribution",
    "temper",
]


def gaussian_label_distribution(
    values: Sequence[float] | np.ndarray, bins: Sequence[float] | np.ndarray, sigma: float
) -> np.ndarray:
    """Discretised Gaussians around ``values`` on ``bins``.

    Parameters
    ----------
    values : array-like of shape (N,)
    bins : array-like of shape (K,)
        Increasing bin values (e.g. ages 0..100).
    sigma : float
        Standard deviation, in the bins' unit.

    Returns
    -------
    ndarray of shape (N, K), float32
        Rows sum to 1.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    v = np.asarray(values, dtype=np.float64)[:, None]
    b = np.asarray(bins, dtype=np.float64)[None, :]
    from scipy.special import softmax  # scipy.special takes 0.2 s to import: on first use

    return softmax(-((b - v) ** 2) / (2.0 * sigma**2), axis=1).astype(np.float32)


def rating_histograms(
    image_index: np.ndarray, ratings: np.ndarray, n_images: int, bins: Sequence[float]
) -> np.ndarray:
    """Histograms of individual ratings per image, normalised.

    Parameters
    ----------
    image_index : ndarray of shape (R,), int
        Image of each rating.
    ratings : ndarray of shape (R,)
        Rating values; each is counted in its nearest bin.
    n_images : int
    bins : sequence of float, length K

    Returns
    -------
    ndarray of shape (n_images, K), float32
        An image without ratings gets a row of NaN.
    """
    b = np.asarray(bins, dtype=np.float64)
    nearest = np.abs(np.asarray(ratings, np.float64)[:, None] - b[None, :]).argmin(axis=1)
    counts = np.zeros((n_images, len(b)), dtype=np.float64)
    np.add.at(counts, (np.asarray(image_index, dtype=np.int64), nearest), 1.0)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts / total).astype(np.float32)


def probability_higher(first: np.ndarray, second: np.ndarray, ties: float = 0.5) -> float:
    """P(a rating drawn from ``first`` beats one drawn from ``second``), the two independent.

    ``sum_{p > q} first_p second_q`` (the preference probability of Ren & Geng, IJCAI 2017) plus
    ``ties`` times the probability of equal ratings (default half of it, so that
    ``probability_higher(a, b) + probability_higher(b, a) == 1``).

    Parameters
    ----------
    first, second : array-like of shape (K,)
        Distributions over the same increasing bins (each normalised here).
    ties : float in [0, 1], default 0.5
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two distributions over the same bins, got {a.shape}, {b.shape}")
    if not 0.0 <= ties <= 1.0:
        raise ValueError(f"ties must be in [0, 1], got {ties}")
    a, b = a / a.sum(), b / b.sum()
    below = np.concatenate([[0.0], np.cumsum(b)[:-1]])  # P(second < bin p)
    return float(a @ below + ties * (a @ b))


def shift_distribution(p: np.ndarray, bins: np.ndarray, delta: float) -> np.ndarray:
    """``p`` translated by ``delta`` along evenly spaced ``bins``.

    Each bin's mass moves to ``b + delta`` and is split between the two bins around it (so the
    mean moves by exactly ``delta``); mass pushed past an end stays in the end bin.
    """
    if delta == 0.0:
        return p
    b = np.asarray(bins, dtype=np.float64)
    step = float(b[1] - b[0])
    pos = np.clip(np.arange(len(b)) + delta / step, 0.0, len(b) - 1.0)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    hi = np.minimum(lo + 1, len(b) - 1)
    out = np.zeros(len(b), dtype=np.float64)
    np.add.at(out, lo, p * (1.0 - frac))
    np.add.at(out, hi, p * frac)
    return out


def move_distributions(probs: np.ndarray, bins: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row of ``probs`` (N, K) translated (:func:`shift_distribution`) from its mean to
    ``values[i]``; (N, K) float64."""
    p = np.asarray(probs, dtype=np.float64)
    if not len(p):
        return p
    b = np.asarray(bins, dtype=np.float64)
    return np.stack(
        [shift_distribution(pi, b, float(v - pi @ b)) for pi, v in zip(p, values, strict=True)]
    )


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / temperature)`` row-wise: the distributions of logits divided by
    ``temperature`` (> 1 widens them)."""
    p = np.asarray(probs, dtype=np.float64)
    if temperature == 1.0:
        return p
    from scipy.special import softmax

    return softmax(np.log(np.clip(p, 1e-300, None)) / temperature, axis=1)


def calibrate(
    probs: np.ndarray,
    bins: Sequence[float] | np.ndarray,
    temperature: float = 1.0,
    knots: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Values and distributions of predicted distributions, corrected.

    The distributions are tempered (:func:`temper`); without ``knots`` the value is their
    expectation. With knots ``(x, y)`` of a monotone piecewise-linear map, the value is the map
    of the expectation and each distribution is translated by the change
    (:func:`shift_distribution`), so its mean is the value except where mass reaches an end bin.

    Returns
    -------
    (values (N,), probabilities (N, K)), float64
    """
    b = np.asarray(bins, dtype=np.float64)
    p = temper(probs, temperature)
    values = p @ b
    if knots is None:
        return values, p
    target = np.interp(values, np.asarray(knots[0]), np.asarray(knots[1]))
    out = move_distributions(p, b, target)
    return target, out
