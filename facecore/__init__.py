"""facecore: face analysis and facial-attractiveness estimation, offline on a CPU.

The front door is a handful of verbs; :class:`FaceAnalyzer` gives control over the pipeline, and
:func:`list_stages` says which stages (detection aside) it can run. Nothing heavy happens at
import: models load on first use.

Coordinates everywhere are float pixels of the EXIF-rotated input image, boxes as
``(x1, y1, x2, y2)``; see :mod:`facecore.types`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from facecore.lazy import lazy_exports

__version__ = "0.1.0"

__all__ = [
    "AnalyzerConfig",
    "Box",
    "Face",
    "FaceAnalyzer",
    "Prediction",
    "analyze",
    "beautify",
    "detect_faces",
    "estimate_age",
    "list_stages",
    "load_image",
    "score",
    "__version__",
]

if TYPE_CHECKING:
    from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
    from facecore.detect import detect_faces
    from facecore.io import load_image
    from facecore.stages import list_stages
    from facecore.types import Box, Face, Prediction

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AnalyzerConfig": ".analyzer",
        "FaceAnalyzer": ".analyzer",
        "Box": ".types",
        "Face": ".types",
        "Prediction": ".types",
        "detect_faces": ".detect",
        "list_stages": ".stages",
        "load_image": ".io",
    },
    eager=("analyze", "beautify", "score", "__version__"),
)


def analyze(
    image: Any, stages: Sequence[str] | None = None, options: dict[str, Any] | None = None
) -> list[Face]:
    """Faces in ``image`` (largest first) with every prediction of ``stages``.

    ``image`` is a path, bytes, a file object, an array or a PIL image. ``stages`` defaults to
    the default heads (``facecore.stages.default_heads()``) with what they need (landmarks, the
    trunk's descriptor and features); ``options`` are per-stage options, e.g.
    ``{"attractiveness": {"model": "attractiveness_scut"}}``.
    """
    from facecore.analyzer import get_default_analyzer

    return get_default_analyzer().analyze(image, stages=stages, options=options)


def score(image: Any, model: str | None = None) -> list[Face]:
    """Faces in ``image`` with ``predictions["attractiveness"]`` (default model: SCUT-FBP5500's
    1-5 scale; ``model`` picks another by manifest name)."""
    options = {"attractiveness": {"model": model}} if model else None
    return analyze(image, stages=("attractiveness",), options=options)


def estimate_age(image: Any, model: str | None = None) -> list[Face]:
    """Faces in ``image`` with ``predictions["age"]``: the age in years, its distribution over
    ages 0..100 and ``.interval(0.9)`` (default model ``age_utkface``; ``model`` picks another
    age model by manifest name)."""
    options = {"age": {"model": model}} if model else None
    return analyze(image, stages=("age",), options=options)


def beautify(image: Any, warp: float | None = None, smooth: float | None = None) -> Any:
    """The photo with its largest face beautified, and what was done (score before and after,
    landmark displacement): :func:`facecore.beauty.beautify`, with its defaults for ``warp``
    and ``smooth`` (each in [0, 1]) when they are not given."""
    from facecore.beauty import beautify as _beautify

    kwargs = {k: v for k, v in (("warp", warp), ("smooth", smooth)) if v is not None}
    return _beautify(image, **kwargs)
