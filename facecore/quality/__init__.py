"""Face image quality: the ``quality`` stage (:mod:`facecore.quality.model`), RankIQA training on
synthetic distortions (:mod:`facecore.quality.distortions`, :mod:`facecore.quality.network`,
:mod:`facecore.quality.train`) and the warnings the stage puts on low-quality faces
(:mod:`facecore.quality.warnings`).

The shipped model is trained on face crops of SCUT-FBP5500, MEBeauty and UTKFace: non-commercial
research use only. Names are imported lazily.
"""

from typing import TYPE_CHECKING

from facecore.lazy import lazy_exports

__all__ = ["DEFAULT_MODEL", "QualityStage", "distort", "low_quality_warning"]

if TYPE_CHECKING:
    from facecore.quality.distortions import distort
    from facecore.quality.model import DEFAULT_MODEL, QualityStage
    from facecore.quality.warnings import low_quality_warning

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DEFAULT_MODEL": ".model",
        "QualityStage": ".model",
        "low_quality_warning": ".warnings",
        "distort": ".distortions",
    },
)
