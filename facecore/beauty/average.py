"""Average faces: every face warped piecewise-affinely onto the mean shape, then the pixel mean.

The "average facial beautification" of B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on
features prediction and beautification models", Pattern Analysis and Applications 21(2), 2018
(an average face is made from several faces: their landmarks are averaged, each face is warped
onto the average shape with a triangle mesh, and the warped faces are averaged), the classical
face-averaging procedure of the attractiveness literature.

:func:`average_faces`:

1. the largest face of each image and its iBUG-68 landmarks (the analyzer's ``landmarks`` stage);
2. a common frame: the landmarks' generalised-Procrustes mean shape
   (:func:`facecore.beauty.shape.procrustes_mean`) scaled into a ``size`` x ``size`` square;
   each image is first mapped into the frame by the least-squares similarity transform of its
   landmarks onto that mean (Umeyama);
3. a Delaunay triangulation (``scipy.spatial.Delaunay``) of the mean shape plus 16 points on the
   frame's border, so that the mesh covers the whole output;
4. each aligned face warped triangle by triangle onto the mean shape
   (:func:`piecewise_affine_warp`: one affine map per triangle, applied through one dense
   ``cv2.remap``);
5. the mean of the warped images, rounded to uint8.

Departures, and why
-------------------
* The paper places its faces with its own landmark scheme and template; here the template is the
  Procrustes mean of the inputs themselves, and the frame's size and the face's place in it are
  fixed constants (the mean shape's RMS radius is 0.24 of the side, centred slightly below the
  middle, so that some forehead and chin are included).
* Border points are the frame's corners and edge midpoints, plus quarter points (16 in all):
  outside the face the warp is then the similarity alignment blended smoothly into the mesh.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from facecore.align import similarity_transform
from facecore.beauty.pipeline import NoFaceError
from facecore.beauty.shape import apply_similarity, procrustes_mean

__all__ = [
    "AVERAGE_SIZE",
    "average_faces",
    "average_of_aligned",
    "frame_border_points",
    "mean_shape_in_frame",
    "piecewise_affine_warp",
]

#: Default side of the average face, in pixels.
AVERAGE_SIZE = 300

_RMS_FRACTION = 0.24  # RMS radius of the landmarks / side
_CENTRE = (0.5, 0.55)  # where the landmarks' centroid goes, as fractions of the side


def frame_border_points(size: int, per_side: int = 4) -> np.ndarray:
    """``4 * per_side`` points on the border of a ``size`` x ``size`` frame, corners included."""
    s = float(size - 1)
    t = np.linspace(0.0, s, per_side + 1)[:-1]
    zero, full = np.zeros_like(t), np.full_like(t, s)
    return np.concatenate(
        [
            np.stack([t, zero], 1),
            np.stack([full, t], 1),
            np.stack([s - t, full], 1),
            np.stack([zero, s - t], 1),
        ]
    )


def mean_shape_in_frame(mean: np.ndarray, size: int) -> np.ndarray:
    """A unit-RMS, centred mean shape placed into the ``size`` x ``size`` output frame."""
    return np.asarray(mean, np.float64) * (_RMS_FRACTION * size) + np.array(_CENTRE) * size


def piecewise_affine_warp(
    image: np.ndarray,
    src_points: np.ndarray,
    dst_points: np.ndarray,
    triangles: np.ndarray,
    out_shape: tuple[int, int],
) -> np.ndarray:
    """Warp ``image`` so that each triangle of ``src_points`` lands on that of ``dst_points``.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C)
    src_points, dst_points : ndarray of shape (P, 2)
        Mesh vertices in ``image`` and in the output, ``(x, y)`` pixels.
    triangles : ndarray of shape (T, 3), int
        Vertex indices of the triangles (a triangulation of ``dst_points``).
    out_shape : (int, int)
        ``(height, width)`` of the output.

    Returns
    -------
    ndarray of shape ``out_shape + image.shape[2:]``, the image's dtype
        Each output pixel inside a destination triangle reads ``image`` through that triangle's
        affine map; pixels covered by no triangle read the same position in ``image``.
    """
    src = np.asarray(src_points, np.float64)
    dst = np.asarray(dst_points, np.float64)
    tri = np.asarray(triangles, np.int64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2:
        raise ValueError(
            f"need two (P, 2) point arrays of equal shape, got {src.shape}, {dst.shape}"
        )
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= len(src):
        raise ValueError("triangles must be (T, 3) indices into the points")
    h, w = int(out_shape[0]), int(out_shape[1])
    # Which triangle each output pixel lies in (0: none; triangle t is stored as t + 1).
    label = np.zeros((h, w), np.int32)
    for t, (a, b, c) in enumerate(tri):
        pts = np.round(dst[[a, b, c]] * 16).astype(np.int32)
        cv2.fillConvexPoly(label, pts, int(t + 1), lineType=cv2.LINE_8, shift=4)
    # One affine map output -> input per triangle; index 0 is the identity.
    maps = np.zeros((len(tri) + 1, 2, 3), np.float64)
    maps[0] = [[1, 0, 0], [0, 1, 0]]
    for t, (a, b, c) in enumerate(tri):
        d, s = dst[[a, b, c]], src[[a, b, c]]
        mat = np.column_stack([d, np.ones(3)])  # (3, 3)
        if abs(np.linalg.det(mat)) < 1e-9:  # a degenerate destination triangle covers nothing
            maps[t + 1] = maps[0]
            continue
        maps[t + 1] = np.linalg.solve(mat, s).T
    m = maps[label]  # (h, w, 2, 3)
    xs = np.arange(w, dtype=np.float64)[None, :]
    ys = np.arange(h, dtype=np.float64)[:, None]
    map_x = (m[..., 0, 0] * xs + m[..., 0, 1] * ys + m[..., 0, 2]).astype(np.float32)
    map_y = (m[..., 1, 0] * xs + m[..., 1, 1] * ys + m[..., 1, 2]).astype(np.float32)
    out = cv2.remap(
        np.asarray(image), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )
    if out.ndim == 2 and np.asarray(image).ndim == 3:
        out = out[..., None]
    return out


def average_of_aligned(
    images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], size: int = AVERAGE_SIZE
) -> np.ndarray:
    """The average face of images whose landmarks are known.

    Parameters
    ----------
    images : sequence of ndarray (H_i, W_i, 3), uint8
        RGB images (sizes may differ).
    landmarks : sequence of ndarray (68, 2)
        One face's iBUG-68 points in each image.
    size : int
        Side of the output square.

    Returns
    -------
    ndarray of shape (size, size, 3), uint8
    """
    if len(images) != len(landmarks) or not images:
        raise ValueError("need one landmark set per image, and at least one image")
    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    shapes = np.stack([np.asarray(lm, np.float64) for lm in landmarks])
    if shapes.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (68, 2) each, got {shapes.shape[1:]}")
    mean, _ = procrustes_mean(shapes)
    frame_mean = mean_shape_in_frame(mean, size)
    border = frame_border_points(size)
    dst = np.concatenate([frame_mean, border])
    from scipy.spatial import Delaunay

    triangles = Delaunay(dst).simplices
    acc = np.zeros((size, size, 3), np.float64)
    for img, lm in zip(images, shapes, strict=True):
        m = similarity_transform(lm, frame_mean)
        aligned = cv2.warpAffine(
            np.asarray(img),
            m,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT101,
        )
        src = np.concatenate([apply_similarity(m, lm), border])
        acc += piecewise_affine_warp(aligned, src, dst, triangles, (size, size))
    return np.clip(np.rint(acc / len(images)), 0, 255).astype(np.uint8)


def average_faces(
    images: Sequence[Any], analyzer: Any = None, size: int = AVERAGE_SIZE
) -> np.ndarray:
    """The average face of the largest face of each image.

    Parameters
    ----------
    images : sequence of path, bytes, file object, ndarray or PIL image
        At least one; each is decoded with the analyzer's image limits.
    analyzer : FaceAnalyzer, optional
        Gives the landmarks (stage ``landmarks``); default: the process-wide analyzer.
    size : int, default 300
        Side of the output square, in pixels.

    Returns
    -------
    ndarray of shape (size, size, 3), uint8
        RGB average face.

    Raises
    ------
    NoFaceError
        If an image has no face (the message gives its position in ``images``).
    """
    images = list(images)
    if not images:
        raise ValueError("average_faces needs at least one image")
    if analyzer is None:
        from facecore.analyzer import get_default_analyzer

        analyzer = get_default_analyzer()
    rgbs, marks = [], []
    for i, source in enumerate(images):
        rgb, faces = analyzer.analyze_image(source, stages=("landmarks",))
        if not faces:
            name = (
                source if isinstance(source, str | os.PathLike) else getattr(source, "name", None)
            )
            where = f"image {i}" + (
                f" ({os.fspath(name)})" if isinstance(name, str | os.PathLike) else ""
            )
            raise NoFaceError(f"no face found in {where}", index=i)
        rgbs.append(rgb)
        marks.append(faces[0].landmarks)
    return average_of_aligned(rgbs, marks, size)
