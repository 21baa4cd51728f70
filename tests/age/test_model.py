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


def test_the_shipped_age_is_the_stack_of_the_int8_top_and_the_svr(one_face_photo):
    """The served age = the file's stack of the top's expectation and the trunk-feature SVR,
    and the int8 top and float top agree closely on it."""
    from scipy.special import softmax

    from facecore.analyzer import FaceAnalyzer
    from facecore.ldl.stack import RbfSvr
    from facecore.model_router import load
    from facecore.nn.quantize import is_quantized

    (face,) = FaceAnalyzer(stages=("landmarks", "trunk", "age")).analyze(one_face_photo)
    model = load("age_utkface")  # the object the stage served
    assert is_quantized(model.serving_top)
    st = model.extras["stack"]
    raw = softmax(model.predict_logits([face]).astype(np.float64), axis=1)[0]
    svr = RbfSvr.from_arrays(st["svr"]).predict(face.features["trunk"][None])[0]
    want = st["intercept"] + st["coef"][0] * float(raw @ np.arange(101)) + st["coef"][1] * svr
    p = face.predictions["age"]
    assert p.value == pytest.approx(want, abs=1e-3)
    assert float(p.probabilities @ np.arange(101)) == pytest.approx(p.value, abs=0.05)
    flt = load("age_utkface", precision="float32")
    raw_f = softmax(flt.predict_logits([face]).astype(np.float64), axis=1)[0]
    assert abs(float((raw_f - raw) @ np.arange(101))) < 1.5  # int8 vs float32, in years
