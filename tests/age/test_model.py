"""The ``age`` stage with the shipped model, and ``facecore.estimate_age``."""

import numpy as np
import pytest

import facecore
from facecore.age.model import AgeStage
from facecore.errors import UnknownModelError


def test_unknown_or_wrong_model_is_refused():
    with pytest.raises(UnknownModelError):
        AgeStage(model="nope")
    with pytest.raises(UnknownModelError):
        AgeStage(model="attractiveness_scut")  # not an age model


def test_stage_declares_its_output():
    stage = AgeStage()
    (out,) = stage.provides
    assert out.name == "age" and out.distribution and out.unit == "years"
    assert out.scale == (0.0, 100.0) and stage.requires == ("trunk",)


def test_estimate_age_on_photos(one_face_photo, two_face_photo):
    (face,) = facecore.estimate_age(one_face_photo)
    p = face.predictions["age"]
    assert p.model == "age_utkface" and len(p.bins) == 101
    np.testing.assert_allclose(p.probabilities.sum(), 1.0, atol=1e-4)
    lo, hi = p.interval(0.9)
    assert lo <= p.value <= hi
    # Obama was 47 in this photo (2008): a grown man, not a child or a pensioner.
    assert 30 <= p.value <= 65
    ages = [f.predictions["age"].value for f in facecore.estimate_age(two_face_photo)]
    assert len(ages) == 2 and all(18 <= a <= 80 for a in ages)
