"""Label distributions from labels.

A single label (an age, a mean rating) becomes a distribution by label enhancement: a Gaussian
around it discretised on the bins (B. Gao et al., "Deep Label Distribution Learning With Label
Ambiguity", IEEE TIP 2017, Eq. 1: ``p_k ∝ exp(-(b_k - y)^2 / (2 sigma^2))``, normalised over the
bins). Where individual ratings exist, their histogram is the distribution itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["gaussian_label_distribution", "probability_higher", "rating_histograms"]


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
    logp = -((b - v) ** 2) / (2.0 * sigma**2)
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


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
