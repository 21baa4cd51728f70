"""Image deformation by moving least squares (MLS), on a coarse grid.

S. Schaefer, T. McPhail, J. Warren, "Image deformation using moving least squares", ACM
SIGGRAPH 2006 (ACM Trans. Graph. 25(3)), section 2, point handles. For a point ``v`` and control
points ``p_i`` that should move to ``q_i``:

* weights ``w_i = 1 / |p_i - v|^(2 alpha)`` (eq. 1's weights),
* weighted centroids ``p* = sum w_i p_i / sum w_i`` and ``q*`` (eq. 2), centred points
  ``p^_i = p_i - p*``, ``q^_i = q_i - q*``,
* the best transform ``M`` of ``sum w_i |p^_i M - q^_i|^2`` and ``f(v) = (v - p*) M + q*``:
  affine (eq. 3-5), similarity (eq. 6-7) or rigid (eq. 8-9, section 2.3).

The similarity and rigid forms are computed with points as complex numbers: ``M`` is then one
complex factor ``z = sum w_i conj(p^_i) q^_i / sum w_i |p^_i|^2`` (the paper's
``sum q^_i A_i / mu_s``), and the rigid form uses ``z / |z|``, which equals the paper's
``|v - p*| f_r(v) / |f_r(v)|`` (eq. 9): both are the rotation of the similarity solution.

Departures from the paper, and why
----------------------------------
* **Backward map.** The paper defines the forward map ``f`` (undeformed -> deformed). An image is
  resampled with the backward map (for each output pixel, where to read), so :func:`mls_warp`
  evaluates the MLS deformation of the reversed correspondence (``dst -> src``) at output
  positions. This is the usual choice for raster images; it interpolates the control points
  exactly (output pixel ``dst_i`` reads input pixel ``src_i``), and differs from the exact inverse
  of ``f`` elsewhere only by the difference between the two MLS fits.
* **Coarse grid.** The paper evaluates ``f`` at the vertices of a grid and fills the cells by
  bilinear interpolation (its section 2 "implementation" remark); here the grid step is the
  ``grid`` argument (10 px by default) and the dense map is interpolated bilinearly, then
  ``cv2.remap`` resamples the image. A 2000 x 2000 warp takes tens of milliseconds instead of the
  30-70 s of a dense per-pixel evaluation.
* :func:`mls_warp_region` warps one rectangle only, with fixed handles on its border and the
  map blended into the identity near it, so that everything outside is unchanged bit for bit
  (used for faces: the cost then follows the face's size, not the photo's).
* **Regularisation** (the paper assumes distinct, non-degenerate handles):

  - ``w_i = 1 / (|p_i - v|^(2 alpha) + eps)`` with ``eps = 1e-8`` px^2, so that a grid vertex on
    a control point gets a finite (very large) weight instead of a division by zero;
  - a ridge ``lam = ridge * sum_i w_i * s^2`` (``s^2`` the mean squared spread of the control
    points, ``ridge = 1e-9``) pulls the fitted ``M`` towards the identity:
    ``M = (P + lam I)^-1 (Q + lam I)`` for the affine form, ``z = (c + lam) / (mu + lam)`` for the
    others. Collinear handles (the affine moment matrix is singular) keep the identity across the
    line instead of collapsing the image onto it, and coincident handles (all ``p^_i = 0``) give
    ``M = I``: a pure translation by ``q* - p*``. For non-degenerate handles the effect is of
    relative size ``1e-9``.
  - Duplicated handles with different targets are averaged by the least squares, as the paper's
    formulas do; nothing becomes NaN or infinite.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

__all__ = ["MLS_KINDS", "mls_backward_map", "mls_deform", "mls_warp", "mls_warp_region"]

#: The three deformations of Schaefer et al. (2006), section 2.1-2.3.
MLS_KINDS = ("affine", "similarity", "rigid")

MLSKind = Literal["affine", "similarity", "rigid"]

_EPS = 1e-8  # px^2, added to the squared distances in the weights
_RIDGE = 1e-9  # relative ridge towards the identity transform
_CHUNK = 1 << 16  # evaluation points x control points per block (cache-sized)


def _check_points(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(src, dtype=np.float64)
    q = np.asarray(dst, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape != q.shape or len(p) < 1:
        raise ValueError(
            f"control points must be two (N, 2) arrays of equal shape, N >= 1; "
            f"got {p.shape} and {q.shape}"
        )
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("control points must be finite")
    return p, q


def _check_kind(kind: str) -> None:
    if kind not in MLS_KINDS:
        raise ValueError(f"kind must be one of {MLS_KINDS}, got {kind!r}")


def mls_deform(
    points: np.ndarray,
    src_points: np.ndarray,
    dst_points: np.ndarray,
    kind: MLSKind = "rigid",
    alpha: float = 1.0,
) -> np.ndarray:
    """The MLS deformation ``f`` of Schaefer et al. (2006), evaluated at ``points``.

    Parameters
    ----------
    points : array-like of shape (M, 2)
        Where to evaluate ``f``, ``(x, y)``.
    src_points, dst_points : array-like of shape (N, 2)
        Control points ``p_i`` and where they go, ``q_i``.
    kind : {"affine", "similarity", "rigid"}
        The class of the locally fitted transforms.
    alpha : float, default 1
        Exponent of the weights ``1 / |p_i - v|^(2 alpha)``.

    Returns
    -------
    ndarray of shape (M, 2), float64
        ``f(points)``; ``f(p_i) = q_i`` (up to the ``eps`` regularisation, ~1e-8 relative).

    Raises
    ------
    ValueError
        On wrong shapes, non-finite points, an unknown ``kind`` or ``alpha <= 0``.
    """
    _check_kind(kind)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    p, q = _check_points(src_points, dst_points)
    v = np.asarray(points, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2:
        raise ValueError(f"points must have shape (M, 2), got {v.shape}")
    # Centred on the handles' mean: the moments below subtract centroid terms, which loses
    # less precision on small numbers.
    origin = p.mean(0)
    p, q, v = p - origin, q - origin, v - origin
    spread = float((p**2).sum(1).mean()) + 1.0  # px^2; +1 keeps it positive for one handle
    out = np.empty_like(v)
    step = max(1, _CHUNK // len(p))
    for start in range(0, len(v), step):
        out[start : start + step] = _deform_block(
            v[start : start + step], p, q, kind, alpha, spread
        )
    return out + origin


def _deform_block(
    v: np.ndarray, p: np.ndarray, q: np.ndarray, kind: str, alpha: float, spread: float
) -> np.ndarray:
    """``f(v)`` for one block of points; ``p``, ``q`` and ``v`` already centred on mean(p)."""
    # Squared distances as |v|^2 + |p|^2 - 2 v.p (one matrix product), floored at 0.
    d2 = (v * v).sum(1)[:, None] + (p * p).sum(1)[None, :] - 2.0 * (v @ p.T)  # (M, N)
    np.maximum(d2, 0.0, out=d2)
    if alpha != 1.0:
        d2 **= alpha
    d2 += _EPS
    wn = np.reciprocal(d2, out=d2)
    wn /= wn.sum(1, keepdims=True)  # normalised weights, rows sum to 1
    # Every weighted moment of the centred points is a moment of the raw points minus the
    # centroid term (sum wn = 1), so one product of wn with per-handle columns gives them all:
    # sum wn p^ p^T = sum wn p p^T - p* p*^T, sum wn p^ q^T = sum wn p q^T - p* q*^T.
    px, py, qx, qy = p[:, 0], p[:, 1], q[:, 0], q[:, 1]
    cols = [px, py, qx, qy, px * px + py * py, px * qx + py * qy, px * qy - py * qx]
    if kind == "affine":
        cols += [px * px, px * py, py * py, px * qx, px * qy, py * qx, py * qy]
    mom = wn @ np.stack(cols, axis=1)  # (M, len(cols))
    psx, psy, qsx, qsy = mom[:, 0], mom[:, 1], mom[:, 2], mom[:, 3]
    vx, vy = v[:, 0] - psx, v[:, 1] - psy  # v - p*
    lam = _RIDGE * spread  # the ridge, in the units of the normalised weights
    if kind == "affine":
        a00 = mom[:, 7] - psx * psx + lam
        a01 = mom[:, 8] - psx * psy
        a11 = mom[:, 9] - psy * psy + lam
        b00 = mom[:, 10] - psx * qsx + lam
        b01 = mom[:, 11] - psx * qsy
        b10 = mom[:, 12] - psy * qsx
        b11 = mom[:, 13] - psy * qsy + lam
        det = a00 * a11 - a01 * a01
        # (v - p*) A^-1 B with A symmetric; A^-1 = [[a11, -a01], [-a01, a00]] / det.
        ux = (vx * a11 - vy * a01) / det
        uy = (vy * a00 - vx * a01) / det
        fx = ux * b00 + uy * b10
        fy = ux * b01 + uy * b11
    else:
        # mu = sum wn |p^|^2; c = sum wn conj(p^) q^ (real: p^.q^, imaginary: p^ x q^).
        mu = mom[:, 4] - (psx * psx + psy * psy) + lam
        cr = mom[:, 5] - (psx * qsx + psy * qsy) + lam
        ci = mom[:, 6] - (psx * qsy - psy * qsx)
        if kind == "similarity":
            zr, zi = cr / mu, ci / mu
        else:  # rigid: the rotation of the similarity solution
            norm = np.hypot(cr, ci)
            ok = norm > 0
            zr = np.where(ok, cr / np.where(ok, norm, 1.0), 1.0)
            zi = np.where(ok, ci / np.where(ok, norm, 1.0), 0.0)
        fx = zr * vx - zi * vy
        fy = zi * vx + zr * vy
    return np.stack([fx + qsx, fy + qsy], axis=1)


def mls_backward_map(
    shape: tuple[int, int],
    src_points: np.ndarray,
    dst_points: np.ndarray,
    kind: MLSKind = "rigid",
    grid: int = 10,
    alpha: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense backward map of the MLS warp that moves ``src_points`` to ``dst_points``.

    The MLS deformation ``dst -> src`` is evaluated on a grid of step ``grid`` pixels covering
    the image and interpolated bilinearly to every pixel.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the output image.
    src_points, dst_points : array-like of shape (N, 2)
        Control points in the input image and where they go in the output, ``(x, y)`` pixels.
    kind : {"affine", "similarity", "rigid"}
    grid : int, default 10
        Grid step in pixels (1 evaluates every pixel).
    alpha : float, default 1

    Returns
    -------
    map_x, map_y : ndarray of shape (height, width), float32
        For each output pixel, the input position to read (``cv2.remap``'s maps).
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    if int(grid) != grid or grid < 1:
        raise ValueError(f"grid must be a positive integer, got {grid}")
    grid = int(grid)
    if grid == 1:
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        verts = np.stack([gx.ravel(), gy.ravel()], axis=1)
        dense = mls_deform(verts, dst_points, src_points, kind=kind, alpha=alpha)
        dense = dense.reshape(h, w, 2).astype(np.float32)
        return dense[..., 0].copy(), dense[..., 1].copy()
    # Vertices at c + (j - 1) * grid, c = (grid - 1) / 2, from one step before pixel 0 to at least
    # one past the last pixel. cv2.resize by the factor ``grid`` (INTER_LINEAR, float weights)
    # samples the vertex array at (u + 0.5) / grid - 0.5, which is image position u - grid: the
    # dense map is the resized array from index ``grid`` on, bilinear between exact vertices.
    c = (grid - 1) / 2.0
    nx = int(np.ceil((w - 1 - c) / grid)) + 3
    ny = int(np.ceil((h - 1 - c) / grid)) + 3
    xs = c + (np.arange(nx) - 1.0) * grid
    ys = c + (np.arange(ny) - 1.0) * grid
    gx, gy = np.meshgrid(xs, ys)
    verts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    coarse = mls_deform(verts, dst_points, src_points, kind=kind, alpha=alpha)
    coarse = coarse.reshape(ny, nx, 2).astype(np.float32)
    dense = cv2.resize(coarse, (nx * grid, ny * grid), interpolation=cv2.INTER_LINEAR)
    dense = dense[grid : grid + h, grid : grid + w]
    return np.ascontiguousarray(dense[..., 0]), np.ascontiguousarray(dense[..., 1])


def mls_warp(
    image: np.ndarray,
    src_points: np.ndarray,
    dst_points: np.ndarray,
    kind: MLSKind = "rigid",
    grid: int = 10,
    alpha: float = 1.0,
) -> np.ndarray:
    """Warp ``image`` so that the content at ``src_points`` moves to ``dst_points``.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C)
        uint8 or float image.
    src_points, dst_points : array-like of shape (N, 2)
        Control points ``(x, y)`` in pixels of ``image``, and their targets.
    kind : {"affine", "similarity", "rigid"}, default "rigid"
        The MLS form (Schaefer et al. 2006, sections 2.1-2.3); rigid looks the most natural.
    grid : int, default 10
        Step in pixels of the grid the deformation is evaluated on (see the module docstring).
    alpha : float, default 1
        Weight exponent.

    Returns
    -------
    ndarray
        The warped image, same shape and dtype as ``image``; pixels read from outside the image
        repeat the border.

    Examples
    --------
    >>> img = np.zeros((64, 64), np.uint8)
    >>> mls_warp(img, [[10, 10], [50, 50]], [[12, 10], [50, 50]]).shape
    (64, 64)
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {img.shape}")
    map_x, map_y = mls_backward_map(img.shape[:2], src_points, dst_points, kind, grid, alpha)
    out = cv2.remap(
        img, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if out.ndim == 2 and img.ndim == 3:  # cv2 drops a single channel axis
        out = out[..., None]
    return out


def _border_handles(w: int, h: int, per_side: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, per_side + 1)[:-1]
    x1, y1 = w - 1.0, h - 1.0
    return np.concatenate(
        [
            np.stack([t * x1, np.zeros_like(t)], 1),
            np.stack([np.full_like(t, x1), t * y1], 1),
            np.stack([x1 - t * x1, np.full_like(t, y1)], 1),
            np.stack([np.zeros_like(t), y1 - t * y1], 1),
        ]
    )


def mls_warp_region(
    image: np.ndarray,
    src_points: np.ndarray,
    dst_points: np.ndarray,
    region: tuple[int, int, int, int],
    kind: MLSKind = "rigid",
    grid: int = 10,
    per_side: int = 8,
    feather: float = 0.1,
) -> np.ndarray:
    """MLS-warp one rectangle of ``image``; every pixel outside it is returned unchanged.

    The handles are ``src_points -> dst_points`` plus ``4 * per_side`` fixed handles on the
    rectangle's border. Near the border the backward map is blended into the identity over
    ``feather`` of the rectangle's shorter side (a smoothstep ramp), so that the warped
    rectangle joins its unchanged surroundings without a seam. Samples may come from outside
    the rectangle.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C)
    src_points, dst_points : array-like of shape (N, 2)
        Handles in image pixels ``(x, y)`` (inside the rectangle).
    region : (int, int, int, int)
        ``(x0, y0, x1, y1)``, end-exclusive; clipped to the image.
    kind : {"affine", "similarity", "rigid"}
    grid : int
        MLS grid step, pixels.
    per_side : int
        Fixed handles per side of the rectangle.
    feather : float
        Width of the blend to the identity, as a fraction of the shorter side (0: none).

    Returns
    -------
    ndarray
        A copy of ``image`` with the rectangle warped; same shape and dtype.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {img.shape}")
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in region)
    x0, x1 = max(0, min(x0, w)), max(0, min(x1, w))
    y0, y1 = max(0, min(y0, h)), max(0, min(y1, h))
    out = img.copy()
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    p, q = _check_points(src_points, dst_points)
    rw, rh = x1 - x0, y1 - y0
    origin = np.array([x0, y0], np.float64)
    fixed = _border_handles(rw, rh, per_side)
    map_x, map_y = mls_backward_map(
        (rh, rw),
        np.concatenate([p - origin, fixed]),
        np.concatenate([q - origin, fixed]),
        kind=kind,
        grid=grid,
    )
    xs = np.arange(rw, dtype=np.float32)
    ys = np.arange(rh, dtype=np.float32)
    if feather > 0:
        width = max(feather * min(rw, rh), 1.0)
        rx = np.clip(np.minimum(xs, rw - 1 - xs) / width, 0.0, 1.0)
        ry = np.clip(np.minimum(ys, rh - 1 - ys) / width, 0.0, 1.0)
        ramp = np.minimum(ry[:, None], rx[None, :])
        ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep
        map_x = xs[None, :] + ramp * (map_x - xs[None, :])
        map_y = ys[:, None] + ramp * (map_y - ys[:, None])
    warped = cv2.remap(
        img,
        (map_x + x0).astype(np.float32),
        (map_y + y0).astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    out[y0:y1, x0:x1] = warped.reshape(out[y0:y1, x0:x1].shape)
    return out
