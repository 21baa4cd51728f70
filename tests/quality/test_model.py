"""The quality model file and the ``quality`` stage with the shipped model."""

import cv2
import numpy as np
import pytest

import facecore
from facecore.errors import ModelCorruptError, UnknownModelError
from facecore.io import load_image
from facecore.quality.model import QualityModel, QualityStage
from facecore.quality.network import build

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_save_load_round_trip(tmp_path):
    net = build("quality_map_head").eval()
    model = QualityModel(
        "quality_map_head", net, (np.array([-1.0, 1.0]), np.array([0.0, 1.0])), 0.4
    )
    path = model.save(tmp_path / "q.pt")
    back = QualityModel.load(path)
    assert back.warn_below == 0.4 and back.input_node == "stage2"
    maps = np.random.default_rng(0).normal(size=(3, 64, 17, 17)).astype(np.float32)
    # float16 storage: the same scores within half precision.
    np.testing.assert_allclose(back.raw_scores(maps), model.raw_scores(maps), atol=2e-2)
    q = back.predict(maps)
    assert q.shape == (3,) and np.all((q >= 0) & (q <= 1))
    np.testing.assert_allclose(back.calibrate(np.array([-5.0, 0.0, 5.0])), [0.0, 0.5, 1.0])


def test_broken_files_are_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelCorruptError):
        QualityModel.load(bad)
    import torch

    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ModelCorruptError, match="not a"):
        QualityModel.load(tmp_path / "other.pt")


def test_unknown_or_wrong_model_is_refused():
    with pytest.raises(UnknownModelError):
        QualityStage(model="nope")
    with pytest.raises(UnknownModelError):
        QualityStage(model="age_utkface")


def test_stage_declares_its_output():
    stage = QualityStage()
    (out,) = stage.provides
    assert out.name == "quality" and not out.distribution and out.scale == (0.0, 1.0)
    assert stage.requires == ("trunk",) and stage.default


def test_is_a_default_head(one_face_photo):
    (face,) = facecore.analyze(one_face_photo)
    assert 0.0 <= face.predictions["quality"].value <= 1.0
    assert face.predictions["quality"].model == "quality_faces"


@pytest.mark.parametrize("damage", ["blur", "downscale", "dark"])
def test_damaged_photo_scores_lower_and_warns(analyzer, one_face_photo, damage):
    """The issue's done-when check, in the library: the sharp original is above the warning
    threshold, a badly damaged copy below it."""
    from facecore.serialize import WarningOut

    img = load_image(one_face_photo)
    if damage == "blur":
        bad = cv2.GaussianBlur(img, (0, 0), 10)
    elif damage == "downscale":
        h, w = img.shape[:2]
        bad = cv2.resize(cv2.resize(img, (w // 16, h // 16), interpolation=cv2.INTER_AREA), (w, h))
    else:
        bad = (img.astype(np.float32) * 0.06).astype(np.uint8)
    (good_face,) = analyzer.analyze(img)
    bad_faces = analyzer.analyze(bad)
    assert bad_faces, f"the {damage} copy lost its face"
    good_q = good_face.predictions["quality"].value
    bad_q = bad_faces[0].predictions["quality"].value
    assert bad_q < good_q - 0.2
    assert WarningOut.for_faces([good_face]) == []
    (w,) = WarningOut.for_faces(bad_faces[:1])
    assert w.face == 0 and w.quality == pytest.approx(bad_q, abs=1e-4)
