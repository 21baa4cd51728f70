"""PCANet: two stages of learned PCA filters, binary hashing and block-wise histograms.

Paper: T.-H. Chan, K. Jia, S. Gao, J. Lu, Z. Zeng, Y. Ma, "PCANet: A Simple Deep Learning
Baseline for Image Classification?", IEEE Transactions on Image Processing 24(12):5017-5032,
2015, Sect. II (PCANet architecture). Used as a
texture feature in B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction
and beautification models", Pattern Analysis and Applications 21(2), 2018.

Algorithm (as implemented):

1. Stage 1 (Eqs. 1-3): collect ``k x k`` patches of the grey training images, remove each patch's
   mean, and take the ``L1`` leading eigenvectors of the patch scatter matrix ``X X^T`` as filters.
2. Stage 2 (Eqs. 4-6): filter every image with each stage-1 filter (zero-padded, same size),
   collect mean-removed patches of all ``N * L1`` outputs and take the ``L2`` leading eigenvectors.
3. Output (Eqs. 7-8): for each stage-1 output ``l``, filter it with the ``L2`` stage-2 filters,
   binarise (``> 0``, see below) and combine the bits into ``T_l = sum_m 2^m H(O_lm)`` (first
   filter = least significant bit), an integer map in ``[0, 2^L2)``. Split ``T_l`` into blocks
   of ``block_size`` with the given overlap ratio and take each block's ``2^L2``-bin histogram;
   the feature is the concatenation over ``l`` and blocks.

(Equation numbers follow Sect. II of the paper - A: first stage, B: second stage, C: output
stage - as recalled, not checked against the PDF.)

Output dimension: ``L1 * n_blocks * 2^L2`` with
``n_blocks = (floor((H - bh) / sy) + 1) * (floor((W - bw) / sx) + 1)`` and stride
``s = max(1, round((1 - block_overlap) * b))``. For 64 x 64 crops, ``n_filters=(8, 8)`` and
non-overlapping 16 x 16 blocks: 8 * 16 * 256 = 32768. ``sparse_output=True`` returns a CSR matrix
(at most ``bh * bw`` non-zeros per 256-bin histogram).

Departures from the paper, and why:

* Filters are learned from at most ``max_patches`` patches per stage, drawn at random positions
  (seeded by ``random_state``) spread evenly over the images, instead of from every patch of every
  image: fitting on thousands of faces then stays cheap on a CPU, and the leading eigenvectors of
  a large random sample are close to those of all patches. Patches are taken where they fit inside
  the image (no zero-padded patches in the filter learning).
* Filtering is correlation (``cv2.filter2D``), not convolution: it is exactly the projection of
  each patch on the PCA filter that the learning step defines (convolution would use the flipped
  filters, an equivalent filter bank).
* The filters are mean-free (the patch means were removed, so every eigenvector with a non-zero
  eigenvalue is orthogonal to the constant patch), so filtering raw images equals filtering
  mean-removed patches.
* Each eigenvector's sign is fixed (largest-magnitude entry positive) so that the binary codes are
  reproducible across LAPACK builds; PCA defines filters only up to sign.
* Binarisation is ``O > 1e-6`` rather than ``O > 0`` (:data:`BINARISE_EPS`): in flat regions
  (plain backgrounds) the zero-sum filters give exactly zero up to float32 rounding, and the
  rounding noise would otherwise turn into arbitrary, platform-dependent bits.
* Colour images are converted to luminance; ``uint8`` images are scaled to [0, 1].
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

__all__ = ["BINARISE_EPS", "PCANet", "pca_filters"]

logger = logging.getLogger(__name__)

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: A stage-2 response counts as positive above this (images are on a [0, 1] scale); float32
#: rounding noise in flat regions then hashes to 0 instead of to random bits.
BINARISE_EPS = 1e-6


def _to_gray_float(X: Any) -> np.ndarray:
    """A batch of images as float32 grey images of shape (N, H, W)."""
    arr = np.asarray(X)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and arr.shape[3] == 3:
        scale = 1.0 / 255.0 if arr.dtype == np.uint8 else 1.0
        return (arr.astype(np.float32) @ _LUMA) * np.float32(scale)
    if arr.ndim != 3:
        raise ValueError(
            f"X must be a batch of images of shape (N, H, W) or (N, H, W, 3), got {arr.shape}"
        )
    if not (
        np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)
    ):
        raise ValueError(f"images must be real-valued, got dtype {arr.dtype}")
    out = arr.astype(np.float32)
    if arr.dtype == np.uint8:
        out *= np.float32(1.0 / 255.0)
    if not np.all(np.isfinite(out)):
        raise ValueError("images contain NaN or inf")
    return out


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    import cv2  # lazy: keep import light

    return cv2.filter2D(img, cv2.CV_32F, kernel, borderType=cv2.BORDER_CONSTANT)


def pca_filters(
    scatter: np.ndarray, n_filters: int, patch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Leading eigenvectors of a patch scatter matrix, reshaped to filters.

    Parameters
    ----------
    scatter : ndarray of shape (k*k, k*k)
        ``sum_i x_i x_i^T`` over mean-removed patches ``x_i``.
    n_filters : int
        Number of filters L.
    patch_size : int
        k.

    Returns
    -------
    filters : ndarray of shape (L, k, k), float32
        Orthonormal filters (as flattened vectors), largest eigenvalue first, sign fixed so the
        largest-magnitude entry of each is positive.
    eigenvalues : ndarray of shape (L,), float64
    """
    vals, vecs = np.linalg.eigh(scatter)
    order = np.argsort(vals)[::-1][:n_filters]
    vals = vals[order]
    vecs = vecs[:, order].T  # (L, k*k)
    pivot = np.argmax(np.abs(vecs), axis=1)
    signs = np.sign(vecs[np.arange(len(vecs)), pivot])
    vecs = vecs * np.where(signs == 0, 1.0, signs)[:, None]
    return vecs.reshape(-1, patch_size, patch_size).astype(np.float32), vals


def _sample_patches(
    img: np.ndarray, k: int, n: int | None, rng: np.random.RandomState
) -> np.ndarray:
    """Mean-removed k x k patches of ``img`` at ``n`` random valid positions (all if None)."""
    windows = np.lib.stride_tricks.sliding_window_view(img, (k, k))  # (H-k+1, W-k+1, k, k)
    ny, nx = windows.shape[:2]
    total = ny * nx
    take_all = n is None or n >= total
    flat = np.arange(total) if take_all else rng.choice(total, size=n, replace=False)
    patches = windows[flat // nx, flat % nx].reshape(len(flat), k * k).astype(np.float64)
    return patches - patches.mean(axis=1, keepdims=True)


class PCANet(TransformerMixin, BaseEstimator):
    """Two-stage PCANet feature extractor for grey or RGB face crops.

    Parameters
    ----------
    n_filters : (L1, L2), default (8, 8)
        Filters in stage 1 and stage 2 (L2 <= 16; the histograms have 2^L2 bins).
    patch_size : int, default 5
        Odd filter / patch side k.
    block_size : (bh, bw), default (16, 16)
        Histogram block size in pixels.
    block_overlap : float, default 0.0
        Overlap ratio of neighbouring blocks in [0, 1); the paper uses 0 for faces and 0.5 for
        other images.
    max_patches : int or None, default 100_000
        Patches sampled per stage to learn the filters (None: every patch).
    sparse_output : bool, default False
        Return a ``scipy.sparse`` CSR matrix instead of a dense array.
    random_state : int, RandomState or None, default None
        Seeds the patch sampling.

    Attributes
    ----------
    filters1_ : ndarray of shape (L1, k, k), float32
    filters2_ : ndarray of shape (L2, k, k), float32
    eigenvalues1_, eigenvalues2_ : ndarray of shape (L1,), (L2,)
    image_shape_ : (H, W)
        Size of the training images; ``transform`` requires the same size.
    n_blocks_ : int
        Histogram blocks per stage-1 output.
    n_features_out_ : int
        ``L1 * n_blocks_ * 2^L2``.
    """

    def __init__(
        self,
        n_filters: tuple[int, int] = (8, 8),
        patch_size: int = 5,
        block_size: tuple[int, int] = (16, 16),
        block_overlap: float = 0.0,
        max_patches: int | None = 100_000,
        sparse_output: bool = False,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_filters = n_filters
        self.patch_size = patch_size
        self.block_size = block_size
        self.block_overlap = block_overlap
        self.max_patches = max_patches
        self.sparse_output = sparse_output
        self.random_state = random_state

    # -- parameters and geometry ---------------------------------------------------------------
    def _check_params(self, shape: tuple[int, int]) -> tuple[int, int, int]:
        l1, l2 = (int(v) for v in self.n_filters)
        k = int(self.patch_size)
        if k < 1 or k % 2 == 0:
            raise ValueError(f"patch_size must be a positive odd integer, got {self.patch_size!r}")
        if not 1 <= l1 <= k * k or not 1 <= l2 <= min(k * k, 16):
            raise ValueError(
                f"n_filters must be (L1, L2) with 1 <= L1 <= k*k and 1 <= L2 <= min(k*k, 16), "
                f"got {self.n_filters!r}"
            )
        if not 0.0 <= float(self.block_overlap) < 1.0:
            raise ValueError(f"block_overlap must be in [0, 1), got {self.block_overlap!r}")
        if self.max_patches is not None and int(self.max_patches) < l1:
            raise ValueError(f"max_patches must be >= L1 or None, got {self.max_patches!r}")
        h, w = shape
        bh, bw = (int(v) for v in self.block_size)
        if h < k or w < k:
            raise ValueError(f"images of size {h}x{w} are smaller than patch_size={k}")
        if not (1 <= bh <= h and 1 <= bw <= w):
            raise ValueError(f"block_size {self.block_size!r} does not fit in {h}x{w} images")
        return l1, l2, k

    def _block_index(self, shape: tuple[int, int]) -> np.ndarray:
        """Flat pixel indices of every block, shape (n_blocks, bh * bw)."""
        h, w = shape
        bh, bw = (int(v) for v in self.block_size)
        sy = max(1, round((1.0 - float(self.block_overlap)) * bh))
        sx = max(1, round((1.0 - float(self.block_overlap)) * bw))
        ys = np.arange(0, h - bh + 1, sy)
        xs = np.arange(0, w - bw + 1, sx)
        within = (np.arange(bh)[:, None] * w + np.arange(bw)[None, :]).ravel()
        starts = (ys[:, None] * w + xs[None, :]).ravel()
        return starts[:, None] + within[None, :]

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> PCANet:
        """Learn the two filter banks from ``X``.

        Parameters
        ----------
        X : array-like of shape (N, H, W) or (N, H, W, 3)
            Face crops of one size; uint8 (scaled to [0, 1]) or float.
        y : ignored

        Returns
        -------
        self
        """
        imgs = _to_gray_float(X)
        n = imgs.shape[0]
        if n == 0:
            raise ValueError("cannot fit PCANet on zero images")
        shape = (imgs.shape[1], imgs.shape[2])
        l1, l2, k = self._check_params(shape)
        rng = check_random_state(self.random_state)
        per1 = None if self.max_patches is None else max(1, math.ceil(self.max_patches / n))
        per2 = None if self.max_patches is None else max(1, math.ceil(self.max_patches / (n * l1)))

        scatter = np.zeros((k * k, k * k))
        n1 = 0
        for img in imgs:
            p = _sample_patches(img, k, per1, rng)
            scatter += p.T @ p
            n1 += len(p)
        self.filters1_, self.eigenvalues1_ = pca_filters(scatter / n1, l1, k)

        scatter = np.zeros((k * k, k * k))
        n2 = 0
        for img in imgs:
            for f in self.filters1_:
                p = _sample_patches(_filter(img, f), k, per2, rng)
                scatter += p.T @ p
                n2 += len(p)
        self.filters2_, self.eigenvalues2_ = pca_filters(scatter / n2, l2, k)

        self.image_shape_ = shape
        self.n_blocks_ = int(self._block_index(shape).shape[0])
        self.n_features_out_ = l1 * self.n_blocks_ * 2**l2
        logger.debug(
            "PCANet fitted on %d images (%d + %d patches), %d output features",
            n,
            n1,
            n2,
            self.n_features_out_,
        )
        return self

    # -- features ---------------------------------------------------------------------------------
    def _codes(self, img: np.ndarray) -> np.ndarray:
        """Hashed stage-2 codes, shape (L1, H*W), int64 in [0, 2^L2)."""
        l2 = len(self.filters2_)
        codes = np.empty((len(self.filters1_), img.size), dtype=np.int64)
        for i, f1 in enumerate(self.filters1_):
            o1 = _filter(img, f1)
            t = np.zeros(img.shape, dtype=np.int64)
            for m in range(l2):
                t |= (_filter(o1, self.filters2_[m]) > BINARISE_EPS).astype(np.int64) << m
            codes[i] = t.ravel()
        return codes

    def transform(self, X: Any) -> np.ndarray | sparse.csr_matrix:
        """PCANet features of ``X``.

        Parameters
        ----------
        X : array-like of shape (N, H, W) or (N, H, W, 3), the training image size

        Returns
        -------
        ndarray of shape (N, n_features_out_), float32, or CSR matrix if ``sparse_output``
            Block histograms (counts), ordered stage-1 filter, then block (row-major), then code.
        """
        check_is_fitted(self, "filters2_")
        imgs = _to_gray_float(X)
        if (imgs.shape[1], imgs.shape[2]) != tuple(self.image_shape_):
            raise ValueError(
                f"PCANet was fitted on {self.image_shape_[0]}x{self.image_shape_[1]} images, "
                f"got {imgs.shape[1]}x{imgs.shape[2]}"
            )
        blocks = self._block_index(self.image_shape_)
        n_blocks, n_bins = blocks.shape[0], 2 ** len(self.filters2_)
        l1 = len(self.filters1_)
        offsets = (
            np.arange(l1)[:, None, None] * n_blocks + np.arange(n_blocks)[None, :, None]
        ) * n_bins
        rows = []
        for img in imgs:
            codes = self._codes(img)[:, blocks]  # (L1, n_blocks, bh*bw)
            hist = np.bincount((codes + offsets).ravel(), minlength=self.n_features_out_)
            rows.append(sparse.csr_matrix(hist.astype(np.float32)) if self.sparse_output else hist)
        if self.sparse_output:
            if not rows:
                return sparse.csr_matrix((0, self.n_features_out_), dtype=np.float32)
            return sparse.vstack(rows, format="csr")
        if not rows:
            return np.zeros((0, self.n_features_out_), dtype=np.float32)
        return np.stack(rows).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``pcanet_f{l}_b{block}_{code}``, shape (n_features_out_,)."""
        check_is_fitted(self, "filters2_")
        n_bins = 2 ** len(self.filters2_)
        return np.asarray(
            [
                f"pcanet_f{i}_b{b}_{c}"
                for i in range(len(self.filters1_))
                for b in range(self.n_blocks_)
                for c in range(n_bins)
            ],
            dtype=object,
        )
