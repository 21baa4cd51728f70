"""Shared pieces of the face detectors: the detector protocol, ordering and capping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from facecore.types import Face

__all__ = ["FaceDetector", "order_and_cap", "downscale_for_detection"]


class FaceDetector(Protocol):
    """Anything that turns an RGB uint8 image into face records."""

    name: str

    def load(self) -> None:
        """Load model files now (otherwise they load on first use)."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (H, W, 3) uint8 RGB, in any order."""


def order_and_cap(faces: Sequence[Face], max_faces: int | None) -> list[Face]:
    """Largest face first (ties: higher score first); keep at most ``max_faces``."""
    ordered = sorted(faces, key=lambda f: (-f.box.area, -f.detector_score))
    if max_faces is not None and max_faces >= 0:
        ordered = ordered[:max_faces]
    return ordered


def downscale_for_detection(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink ``image`` so its longer side is at most ``max_side``.

    Returns the (possibly) shrunk image and the factor that maps its coordinates back to the
    original's (multiply by it). Detection cost grows with pixel count; faces that matter in a
    large photo stay large enough after shrinking.

    The image is area-averaged: halved (2x2 pixel means, OpenCV's fast path for an exact factor
    of 2; an odd last row or column is left out) while it is at least twice the target size,
    then area-resized to the target. For a 12 Mpx phone photo this reads the full-size pixels
    once, at the cost of one pass, instead of a general area resize over all of them.
    """
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / float(max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = image
    while small.shape[1] >= 2 * size[0] and small.shape[0] >= 2 * size[1]:
        half_h, half_w = small.shape[0] // 2, small.shape[1] // 2
        small = cv2.resize(
            small[: 2 * half_h, : 2 * half_w], (half_w, half_h), interpolation=cv2.INTER_AREA
        )
    if (small.shape[1], small.shape[0]) != size:
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    return small, 1.0 / scale
