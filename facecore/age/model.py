"""The ``age`` stage: a face's age in years, as a distribution over ages 0..100.

It serves a :class:`facecore.heads.distribution.TopDistributionModel` (default ``age_utkface``,
trained by :mod:`facecore.age.train`), which the router loads
(:class:`facecore.heads.base.ModelHead`): a fine-tuned copy of the trunk's last stages run from
the shared stage-2 map, so the head costs a fraction of a second network. The value is the
distribution's (corrected) expectation; :meth:`facecore.types.Prediction.interval` gives its
central interval. Age is the only demographic estimate facecore makes.
"""

from __future__ import annotations

from facecore.heads.base import ModelHead
from facecore.stages import register_stage

__all__ = ["DEFAULT_MODEL", "AgeStage"]

#: The shipped age model.
DEFAULT_MODEL = "age_utkface"


@register_stage
class AgeStage(ModelHead):
    """Age of every face from a shipped model (default ``age_utkface``, trained on UTKFace:
    non-commercial research use only).

    Parameters
    ----------
    model : str, default "age_utkface"
        Manifest name of an ``age`` model.
    precision : {"auto", "float32"}, default "auto"
        int8 where the model file allows, or float32 (:class:`~facecore.heads.base.ModelHead`).

    Raises
    ------
    UnknownModelError
        If ``model`` is not an age model of the manifest.
    """

    name = "age"
    task = "age"
    unit = "years"
    default_model = DEFAULT_MODEL
    requires = ("trunk",)
    default = True
    prediction_names = ("age",)

    def __init__(self, model: str = DEFAULT_MODEL, precision: str = "auto") -> None:
        super().__init__(model, precision=precision)
