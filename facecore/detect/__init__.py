"""Face detection: dlib HOG, MTCNN, ``auto`` (HOG, then MTCNN when HOG finds nothing) and the
named BlazeFace detectors (``blazeface_back``, ``blazeface_short``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from facecore.detect.base import FaceDetector, order_and_cap
from facecore.detect.blazeface import BlazeFaceDetector
from facecore.detect.hog import HogDetector
from facecore.detect.mtcnn import MtcnnDetector
from facecore.types import Face

__all__ = [
    "DETECTORS",
    "AutoDetector",
    "BlazeFaceDetector",
    "DetectorConfig",
    "FaceDetector",
    "HogDetector",
    "MtcnnDetector",
    "detect_faces",
    "make_detector",
    "order_and_cap",
    "shared_detector",
]


class AutoDetector:
    """HOG first (fast); MTCNN only on images where HOG finds no face."""

    name = "auto"

    def __init__(self, hog: HogDetector | None = None, mtcnn: MtcnnDetector | None = None):
        self.hog = hog or HogDetector()
        self.mtcnn = mtcnn or MtcnnDetector()

    def load(self) -> None:
        self.hog.load()
        self.mtcnn.load()

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.hog.detect(image) or self.mtcnn.detect(image)


DETECTORS = ("hog", "mtcnn", "auto", "blazeface_back", "blazeface_short")


@dataclass(frozen=True)
class DetectorConfig:
    """Which detector, with its settings (every field has a working default).

    Attributes
    ----------
    name : {"auto", "hog", "mtcnn", "blazeface_back", "blazeface_short"}
        ``auto``: HOG, then MTCNN on images where HOG finds nothing; ``blazeface_*``: MediaPipe's
        BlazeFace, 256x256 (``back``) or short-range 128x128 (``short``) input.
    hog_upsample : int
        HOG upsampling steps (0..3; each finds faces half as large, about 4x slower).
    hog_threshold : float
        Minimum HOG SVM margin (dlib's default 0).
    mtcnn_threshold : float
        Minimum MTCNN face probability.
    mtcnn_min_face_size : int
        Smallest face side MTCNN searches for, in pixels.
    blazeface_threshold : float
        Minimum BlazeFace face probability.
    max_side : int or None
        Longer image side above which the image is shrunk for detection (boxes map back; HOG
        and MTCNN: BlazeFace always letterboxes the image to its input size).
    large_jpeg_share : float
        A JPEG at least twice ``max_side`` is detected on a copy decoded with DCT scaling
        (:func:`facecore.io.load_image_reduced`). When the largest such copy that fits
        ``max_side`` keeps at least this share of the pixels of a ``max_side`` copy, it is
        used as it is, without a resize; otherwise a larger one is resized to ``max_side``.
        The default 0.5 lets the detector see a 12 Mpx photo at 1008 px (3780 px: 945) instead
        of 1280, about a third faster, with faces needed about 1.3x larger; 1.0 always detects
        at ``max_side``. No effect on other images.
    """

    name: Literal["auto", "hog", "mtcnn", "blazeface_back", "blazeface_short"] = "auto"
    hog_upsample: int = 0
    hog_threshold: float = 0.0
    mtcnn_threshold: float = 0.9
    mtcnn_min_face_size: int = 20
    blazeface_threshold: float = 0.65
    max_side: int | None = 1280
    large_jpeg_share: float = 0.5

    def __post_init__(self) -> None:
        if self.name not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.name!r}")
        if not 0.0 < self.large_jpeg_share <= 1.0:
            raise ValueError(f"large_jpeg_share must be in (0, 1], got {self.large_jpeg_share}")
        if not 0 <= self.hog_upsample <= 3:
            raise ValueError(f"hog_upsample must be 0..3, got {self.hog_upsample}")
        if self.mtcnn_min_face_size < 1:
            raise ValueError(f"mtcnn_min_face_size must be >= 1, got {self.mtcnn_min_face_size}")

    def build(self) -> FaceDetector:
        """A new detector with these settings (cheap: no model file is read)."""
        hog = {
            "upsample": self.hog_upsample,
            "threshold": self.hog_threshold,
            "max_side": self.max_side,
        }
        mtcnn = {
            "threshold": self.mtcnn_threshold,
            "min_face_size": self.mtcnn_min_face_size,
            "max_side": self.max_side,
        }
        if self.name == "hog":
            return HogDetector(**hog)
        if self.name == "mtcnn":
            return MtcnnDetector(**mtcnn)
        if self.name.startswith("blazeface_"):
            return BlazeFaceDetector(
                self.name.removeprefix("blazeface_"), threshold=self.blazeface_threshold
            )
        return AutoDetector(HogDetector(**hog), MtcnnDetector(**mtcnn))

    @classmethod
    def of(cls, value: DetectorConfig | str | dict[str, Any] | None) -> DetectorConfig:
        """A config from a detector name, a dict of fields or a config."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(name=value)  # type: ignore[arg-type]
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(f"detector must be a name or a DetectorConfig, got {type(value).__name__}")


def make_detector(name: str, **kwargs: Any) -> FaceDetector:
    """Build a detector by name with :class:`DetectorConfig` fields, e.g.
    ``make_detector("auto", hog_upsample=1)``."""
    return DetectorConfig(name=name, **kwargs).build()  # type: ignore[arg-type]


_cache: dict[DetectorConfig, FaceDetector] = {}
_cache_lock = threading.Lock()


def shared_detector(config: DetectorConfig) -> FaceDetector:
    """One detector per process and config (detectors are thread-safe), so that
    :func:`detect_faces` and every analyzer with the same settings give the same faces without
    loading the same models twice."""
    with _cache_lock:
        if config not in _cache:
            _cache[config] = config.build()
        return _cache[config]


def detect_faces(
    image: Any,
    detector: str | DetectorConfig | FaceDetector = "auto",
    *,
    max_faces: int | None = 20,
) -> list[Face]:
    """Detect faces, largest first.

    Parameters
    ----------
    image : path, bytes, file object, ndarray or PIL image
        Anything :func:`facecore.io.load_image` accepts.
    detector : {"auto", "hog", "mtcnn", "blazeface_back", "blazeface_short"}, DetectorConfig or a
        detector object
        Which detector to use; a name gets the default settings, as a default ``FaceAnalyzer``.
    max_faces : int or None
        Keep at most this many faces (the largest).

    Returns
    -------
    list of Face
        ``keypoints`` holds 5 points in MTCNN's layout for faces MTCNN or BlazeFace found
        (BlazeFace's mouth centre in both mouth-corner places; its 6 points:
        :meth:`BlazeFaceDetector.detections`); ``None`` for HOG's.
    """
    from facecore.io import load_image

    rgb = load_image(image)
    det = detector if hasattr(detector, "detect") else shared_detector(DetectorConfig.of(detector))
    return order_and_cap(det.detect(rgb), max_faces)
