"""Seeded geometric and photometric jitter of aligned face chips, for cached-map training.

Each chip gets a few jittered *views* (a small random similarity transform about the chip's
centre and a brightness/contrast change) before the frozen maps are cached; the fit loop draws
one version of a sample per step (``X_views``). The jitter of view ``v`` of chip ``i`` depends
only on ``(seed, v, i)``. No paper: random crops, scales and rotations are the standard
augmentation of the age and attractiveness networks facecore follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Jitter", "jitter_chips"]


@dataclass(frozen=True)
class Jitter:
    """Ranges of the random transform of one view (each drawn uniformly in +-range).

    Attributes
    ----------
    shift, scale : float, default 0.04, 0.08
        Translation as a fraction of the chip side (6 px of 150), relative zoom (0.92x-1.08x).
    rotate : float, default 10.0
        Rotation in degrees.
    brightness, contrast : float, default 0.12, 0.15
        Added brightness (a fraction of 0-255) and relative contrast about the chip's mean.
    """

    shift: float = 0.04
    scale: float = 0.08
    rotate: float = 10.0
    brightness: float = 0.12
    contrast: float = 0.15


def jitter_chips(
    chips: Any, view: int, *, seed: int = 0, jitter: Jitter | None = None
) -> np.ndarray:
    """View ``view`` of ``chips`` (N, S, S, 3) uint8: each chip moved, zoomed, turned and
    re-lit by its own seeded draw (edges filled by reflection), same shape and dtype.

    Parameters
    ----------
    chips : array-like (N, S, S, 3) uint8
    view : int
        Which view (>= 0); different views of a chip are independent draws.
    seed : int, default 0
    jitter : Jitter, optional
        The ranges (default :class:`Jitter`).
    """
    import cv2

    if view < 0:
        raise ValueError(f"view must be >= 0, got {view}")
    jitter = jitter or Jitter()
    chips = np.asarray(chips)
    if chips.ndim != 4 or chips.shape[3] != 3 or chips.dtype != np.uint8:
        raise ValueError(f"chips must be (N, S, S, 3) uint8, got {chips.shape} {chips.dtype}")
    out = np.empty_like(chips)
    h, w = chips.shape[1:3]
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    for i, chip in enumerate(chips):
        u = np.random.default_rng((seed, view, i)).uniform(-1.0, 1.0, size=6)
        m = cv2.getRotationMatrix2D(centre, u[3] * jitter.rotate, 1.0 + u[2] * jitter.scale)
        m[0, 2] += u[0] * jitter.shift * w
        m[1, 2] += u[1] * jitter.shift * h
        moved = cv2.warpAffine(
            chip, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        f = moved.astype(np.float32)
        bright = u[4] * jitter.brightness * 255.0
        f = (f - f.mean()) * (1.0 + u[5] * jitter.contrast) + f.mean() + bright
        out[i] = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return out
