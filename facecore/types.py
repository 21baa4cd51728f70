"""Typed records that carry results through the pipeline.

Coordinate convention, used everywhere in facecore: pixel coordinates of the (EXIF-rotated, RGB)
input image as floats, origin at the top-left corner, x to the right, y down. A box is
``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1``; landmarks are ``(N, 2)`` arrays of
``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Box", "Face", "LANDMARK_SCHEMES"]

#: Landmark schemes by point count: MTCNN's 5 points (left eye, right eye, nose, left and right
#: mouth corner, as seen in the image) and the iBUG 300-W 68-point scheme used by dlib.
LANDMARK_SCHEMES = {5: "mtcnn5", 68: "ibug68"}


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in float pixel coordinates ``(x1, y1, x2, y2)``."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def clip(self, width: int, height: int) -> Box:
        """The box clipped to an image of the given size."""
        return Box(
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
            min(max(self.x2, 0.0), float(width)),
            min(max(self.y2, 0.0), float(height)),
        )

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def _frozen_array(a: Any, dtype: type = np.float32) -> np.ndarray | None:
    if a is None:
        return None
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face and whatever later stages have added to it.

    Attributes
    ----------
    box : Box
        Face box in pixel coordinates of the input image.
    score : float
        Detector confidence. For ``hog`` it is dlib's SVM margin (0 is dlib's default threshold);
        for ``mtcnn`` the face probability in [0, 1].
    detector : str
        Name of the detector that found the face.
    landmarks : ndarray of shape (N, 2), float32, or None
        Landmarks in pixel coordinates: 5 points from MTCNN, or the 68-point iBUG scheme once the
        landmark stage has run (see :data:`LANDMARK_SCHEMES`).
    embedding : ndarray of shape (128,), float32, or None
        Face descriptor (dlib ResNet metric space: same person when distance < 0.6).
    predictions : dict
        Named scalar predictions added by later stages (e.g. ``"attractiveness"``, ``"age"``).
    features : dict
        Intermediate feature vectors that later stages reuse (e.g. ``"trunk"``: the pooled
        multi-level features of the face-recognition trunk, computed once per face and shared by
        every head). Not part of :meth:`to_dict`.
    """

    box: Box
    score: float
    detector: str
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = None
    predictions: dict[str, float] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "landmarks", _frozen_array(self.landmarks))
        object.__setattr__(self, "embedding", _frozen_array(self.embedding))
        object.__setattr__(self, "predictions", dict(self.predictions))
        object.__setattr__(
            self, "features", {k: _frozen_array(v) for k, v in self.features.items()}
        )

    @property
    def landmark_scheme(self) -> str | None:
        if self.landmarks is None:
            return None
        return LANDMARK_SCHEMES.get(len(self.landmarks), f"{len(self.landmarks)}pt")

    def evolve(self, **changes: Any) -> Face:
        """A copy with some fields replaced (records are immutable)."""
        return replace(self, **changes)

    def with_prediction(self, name: str, value: float) -> Face:
        preds = dict(self.predictions)
        preds[name] = float(value)
        return replace(self, predictions=preds)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (lists and floats only)."""
        return {
            "box": list(self.box.as_tuple()),
            "score": float(self.score),
            "detector": self.detector,
            "landmarks": None if self.landmarks is None else self.landmarks.tolist(),
            "landmark_scheme": self.landmark_scheme,
            "embedding": None if self.embedding is None else self.embedding.tolist(),
            "predictions": dict(self.predictions),
        }
