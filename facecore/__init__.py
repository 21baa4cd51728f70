"""facecore: face analysis and facial-attractiveness estimation, offline on a CPU.

The front door is a handful of verbs; :class:`FaceAnalyzer` gives control over the pipeline.
Nothing heavy happens at import: models load on first use.

Coordinates everywhere are float pixels of the EXIF-rotated input image, boxes as
``(x1, y1, x2, y2)``; see :mod:`facecore.types`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AnalyzerConfig",
    "Box",
    "Face",
    "FaceAnalyzer",
    "analyze",
    "detect_faces",
    "score",
    "load_image",
    "__version__",
]

if TYPE_CHECKING:
    from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
    from facecore.types import Box, Face

_LAZY = {
    "AnalyzerConfig": "facecore.analyzer",
    "FaceAnalyzer": "facecore.analyzer",
    "Box": "facecore.types",
    "Face": "facecore.types",
    "detect_faces": "facecore.detect",
    "load_image": "facecore.io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facecore' has no attribute {name!r}")


def analyze(image: Any, stages: Any = None) -> list:
    """Faces in ``image`` with landmarks and descriptors, using the default analyzer.

    ``image`` is a path, bytes, a file object, an array or a PIL image.
    """
    from facecore.analyzer import get_default_analyzer

    return get_default_analyzer().analyze(image, stages=stages)


def score(image: Any) -> list:
    """Faces in ``image`` with ``predictions["attractiveness"]`` (1-5, SCUT-FBP5500 scale).

    Uses the process-wide analyzer of :func:`analyze` with the default attractiveness model.
    """
    return analyze(image, stages=("attractiveness",))
