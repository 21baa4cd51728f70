"""Warnings for low-quality faces."""

import pytest

from facecore.errors import UnknownModelError
from facecore.quality.warnings import LOW_QUALITY, model_threshold, quality_warnings
from facecore.serialize import WarningOut
from facecore.types import Box, Face, Prediction


def _face(q: float | None, width: float = 100.0, model: str = "quality_faces") -> Face:
    f = Face(Box(0.0, 0.0, width, width), detector_score=1.0, detector="hog")
    return f if q is None else f.with_prediction("quality", Prediction(q, model))


def test_faces_below_the_threshold_are_named():
    faces = [_face(0.9), _face(0.2), _face(None), _face(0.49, width=40.0)]
    ws = quality_warnings(faces, threshold=0.5)
    assert [w.face for w in ws] == [1, 3]
    assert all(w.code == LOW_QUALITY and w.threshold == 0.5 for w in ws)
    assert ws[0].quality == 0.2 and "face 1" in ws[0].message and "0.20" in ws[0].message
    assert "40 px wide" in ws[1].message and "px wide" not in ws[0].message


def test_at_the_threshold_is_not_below():
    assert quality_warnings([_face(0.5)], threshold=0.5) == []


def test_default_threshold_is_the_models(tmp_path):
    t = model_threshold("quality_faces")
    assert 0.0 < t < 1.0
    assert len(quality_warnings([_face(t - 0.01), _face(min(1.0, t + 0.01))])) == 1
    with pytest.raises(UnknownModelError):
        model_threshold("age_utkface")  # not a quality model


def test_serialised_for_responses():
    (w,) = WarningOut.for_faces([_face(0.1)], 0.3)
    assert w.model_dump() == {
        "face": 0,
        "code": "low_quality",
        "quality": 0.1,
        "threshold": 0.3,
        "message": w.message,
    }
