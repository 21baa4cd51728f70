"""Face detection: dlib HOG, MTCNN, and ``auto`` (HOG, then MTCNN when HOG finds nothing)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from facecore.detect.base import FaceDetector, order_and_cap
from facecore.detect.hog import HogDetector
from facecore.detect.mtcnn import MtcnnDetector
from facecore.types import Face

__all__ = [
    "DETECTORS",
    "AutoDetector",
    "FaceDetector",
    "HogDetector",
    "MtcnnDetector",
    "detect_faces",
    "make_detector",
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


DETECTORS = ("hog", "mtcnn", "auto")


def make_detector(name: str, **kwargs: Any) -> FaceDetector:
    """Build a detector by name (``hog``, ``mtcnn`` or ``auto``).

    Keyword arguments go to the detector's constructor; for ``auto`` they are split by prefix
    (``hog_upsample``, ``mtcnn_threshold``...).
    """
    if name == "hog":
        return HogDetector(**kwargs)
    if name == "mtcnn":
        return MtcnnDetector(**kwargs)
    if name == "auto":
        hog_kw = {k[4:]: v for k, v in kwargs.items() if k.startswith("hog_")}
        mt_kw = {k[6:]: v for k, v in kwargs.items() if k.startswith("mtcnn_")}
        rest = set(kwargs) - {f"hog_{k}" for k in hog_kw} - {f"mtcnn_{k}" for k in mt_kw}
        if rest:
            raise TypeError(f"unexpected arguments for the auto detector: {sorted(rest)}")
        return AutoDetector(HogDetector(**hog_kw), MtcnnDetector(**mt_kw))
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


_cache: dict[str, FaceDetector] = {}
_cache_lock = threading.Lock()


def _named(detector: str) -> FaceDetector:
    """The detector a default :class:`~facecore.analyzer.FaceAnalyzer` with this detector uses,
    built once per process, so ``detect_faces`` and the analyzer give the same faces."""
    with _cache_lock:
        if detector not in _cache:
            from facecore.analyzer import FaceAnalyzer

            _cache[detector] = FaceAnalyzer(detector=detector, stages=()).detector
        return _cache[detector]


def detect_faces(
    image: Any, detector: str | FaceDetector = "auto", *, max_faces: int | None = 20
) -> list[Face]:
    """Detect faces, largest first.

    Parameters
    ----------
    image : path, bytes, file object, ndarray or PIL image
        Anything :func:`facecore.io.load_image` accepts.
    detector : {"auto", "hog", "mtcnn"} or a detector object
        Which detector to use, with the same settings as a default ``FaceAnalyzer``.
    max_faces : int or None
        Keep at most this many faces (the largest).

    Returns
    -------
    list of Face
        ``landmarks`` holds MTCNN's 5 points for ``mtcnn``; ``None`` for ``hog``.
    """
    from facecore.io import load_image

    rgb = load_image(image)
    det = _named(detector) if isinstance(detector, str) else detector
    return order_and_cap(det.detect(rgb), max_faces)
