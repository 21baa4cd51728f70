"""Synthetic distortions of face crops at graded strengths (the training signal of RankIQA).

X. Liu, J. van de Weijer, A. D. Bagdanov, "RankIQA: Learning from Rankings for No-reference
Image Quality Assessment", ICCV 2017, train a quality network without human labels: each clean
image is distorted at increasing strengths, and a Siamese network learns that the less distorted
image of a pair ranks higher. Here the images are the 150x150 face chips the trunk sees, and the
distortions are the ones that make a face photo unreliable:

============  =============================================  ================================
kind          what                                           levels 1..4
============  =============================================  ================================
blur          Gaussian blur, sigma in pixels                 0.8, 1.5, 2.5, 4.0
noise         additive Gaussian noise, std on 0..255         8, 16, 28, 45
jpeg          JPEG compression, quality                      40, 20, 10, 5
downscale     down- then up-scaling (area, then bilinear)    2, 3, 4.5, 7 (face 75..21 px)
dark          under-exposure: gain and gamma                 0.55, 0.35, 0.2, 0.1
bright        over-exposure: gain, clipped at 255            1.6, 2.2, 3.0, 4.5
motion        linear motion blur, length in pixels            5, 9, 15, 23
============  =============================================  ================================

Level 0 is the crop as it is. :func:`distort` is deterministic for a given ``seed`` (noise
pattern, motion direction).

This module implements the distortion half of RankIQA (its network half is
:mod:`facecore.quality.network`).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

__all__ = ["DISTORTIONS", "LEVELS", "N_LEVELS", "distort", "distortion_kinds"]

#: Number of graded levels per distortion (level 0 is the clean crop).
N_LEVELS = 4

#: The strength of each level (1..N_LEVELS) of each distortion, in the units of the table above.
LEVELS: dict[str, tuple[float, ...]] = {
    "blur": (0.8, 1.5, 2.5, 4.0),
    "noise": (8.0, 16.0, 28.0, 45.0),
    "jpeg": (40.0, 20.0, 10.0, 5.0),
    "downscale": (2.0, 3.0, 4.5, 7.0),
    "dark": (0.55, 0.35, 0.2, 0.1),
    "bright": (1.6, 2.2, 3.0, 4.5),
    "motion": (5.0, 9.0, 15.0, 23.0),
}


def _blur(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def _noise(img: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32) + rng.normal(0.0, std, img.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    bgr = np.ascontiguousarray(img[..., ::-1])
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 RGB array
        raise RuntimeError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _downscale(img: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(
        img, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _dark(img: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    # A camera's under-exposure: less light (gain) and a crushed tone curve (gamma > 1).
    x = img.astype(np.float32) / 255.0
    x = (x * gain) ** (1.0 + (1.0 - gain))
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _bright(img: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32) * gain
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _motion(img: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    n = int(length) | 1  # odd kernel, centred
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2, :] = 1.0
    angle = float(rng.uniform(0.0, 180.0))
    rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (n, n))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


#: kind -> function(image, strength, rng).
DISTORTIONS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "blur": _blur,
    "noise": _noise,
    "jpeg": _jpeg,
    "downscale": _downscale,
    "dark": _dark,
    "bright": _bright,
    "motion": _motion,
}


def distortion_kinds() -> tuple[str, ...]:
    """The distortion kinds, in a fixed order."""
    return tuple(DISTORTIONS)


def distort(image: np.ndarray, kind: str, level: int, seed: int = 0) -> np.ndarray:
    """``image`` distorted by ``kind`` at ``level`` (0 = unchanged, 1..N_LEVELS = stronger).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        An RGB crop.
    kind : str
        One of :func:`distortion_kinds`.
    level : int
        0..N_LEVELS.
    seed : int, default 0
        Seeds the random parts (noise, motion direction).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        A new array (a copy at level 0).

    Raises
    ------
    ValueError
        For an unknown kind, a level out of range or an image that is not (H, W, 3) uint8.
    """
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; known: {', '.join(DISTORTIONS)}")
    if not 0 <= int(level) <= N_LEVELS:
        raise ValueError(f"level must be in 0..{N_LEVELS}, got {level}")
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    if level == 0:
        return img.copy()
    rng = np.random.default_rng(seed)
    out = DISTORTIONS[kind](np.ascontiguousarray(img), LEVELS[kind][int(level) - 1], rng)
    return np.ascontiguousarray(out, dtype=np.uint8)
