"""LBP texture features: multi-radius uniform LBP block histograms and blocked LBP (BLBP).

Papers:

* T. Ojala, M. Pietikainen, T. Maenpaa, "Multiresolution gray-scale and rotation invariant
  texture classification with local binary patterns", IEEE TPAMI 24(7), 2002 - the LBP_{P,R}
  operator and its rotation-invariant uniform patterns (Eq. 9 there, ``method="uniform"``).
* T. Ahonen, A. Hadid, M. Pietikainen, "Face description with local binary patterns", IEEE TPAMI
  28(12), 2006 - a face is described by the concatenated LBP histograms of a grid of regions.
* B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and
  beautification models", Pattern Analysis and Applications 21(2), 2018, and its precursor
  G. Lu, X. Xiao, F. Chen, "A new face beauty prediction model based on blocked LBP", VISAPP
  2016 - the blocked LBP (BLBP) texture feature of the facial beauty prediction model.

How BLBP is read here (an interpretation; the papers' full text was not available to check the
details): the face region is divided into blocks, an LBP histogram is computed per block, and
the block histograms are concatenated, so that the texture descriptor keeps *where* on the face a
texture occurs. :class:`BlockedLBP` does this at several block sizes at once (``levels``: a
``g x g`` grid per level, e.g. 1x1, 2x2 and 4x4, like a spatial pyramid), each block histogram
normalised on its own; ``levels=(g,)`` gives the single-grid variant.

Other departures, and why:

* Pixels closer than ``ceil(R)`` to the image edge do not vote: their circular neighbourhood
  falls outside the image, where scikit-image pads with zeros, which would add spurious
  patterns along the border.
* Colour images are converted to luminance (ITU-R BT.601 weights, as OpenCV does); LBP is defined
  on grey levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["BlockedLBP", "LBPHistogram", "lbp_histogram", "lbp_n_bins", "to_gray_uint8"]

_METHODS = ("uniform", "nri_uniform", "default")
_NORMS = ("l1", "l2", None)


def lbp_n_bins(n_points: int, method: str = "uniform") -> int:
    """Histogram length of LBP codes of ``n_points`` neighbours under ``method``.

    ``"uniform"`` (rotation-invariant uniform): P + 2; ``"nri_uniform"``: P(P - 1) + 3;
    ``"default"``: 2^P.
    """
    if method == "uniform":
        return n_points + 2
    if method == "nri_uniform":
        return n_points * (n_points - 1) + 3
    if method == "default":
        return 2**n_points
    raise ValueError(f"method must be one of {_METHODS}, got {method!r}")


def to_gray_uint8(image: Any) -> np.ndarray:
    """One face crop as a 2-D uint8 grey image.

    Parameters
    ----------
    image : ndarray of shape (H, W), (H, W, 1) or (H, W, 3) (RGB), uint8

    Returns
    -------
    ndarray of shape (H, W), uint8
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0-255), got dtype {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        import cv2  # lazy: keep import light

        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    if img.ndim != 2:
        raise ValueError(f"an image must have shape (H, W) or (H, W, 3), got {img.shape}")
    return img


def _iter_images(X: Any) -> list[np.ndarray]:
    """A batch (N, H, W[, 3]) array or a sequence of images, as a list of grey images."""
    if isinstance(X, np.ndarray):
        if X.ndim not in (3, 4):
            raise ValueError(
                f"X must be a batch of images of shape (N, H, W) or (N, H, W, 3), got {X.shape}"
            )
        return [to_gray_uint8(img) for img in X]
    if isinstance(X, Sequence):
        return [to_gray_uint8(img) for img in X]
    raise ValueError(f"X must be an array of images or a sequence of images, got {type(X)}")


def _block_ids(shape: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """(H, W) map of each pixel's row-major block index on a ``grid`` of nearly equal blocks."""
    h, w = shape
    gy, gx = grid
    if h < gy or w < gx:
        raise ValueError(f"image of size {h}x{w} is smaller than the {gy}x{gx} block grid")
    rows = (np.arange(h) * gy) // h
    cols = (np.arange(w) * gx) // w
    return rows[:, None] * gx + cols[None, :]


def _lbp_codes(gray: np.ndarray, n_points: int, radius: float, method: str) -> np.ndarray:
    from skimage.feature import local_binary_pattern  # lazy: scikit-image is slow to import

    return local_binary_pattern(gray, n_points, radius, method=method).astype(np.int64)


def _block_histograms(
    codes: np.ndarray, n_bins: int, grid: tuple[int, int], border: int, norm: str | None
) -> np.ndarray:
    """Histograms of ``codes`` per block, shape (gy * gx, n_bins), border pixels excluded."""
    ids = _block_ids(codes.shape, grid)
    n_blocks = grid[0] * grid[1]
    valid = np.ones(codes.shape, dtype=bool)
    if border > 0:
        valid[:border] = valid[-border:] = False
        valid[:, :border] = valid[:, -border:] = False
    hist = (
        np.bincount((ids * n_bins + codes)[valid], minlength=n_blocks * n_bins)
        .reshape(n_blocks, n_bins)
        .astype(np.float64)
    )
    if norm == "l1":
        hist /= np.maximum(hist.sum(axis=1, keepdims=True), 1.0)
    elif norm == "l2":
        hist /= np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-12)
    return hist


def _check_common(n_points: int, radius: float, method: str, norm: str | None) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    if int(n_points) != n_points or n_points < 4 or (method == "default" and n_points > 16):
        raise ValueError(f"n_points must be an integer >= 4 (<= 16 for 'default'), got {n_points}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")


def lbp_histogram(
    image: Any,
    *,
    n_points: int = 8,
    radius: float = 1.0,
    grid: tuple[int, int] = (1, 1),
    method: str = "uniform",
    norm: str | None = "l1",
) -> np.ndarray:
    """Concatenated LBP_{P,R} histograms of the blocks of one image.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, 3), uint8
    n_points : int, default 8
        Number of circular neighbours P.
    radius : float, default 1.0
        Circle radius R in pixels.
    grid : (rows, cols), default (1, 1)
        Blocks the image is divided into (nearly equal sizes).
    method : {"uniform", "nri_uniform", "default"}, default "uniform"
        scikit-image LBP variant; "uniform" is rotation-invariant uniform LBP.
    norm : {"l1", "l2", None}, default "l1"
        Normalisation of each block histogram.

    Returns
    -------
    ndarray of shape (rows * cols * n_bins,), float64
        ``n_bins`` from :func:`lbp_n_bins`; blocks in row-major order.
    """
    _check_common(n_points, radius, method, norm)
    gray = to_gray_uint8(image)
    codes = _lbp_codes(gray, n_points, radius, method)
    grid = (int(grid[0]), int(grid[1]))
    return _block_histograms(
        codes, lbp_n_bins(n_points, method), grid, math.ceil(radius), norm
    ).ravel()


def _per_radius_points(n_points: int | Sequence[int], radii: Sequence[float]) -> list[int]:
    if isinstance(n_points, int | np.integer):
        return [int(n_points)] * len(radii)
    pts = [int(p) for p in n_points]
    if len(pts) != len(radii):
        raise ValueError(f"n_points has {len(pts)} entries but there are {len(radii)} radii")
    return pts


class _LBPBase(TransformerMixin, BaseEstimator):
    """Shared validation and plumbing of the LBP transformers (stateless)."""

    def _grids(self) -> list[tuple[int, int]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _scales(self) -> list[tuple[int, float]]:
        radii = list(self.radii)  # type: ignore[attr-defined]
        if not radii:
            raise ValueError("radii must not be empty")
        pts = _per_radius_points(self.n_points, radii)  # type: ignore[attr-defined]
        for p, r in zip(pts, radii, strict=True):
            _check_common(p, r, self.method, self.norm)  # type: ignore[attr-defined]
        return list(zip(pts, [float(r) for r in radii], strict=True))

    @property
    def n_features_out(self) -> int:
        """Length of the output vector."""
        n_blocks = sum(gy * gx for gy, gx in self._grids())
        return n_blocks * sum(lbp_n_bins(p, self.method) for p, _ in self._scales())  # type: ignore[attr-defined]

    def fit(self, X: Any, y: Any = None) -> _LBPBase:
        """Validate parameters; returns ``self`` (nothing is learned)."""
        self._scales()
        self._grids()
        self.n_features_out_ = self.n_features_out
        return self

    def transform(self, X: Any) -> np.ndarray:
        """LBP features of a batch of face crops.

        Parameters
        ----------
        X : ndarray of shape (N, H, W) or (N, H, W, 3), uint8, or a sequence of such images
            (which may differ in size)

        Returns
        -------
        ndarray of shape (N, n_features_out), float64
        """
        scales = self._scales()
        grids = self._grids()
        images = _iter_images(X)
        out = np.empty((len(images), self.n_features_out))
        for i, gray in enumerate(images):
            parts = []
            for p, r in scales:
                codes = _lbp_codes(gray, p, r, self.method)  # type: ignore[attr-defined]
                n_bins = lbp_n_bins(p, self.method)  # type: ignore[attr-defined]
                for grid in grids:
                    h = _block_histograms(codes, n_bins, grid, math.ceil(r), self.norm)  # type: ignore[attr-defined]
                    parts.append(h.ravel())
            out[i] = np.concatenate(parts)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``lbp_p{P}_r{R}_g{rows}x{cols}_b{block}_{bin}``, in output order."""
        names = []
        for p, r in self._scales():
            for gy, gx in self._grids():
                for b in range(gy * gx):
                    names += [
                        f"lbp_p{p}_r{r:g}_g{gy}x{gx}_b{b}_{k}"
                        for k in range(lbp_n_bins(p, self.method))  # type: ignore[attr-defined]
                    ]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class LBPHistogram(_LBPBase):
    """Multi-radius LBP block histograms of face crops (Ahonen et al. face descriptor).

    For every radius, LBP_{P,R} codes are computed on the grey image, the image is divided into
    a ``grid`` of blocks and each block's code histogram is normalised; all histograms are
    concatenated (radius-major, then block, then bin).

    Parameters
    ----------
    radii : sequence of float, default (1, 2, 3)
        Radii R.
    n_points : int or sequence of int, default 8
        Neighbours P, one for all radii or one per radius.
    grid : (rows, cols), default (4, 4)
        Blocks per image.
    method : {"uniform", "nri_uniform", "default"}, default "uniform"
    norm : {"l1", "l2", None}, default "l1"
        Per-block histogram normalisation.

    Notes
    -----
    Output dimension: ``rows * cols * sum_R n_bins(P_R)``, e.g. 4 * 4 * 3 * 10 = 480 with the
    defaults (uniform LBP has P + 2 bins).
    """

    def __init__(
        self,
        radii: Sequence[float] = (1, 2, 3),
        n_points: int | Sequence[int] = 8,
        grid: tuple[int, int] = (4, 4),
        method: str = "uniform",
        norm: str | None = "l1",
    ) -> None:
        self.radii = radii
        self.n_points = n_points
        self.grid = grid
        self.method = method
        self.norm = norm

    def _grids(self) -> list[tuple[int, int]]:
        gy, gx = (int(v) for v in self.grid)
        if gy < 1 or gx < 1:
            raise ValueError(f"grid must be two positive integers, got {self.grid!r}")
        return [(gy, gx)]


class BlockedLBP(_LBPBase):
    """Blocked LBP (BLBP): LBP histograms of the face divided into blocks at several sizes.

    See the module notes for how the paper's BLBP is interpreted. For each radius and each level
    ``g`` in ``levels`` the image is divided into ``g x g`` blocks; every block contributes its
    own normalised LBP histogram.

    Parameters
    ----------
    levels : sequence of int, default (1, 2, 4)
        Grid sizes; ``(g,)`` gives a single ``g x g`` grid.
    radii : sequence of float, default (1, 2)
    n_points : int or sequence of int, default 8
    method : {"uniform", "nri_uniform", "default"}, default "uniform"
    norm : {"l1", "l2", None}, default "l1"

    Notes
    -----
    Output dimension: ``sum_g g^2 * sum_R n_bins(P_R)``, e.g. (1 + 4 + 16) * 2 * 10 = 420 with
    the defaults.
    """

    def __init__(
        self,
        levels: Sequence[int] = (1, 2, 4),
        radii: Sequence[float] = (1, 2),
        n_points: int | Sequence[int] = 8,
        method: str = "uniform",
        norm: str | None = "l1",
    ) -> None:
        self.levels = levels
        self.radii = radii
        self.n_points = n_points
        self.method = method
        self.norm = norm

    def _grids(self) -> list[tuple[int, int]]:
        levels = [int(g) for g in self.levels]
        if not levels or min(levels) < 1:
            raise ValueError(f"levels must be positive integers, got {self.levels!r}")
        return [(g, g) for g in levels]
