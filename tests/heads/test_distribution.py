"""TopDistributionModel: its file (float16, int8 ranges, ensembles) and the router's loader."""

import json

import numpy as np
import pytest
import torch
from scipy.special import softmax

from facecore import model_router
from facecore.errors import ModelCorruptError
from facecore.heads.distribution import TOP_ARCHITECTURE, TopDistributionModel
from facecore.model_store import sha256_file
from facecore.nn.dlib_resnet import DlibFaceResNet
from facecore.nn.top import BackboneTop
from facecore.trunk import map_key
from facecore.types import Box, Face

BINS = tuple(float(b) for b in range(1, 6))


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
    raw = softmax(ref, axis=1) @ np.array(BINS)
    # The value is the calibrated expectation (float16 weights: close to the reference's);
    # the distribution is translated towards it (inexactly where mass reaches an end bin).
    np.testing.assert_allclose(values, np.interp(raw, [1, 5], [1.5, 4.5]), atol=0.15)
    np.testing.assert_allclose(probs @ np.array(BINS), values, atol=0.5)
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(ModelCorruptError):
        TopDistributionModel.load(tmp_path / "bad.pt")


def test_the_temperature_is_checked_and_saved(tmp_path):
    model = _model()
    model.temperature = 1.7
    assert TopDistributionModel.load(model.save(tmp_path / "t.pt")).temperature == 1.7
    with pytest.raises(ValueError, match="temperature"):
        TopDistributionModel(model.top, BINS, temperature=0.0)


def test_the_router_loads_a_top_ready_to_serve(tmp_path):
    """Entries of architecture TOP_ARCHITECTURE are read by load_top: int8 tops quantized,
    one object per (name, folder, precision)."""
    from facecore.nn.quantize import is_quantized

    cal = np.stack([_face(s).features[map_key("stage4")] for s in range(10, 42)])
    path = _model().with_int8(cal).save(tmp_path / "q.pt")
    entry = {"name": "q", "file": "q.pt", "sha256": sha256_file(path)}
    entry["architecture"] = TOP_ARCHITECTURE
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [entry]}))
    served = model_router.load("q", tmp_path)
    assert isinstance(served, TopDistributionModel) and is_quantized(served._serving)
    assert model_router.load("q", tmp_path) is served
    flt = model_router.load("q", tmp_path, precision="float32")
    assert flt is not served and not is_quantized(flt.serving_top)
    faces = [_face(0), _face(1)]
    values, probs = served.serve(np.zeros((1, 1, 3), np.uint8), faces)
    np.testing.assert_allclose(values, probs @ np.array(BINS), atol=1e-9)  # no calibration
    np.testing.assert_allclose(probs, softmax(served.predict_logits(faces), axis=1), atol=1e-6)


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
    expected = (
        softmax(model.predict_logits(faces), axis=1) + softmax(alone.predict_logits(faces), axis=1)
    ) / 2
    np.testing.assert_allclose(softmax(ens.predict_logits(faces), axis=1), expected, rtol=1e-5)
    assert not np.allclose(expected, softmax(model.predict_logits(faces), axis=1), atol=1e-3)
    loaded = TopDistributionModel.load(ens.save(tmp_path / "e.pt"))
    assert len(loaded.members) == 1
    np.testing.assert_allclose(softmax(loaded.predict_logits(faces), axis=1), expected, atol=5e-3)

    cal = np.stack([_face(s).features[map_key("stage4")] for s in range(10, 42)])
    q = ens.with_int8({"stage4": cal})
    assert len(q.int8["members"]) == 1 and all(is_quantized(m) for m in q.serving_members)
    back = TopDistributionModel.load(q.save(tmp_path / "eq.pt"))
    assert all(is_quantized(m) for m in back.serving_members)
    np.testing.assert_allclose(
        softmax(back.predict_logits(faces), axis=1),
        softmax(q.predict_logits(faces), axis=1),
        atol=0.02,
    )
    flt = TopDistributionModel.load(tmp_path / "eq.pt", precision="float32")
    assert not any(is_quantized(m) for m in flt.serving_members)
