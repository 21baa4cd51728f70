"""Age estimation: the ``age`` stage (:mod:`facecore.age.model`) and its training on UTKFace
(:mod:`facecore.age.train`). The age-attractiveness study is
:mod:`facecore.studies.age_attractiveness.study`.

Models trained on UTKFace are for non-commercial research use only. Names are imported lazily.
"""

from typing import TYPE_CHECKING

from facecore.lazy import lazy_exports

__all__ = ["AgeStage", "DEFAULT_MODEL"]

if TYPE_CHECKING:
    from facecore.age.model import DEFAULT_MODEL, AgeStage

__getattr__, __dir__ = lazy_exports(__name__, {"AgeStage": ".model", "DEFAULT_MODEL": ".model"})
