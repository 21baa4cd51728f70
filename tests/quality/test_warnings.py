"""Warnings for low-quality faces: made by the quality stage, carried by the faces."""

import pytest

from facecore.errors import UnknownModelError
from facecore.quality.model import QualityStage
from facecore.quality.warnings import (
    FALLBACK_THRESHOLD,
    LOW_QUALITY,
    default_threshold,
    low_quality_warning,
    model_threshold,
)


def test_below_the_threshold_is_warned_with_the_reason():
    w = low_quality_warning(0.2, 0.5, width=100.0)
    assert (w.code, w.value, w.threshold) == (LOW_QUALITY, 0.2, 0.5)
    assert w.message.startswith("image quality 0.20 is below 0.50 (blur,")
    assert "px wide" not in w.message
    small = low_quality_warning(0.49, 0.5, width=40.0)
    assert "; the face is only 40 px wide;" in small.message


def test_at_the_threshold_is_not_below():
    assert low_quality_warning(0.5, 0.5, width=100.0) is None
    assert low_quality_warning(0.9, 0.5, width=10.0) is None


def test_default_threshold_is_the_models():
    t = model_threshold("quality_faces")
    assert t == pytest.approx(0.60, abs=1e-9)  # the shipped model's metrics.warn_below
    assert default_threshold("quality_faces") == t
    with pytest.raises(UnknownModelError):
        model_threshold("age_utkface")  # not a quality model
    assert default_threshold("age_utkface") == FALLBACK_THRESHOLD


def test_the_stage_puts_its_warnings_on_the_faces(analyzer, two_face_photo):
    """The quality stage warns about the faces below its ``warn_below`` (0.999: both faces of
    the photo; 0: none) and names a face narrower than 64 px."""
    rgb = analyzer.load_image(two_face_photo)
    found = analyzer.run_stages(rgb, analyzer.detect_loaded(rgb), stages=("trunk",))
    qualities = []
    for limit, expected in ((0.999, 2), (0.0, 0)):
        stage = QualityStage(warn_below=limit)
        faces = stage(rgb, found)
        qualities.append([f.predictions["quality"].value for f in faces])
        assert sum(len(f.warnings) for f in faces) == expected
        for f in faces:
            for w in f.warnings:
                assert w == low_quality_warning(f.predictions["quality"].value, limit, f.box.width)
    assert qualities[0] == qualities[1]  # the threshold changes the warnings only


def test_the_stage_defaults_to_the_models_threshold():
    assert QualityStage().threshold == model_threshold("quality_faces")
    assert QualityStage(warn_below=0.25).threshold == 0.25


def test_warn_below_must_be_a_quality():
    with pytest.raises(ValueError, match="warn_below"):
        QualityStage(warn_below=1.5)
