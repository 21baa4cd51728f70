"""Warnings for faces whose quality is too low for their other predictions to be trusted.

:func:`quality_warnings` turns the ``quality`` prediction of a list of faces into typed
:class:`QualityWarning` records; every response that returns faces (the routes, ``facecore
analyze --json``) carries them under ``warnings``. The threshold is a setting; its default is
the shipped model's ``warn_below`` (chosen from the error-by-quality table of its card).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from facecore.errors import UnknownModelError
from facecore.types import Face

logger = logging.getLogger(__name__)

__all__ = [
    "FALLBACK_THRESHOLD",
    "LOW_QUALITY",
    "SMALL_FACE_PX",
    "QualityWarning",
    "model_threshold",
    "quality_warnings",
]

#: The warning code of a face below the threshold.
LOW_QUALITY = "low_quality"

#: The threshold for a quality prediction whose model has no ``warn_below`` in the manifest
#: (e.g. a plugin's model).
FALLBACK_THRESHOLD = 0.5

#: A face narrower than this (in image pixels) is named as small in the warning's reason.
SMALL_FACE_PX = 64


@dataclass(frozen=True)
class QualityWarning:
    """A face whose predictions are less reliable than the model cards' figures.

    Attributes
    ----------
    face : int
        Index of the face in the response's ``faces``.
    code : str
        ``"low_quality"``.
    quality : float
        The face's quality in [0, 1].
    threshold : float
        The threshold it fell below.
    message : str
        A sentence naming the face and the reason.
    """

    face: int
    code: str
    quality: float
    threshold: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_threshold(model: str) -> float:
    """The default warning threshold of the quality model ``model``: its manifest entry's
    ``metrics.warn_below``.

    Raises
    ------
    UnknownModelError
        If ``model`` is not a quality model of the manifest.
    ValueError
        If its entry has no ``warn_below``.
    """
    from facecore.model_store import check_model

    value = (check_model(model, "quality").extra.get("metrics") or {}).get("warn_below")
    if value is None:
        raise ValueError(f"quality model {model!r} has no metrics.warn_below in the manifest")
    return float(value)


@functools.lru_cache(maxsize=32)
def _threshold_of(model: str) -> float:
    try:
        return model_threshold(model)
    except (UnknownModelError, ValueError) as e:
        logger.warning("%s; warning below %.2f", e, FALLBACK_THRESHOLD)
        return FALLBACK_THRESHOLD


def quality_warnings(faces: Sequence[Face], threshold: float | None = None) -> list[QualityWarning]:
    """One warning per face whose ``quality`` prediction is below the threshold (faces without
    a quality prediction get none).

    Parameters
    ----------
    faces : sequence of Face
    threshold : float, optional
        Default: the recommended threshold of the model that made each face's quality
        (:func:`model_threshold`; :data:`FALLBACK_THRESHOLD` for a model without one).
    """
    out = []
    for i, face in enumerate(faces):
        pred = face.predictions.get("quality")
        if pred is None:
            continue
        limit = _threshold_of(pred.model) if threshold is None else float(threshold)
        if not pred.value < limit:
            continue
        width = face.box.width
        why = f"; the face is only {width:.0f} px wide" if width < SMALL_FACE_PX else ""
        out.append(
            QualityWarning(
                face=i,
                code=LOW_QUALITY,
                quality=round(float(pred.value), 4),
                threshold=limit,
                message=(
                    f"face {i}: image quality {pred.value:.2f} is below {limit:.2f} (blur, "
                    f"noise, compression, low resolution or bad exposure){why}; its other "
                    "predictions are less reliable than the model cards say"
                ),
            )
        )
    return out
