import json

import numpy as np
import pytest
import torch

from facecore.errors import ModelCorruptError, UnknownModelError
from facecore.ldl.deep import (
    DistributionHead,
    TopDistributionModel,
    shift_distribution,
    softmax,
)
from facecore.model_store import sha256_file
from facecore.nn.dlib_resnet import DlibFaceResNet
from facecore.nn.top import BackboneTop
from facecore.trunk import map_key
from facecore.types import Box, Face

BINS = tuple(float(b) for b in range(1, 6))


def test_shift_distribution_moves_the_mean_and_keeps_the_mass():
    b = np.arange(0, 11, dtype=float)
    p = np.zeros(11)
    p[4:7] = [0.25, 0.5, 0.25]
    q = shift_distribution(p, b, 2.0)
    assert q.sum() == pytest.approx(1.0) and q @ b == pytest.approx(7.0)
    r = shift_distribution(p, b, -0.5)
    assert r @ b == pytest.approx(4.5)
    edge = shift_distribution(p, b, 9.0)  # pushed past the end: piles up in the last bin
    assert edge.sum() == pytest.approx(1.0) and edge[-1] == pytest.approx(1.0)


def _model(calibration=None):
    torch.manual_seed(0)
    top = BackboneTop(DlibFaceResNet(), start="stage5", num_outputs=len(BINS))
    return TopDistributionModel(top, BINS, calibration, metadata={"task": "toy"})


def _face(seed):
    fmap = np.random.default_rng(seed).normal(size=(256, 4, 4)).astype(np.float32)
    return Face(
        box=Box(0, 0, 10, 10),
        detector_score=1,
        detector="hog",
        features={map_key("stage4"): fmap},
    )


def test_save_load_round_trip_in_float16(tmp_path):
    model = _model(calibration=(np.array([1.0, 5.0]), np.array([1.5, 4.5])))
    faces = [_face(0), _face(1)]
    ref = model.predict_logits(faces)
    loaded = TopDistributionModel.load(model.save(tmp_path / "m.pt"))
    assert loaded.bins == BINS and loaded.metadata == {"task": "toy"}
    np.testing.assert_allclose(loaded.predict_logits(faces), ref, atol=2e-2)  # float16 weights
    values, probs = loaded.distributions(ref)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    raw = softmax(ref) @ np.array(BINS)
    # The value is the calibrated expectation (float16 weights: close to the reference's);
    # the distribution is translated towards it (inexactly where mass reaches an end bin).
    np.testing.assert_allclose(values, np.interp(raw, [1, 5], [1.5, 4.5]), atol=0.15)
    np.testing.assert_allclose(probs @ np.array(BINS), values, atol=0.5)
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(ModelCorruptError):
        TopDistributionModel.load(tmp_path / "bad.pt")


class ToyHead(DistributionHead):
    name = "toy"
    task = "toy_score"
    unit = "points"
    default_model = "toy_model"


def test_distribution_head_serves_the_model(tmp_path, monkeypatch):
    path = _model().save(tmp_path / "toy.pt")
    entry = {
        "name": "toy_model",
        "file": "toy.pt",
        "sha256": sha256_file(path),
        "task": "toy_score",
        "outputs": [{"name": "toy", "kind": "distribution", "bins": list(BINS), "scale": [1, 5]}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "models": [entry]}))
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    head = ToyHead()
    (out,) = head.provides
    assert out.distribution and out.scale == (1.0, 5.0)
    faces = head(np.zeros((8, 8, 3), np.uint8), [_face(2)])
    p = faces[0].predictions["toy"]
    assert p.model == "toy_model" and p.bins == BINS
    assert p.value == pytest.approx(float(p.probabilities @ np.array(BINS)), abs=1e-5)
    assert head(np.zeros((8, 8, 3), np.uint8), []) == []
    with pytest.raises(UnknownModelError):
        ToyHead(model="nope")


def test_temperature_widens_the_distribution_and_is_saved(tmp_path):
    from facecore.ldl.deep import calibrate, temper

    p = np.array([[0.05, 0.1, 0.7, 0.1, 0.05]])
    wide = temper(p, 2.0)
    b = np.array(BINS)
    assert wide.sum() == pytest.approx(1.0) and wide[0, 2] < 0.7
    assert wide @ b == pytest.approx(p @ b)  # symmetric: the mean stays
    values, probs = calibrate(p, BINS, 2.0, (np.array([1.0, 5.0]), np.array([2.0, 4.0])))
    assert values[0] == pytest.approx(3.0) and probs.sum() == pytest.approx(1.0)
    model = _model()
    model.temperature = 1.7
    assert TopDistributionModel.load(model.save(tmp_path / "t.pt")).temperature == 1.7
    with pytest.raises(ValueError, match="temperature"):
        TopDistributionModel(model.top, BINS, temperature=0.0)


def test_a_top_saved_after_folding_loads(tmp_path):
    from facecore.nn.dlib_resnet import for_inference

    model = _model()
    faces = [_face(4)]
    ref = model.predict_logits(faces)
    model.top = for_inference(model.top)  # affines folded into the convolutions
    loaded = TopDistributionModel.load(model.save(tmp_path / "folded.pt"))
    np.testing.assert_allclose(loaded.predict_logits(faces), ref, atol=2e-2)


def test_an_int8_model_keeps_its_ranges_in_the_file(tmp_path):
    """with_int8 -> save -> load serves the same int8 top; precision="float32" the float one."""
    from facecore.nn.quantize import is_quantized

    model = _model()
    cal = np.stack([_face(s).features[map_key("stage4")] for s in range(10, 42)])
    q = model.with_int8(cal)
    assert model.int8 is None and not is_quantized(model.serving_top)
    assert is_quantized(q.serving_top) and set(q.int8) == {"qparams"}
    faces = [_face(0), _face(1)]
    ref, out = model.predict_logits(faces), q.predict_logits(faces)
    assert np.abs(out - ref).mean() < 0.1 * ref.std()  # int8 close to float
    path = q.save(tmp_path / "q.pt")
    loaded = TopDistributionModel.load(path)
    assert loaded.int8 == q.int8 and is_quantized(loaded.serving_top)
    # the file's float16 weights, re-quantized with the stored ranges
    np.testing.assert_allclose(loaded.predict_logits(faces), out, atol=0.1 * ref.std())
    flt = TopDistributionModel.load(path, precision="float32")
    assert not is_quantized(flt.serving_top)
    np.testing.assert_allclose(flt.predict_logits(faces), ref, atol=2e-2)
    with pytest.raises(ValueError, match="precision"):
        TopDistributionModel.load(path, precision="int4")


def test_an_ensemble_serves_the_average_of_its_tops_softmax(tmp_path):
    """members: the distribution is the mean of every top's softmax, float and int8, and the
    file keeps each member's weights and int8 ranges."""
    from facecore.nn.quantize import is_quantized

    model = _model()
    torch.manual_seed(1)
    other = BackboneTop(DlibFaceResNet(), start="stage5", num_outputs=len(BINS))
    ens = TopDistributionModel(model.top, BINS, members=(other,))
    faces = [_face(0), _face(1), _face(2)]
    alone = TopDistributionModel(other, BINS)
    expected = (softmax(model.predict_logits(faces)) + softmax(alone.predict_logits(faces))) / 2
    np.testing.assert_allclose(softmax(ens.predict_logits(faces)), expected, rtol=1e-5)
    assert not np.allclose(expected, softmax(model.predict_logits(faces)), atol=1e-3)
    loaded = TopDistributionModel.load(ens.save(tmp_path / "e.pt"))
    assert len(loaded.members) == 1
    np.testing.assert_allclose(softmax(loaded.predict_logits(faces)), expected, atol=5e-3)

    cal = np.stack([_face(s).features[map_key("stage4")] for s in range(10, 42)])
    q = ens.with_int8({"stage4": cal})
    assert len(q.int8["members"]) == 1 and all(is_quantized(m) for m in q.serving_members)
    back = TopDistributionModel.load(q.save(tmp_path / "eq.pt"))
    assert all(is_quantized(m) for m in back.serving_members)
    np.testing.assert_allclose(
        softmax(back.predict_logits(faces)), softmax(q.predict_logits(faces)), atol=0.02
    )
    flt = TopDistributionModel.load(tmp_path / "eq.pt", precision="float32")
    assert not any(is_quantized(m) for m in flt.serving_members)
