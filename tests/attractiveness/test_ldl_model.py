"""The attractiveness stage serving a rating-distribution model (with and without its geometric
fusion, :mod:`facecore.attractiveness.ldl_model`)."""

import json

import numpy as np
import pytest
import torch
from scipy.special import softmax

from facecore.attractiveness.ldl_model import apply_fusion
from facecore.attractiveness.model import AttractivenessStage
from facecore.heads.distribution import TOP_ARCHITECTURE, TopDistributionModel
from facecore.model_store import sha256_file
from facecore.nn.dlib_resnet import DlibFaceResNet
from facecore.nn.top import BackboneTop
from facecore.trunk import map_key
from facecore.types import Box, Face

BINS = tuple(float(b) for b in range(1, 11))


def _face(seed, landmarks=True):
    rng = np.random.default_rng(seed)
    lm = None
    if landmarks:
        lm = np.stack([np.linspace(10, 90, 68), 50 + 20 * np.sin(np.arange(68) + seed)], 1)
    return Face(
        box=Box(0, 0, 100, 100),
        detector_score=1,
        detector="hog",
        landmarks=None if lm is None else lm.astype(np.float32),
        features={map_key("stage4"): rng.normal(size=(256, 4, 4)).astype(np.float32)},
    )


def _install(tmp_path, monkeypatch, fusion=None):
    torch.manual_seed(0)
    top = BackboneTop(DlibFaceResNet(), start="stage5", num_outputs=len(BINS))
    model = TopDistributionModel(top, BINS, metadata={"fusion": fusion})
    path = model.save(tmp_path / "deep.pt")
    entry = {
        "name": "toy_deep",
        "file": "deep.pt",
        "sha256": sha256_file(path),
        "task": "attractiveness",
        "architecture": TOP_ARCHITECTURE,
        "outputs": [
            {"name": "attractiveness", "kind": "distribution", "bins": list(BINS), "scale": [1, 10]}
        ],
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "models": [entry]}))
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))


def test_distribution_model_is_served_by_the_attractiveness_stage(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch)
    stage = AttractivenessStage(model="toy_deep")
    (out,) = stage.provides
    assert out.name == "attractiveness" and out.distribution and out.scale == (1.0, 10.0)
    faces = stage(np.zeros((8, 8, 3), np.uint8), [_face(0), _face(1)])
    for f in faces:
        p = f.predictions["attractiveness"]
        assert p.model == "toy_deep" and p.bins == BINS
        assert p.value == pytest.approx(float(p.probabilities @ np.array(BINS)), abs=1e-4)
    assert stage.batching == "faces"  # a top reads the faces' trunk maps only


def test_fusion_moves_value_and_distribution_together(tmp_path, monkeypatch):
    # A fusion that ignores the deep value: rating = 7 + geometric feature 0 (standardised).
    coef = [0.0] * 43
    coef[1] = 1.0
    fusion = {"mean": [0.0] * 43, "scale": [1.0] * 43, "coef": coef, "intercept": 7.0}
    _install(tmp_path, monkeypatch, fusion)
    stage = AttractivenessStage(model="toy_deep")
    from facecore.features import geometric_features

    face = _face(3)
    (out,) = stage(np.zeros((8, 8, 3), np.uint8), [face])
    p = out.predictions["attractiveness"]
    expected = float(np.clip(7.0 + geometric_features(face.landmarks)[0], 1, 10))
    deep = np.array([5.0])
    assert apply_fusion(fusion, deep, geometric_features(face.landmarks)[None]) == pytest.approx(
        7.0 + geometric_features(face.landmarks)[0]
    )
    assert p.value == pytest.approx(expected, abs=1e-6)
    # A face without landmarks keeps the deep value.
    (bare,) = stage(np.zeros((8, 8, 3), np.uint8), [_face(3, landmarks=False)])
    q = bare.predictions["attractiveness"]
    assert q.value == pytest.approx(float(q.probabilities @ np.array(BINS)), abs=1e-4)
    # The distribution is translated towards the fused value (inexactly at the end bins).
    mean = float(p.probabilities @ np.array(BINS))
    assert abs(q.value - expected) > 0.5 and abs(mean - expected) < 0.5 * abs(q.value - expected)


@pytest.mark.parametrize("name", ["attractiveness_scut", "attractiveness_mebeauty"])
def test_the_shipped_rating_is_the_stack_of_the_int8_top_and_the_svr(name, one_face_photo):
    """Both shipped models serve the file's stack of the int8 top's expectation and the SVR,
    with the top's distribution moved to that value."""
    from facecore.analyzer import FaceAnalyzer
    from facecore.ldl.stack import RbfSvr
    from facecore.model_router import load
    from facecore.nn.quantize import is_quantized

    analyzer = FaceAnalyzer(
        stages=("landmarks", "trunk", "attractiveness"),
        stage_options={"attractiveness": {"model": name}},
    )
    (face,) = analyzer.analyze(one_face_photo)
    model = load(name)  # the object the stage served
    assert isinstance(model, TopDistributionModel)
    assert is_quantized(model.serving_top) and model.metadata.get("fusion") is None
    # An ensemble's every top is served in int8 too (predict_logits averages them).
    assert len(model.members) == len(model.metadata.get("members", []))
    assert all(is_quantized(m) for m in model.serving_members)
    st = model.extras["stack"]
    bins = np.asarray(model.bins)
    raw = softmax(model.predict_logits([face]).astype(np.float64), axis=1)[0]
    svr = RbfSvr.from_arrays(st["svr"])
    assert not svr.log_target
    want = st["intercept"] + st["coef"][0] * float(raw @ bins)
    want += st["coef"][1] * svr.predict(face.features["trunk"][None])[0]
    p = face.predictions["attractiveness"]
    assert p.value == pytest.approx(float(np.clip(want, bins[0], bins[-1])), abs=1e-4)
    assert float(p.probabilities @ bins) == pytest.approx(p.value, abs=0.05)
