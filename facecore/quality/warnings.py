"""Warnings for faces whose quality is too low for their other predictions to be trusted.

The ``quality`` stage (:class:`facecore.quality.model.QualityStage`) puts a ``low_quality``
:class:`~facecore.types.FaceWarning` (:func:`low_quality_warning`) on every face whose quality is
below its threshold; every response that returns faces (the routes, ``facecore analyze --json``)
lists what the faces carry under ``warnings``. The threshold is the stage's ``warn_below`` option
(the service's ``FACECORE_QUALITY_THRESHOLD``, the CLI's ``--quality-threshold``); unset, it is
the model's recommended threshold (``metrics.warn_below`` in its manifest entry, chosen from the
error-by-quality table of its card).

This module implements no paper.
"""

from __future__ import annotations

import functools
import logging

from facecore.errors import UnknownModelError
from facecore.types import FaceWarning

logger = logging.getLogger(__name__)

__all__ = [
    "FALLBACK_THRESHOLD",
    "LOW_QUALITY",
    "SMALL_FACE_PX",
    "default_threshold",
    "low_quality_warning",
    "model_threshold",
]

#: The warning code of a face below the threshold.
LOW_QUALITY = "low_quality"

#: The threshold for a quality prediction whose model has no ``warn_below`` in the manifest
#: (e.g. a plugin's model).
FALLBACK_THRESHOLD = 0.5

#: A face narrower than this (in image pixels) is named as small in the warning's reason.
SMALL_FACE_PX = 64


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
def default_threshold(model: str) -> float:
    """:func:`model_threshold`, or :data:`FALLBACK_THRESHOLD` (logged) for a model without one."""
    try:
        return model_threshold(model)
    except (UnknownModelError, ValueError) as e:
        logger.warning("%s; warning below %.2f", e, FALLBACK_THRESHOLD)
        return FALLBACK_THRESHOLD


def low_quality_warning(quality: float, threshold: float, width: float) -> FaceWarning | None:
    """The warning of a face of quality ``quality``, or None when it is not below ``threshold``.

    Parameters
    ----------
    quality : float
        The face's quality in [0, 1].
    threshold : float
        Faces strictly below it are warned about.
    width : float
        The face box's width in image pixels (a face narrower than :data:`SMALL_FACE_PX` is
        named as small in the reason).
    """
    limit = float(threshold)
    if not quality < limit:
        return None
    why = f"; the face is only {width:.0f} px wide" if width < SMALL_FACE_PX else ""
    return FaceWarning(
        code=LOW_QUALITY,
        value=float(quality),
        threshold=limit,
        message=(
            f"image quality {quality:.2f} is below {limit:.2f} (blur, noise, compression, low "
            f"resolution or bad exposure){why}; its other predictions are less reliable than "
            "the model cards say"
        ),
    )
