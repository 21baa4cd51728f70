import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import facecore
from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
from facecore.errors import UnknownModelError, UnknownStageError
from facecore.io import load_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def variants(one_face_photo):
    """The same photo as JPEG, PNG, RGBA PNG, grayscale and EXIF-rotated JPEG."""
    base = Image.open(one_face_photo).convert("RGB")
    rgba = base.convert("RGBA")
    rotated = base.transpose(Image.Transpose.ROTATE_90)  # pixels stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...and tagged "rotate 90 CW to display", which undoes ROTATE_90
    return {
        "jpeg": _encode(base, "JPEG", quality=95),
        "png": _encode(base, "PNG"),
        "rgba": _encode(rgba, "PNG"),
        "gray": _encode(base.convert("L"), "PNG"),
        "exif": _encode(rotated, "JPEG", quality=95, exif=exif),
    }


def test_same_faces_for_every_encoding(analyzer, variants):
    ref = analyzer.analyze(variants["png"])
    assert len(ref) == 1
    iod = np.linalg.norm(ref[0].landmarks[36] - ref[0].landmarks[45])
    for name, data in variants.items():
        faces = analyzer.analyze(data)
        assert len(faces) == 1, name
        # measured: the same box (IoU 1.0) for all; landmark error at most 0.0115 of the
        # inter-ocular distance (JPEG), descriptor distance at most 0.050 (JPEG; gray 0.177)
        assert faces[0].box.iou(ref[0].box) > 0.95, name
        err = np.linalg.norm(faces[0].landmarks - ref[0].landmarks, axis=1).mean() / iod
        assert err < 1.5 * 0.0115, (name, err)
        dist = np.linalg.norm(faces[0].embedding - ref[0].embedding)
        assert dist < 1.5 * (0.177 if name == "gray" else 0.050), (name, dist)


def test_descriptors_separate_people(analyzer, two_face_photo, one_face_photo):
    a, b = analyzer.analyze(two_face_photo)
    (obama,) = analyzer.analyze(one_face_photo)
    assert a.embedding.shape == (128,)
    same = min(np.linalg.norm(obama.embedding - f.embedding) for f in (a, b))
    other = max(np.linalg.norm(obama.embedding - f.embedding) for f in (a, b))
    assert same < 0.6 < other  # dlib's same-person threshold
    assert same < 1.5 * 0.337 and other > 0.84 / 1.2  # measured: 0.337 and 0.840


def test_analyze_front_door_and_no_face(one_face_photo, no_face_photo):
    faces = facecore.analyze(one_face_photo)
    assert len(faces) == 1 and faces[0].landmarks.shape == (68, 2)
    assert facecore.analyze(no_face_photo) == []


def test_stage_selection(analyzer, one_face_photo):
    (f,) = analyzer.analyze(one_face_photo, stages=())
    assert f.landmarks is None and f.embedding is None
    (f,) = analyzer.analyze(one_face_photo, stages=("trunk",))  # pulls in landmarks
    assert f.landmarks.shape == (68, 2) and f.embedding.shape == (128,)
    with pytest.raises(UnknownStageError, match="unknown stage 'gender'"):
        analyzer.analyze(one_face_photo, stages=("gender",))


def test_config_is_validated():
    with pytest.raises(ValueError, match="detector must be one of"):
        AnalyzerConfig(detector="haar")
    with pytest.raises(ValueError, match="max_faces"):
        AnalyzerConfig(max_faces=0)
    with pytest.raises(UnknownStageError):
        FaceAnalyzer(stages=("nope",))
    with pytest.raises(ValueError, match="has no option"):
        FaceAnalyzer(stage_options={"trunk": {"colour": "red"}})
    with pytest.raises(UnknownModelError, match="no attractiveness model named 'nope'"):
        FaceAnalyzer(stage_options={"attractiveness": {"model": "nope"}})
    with pytest.raises(UnknownModelError, match="is a landmarks model"):
        FaceAnalyzer(stage_options={"attractiveness": {"model": "dlib_shape_predictor_68"}})


def test_config_from_strings():
    cfg = AnalyzerConfig(
        detector="hog", stages="landmarks, trunk", stage_options='{"trunk": {"batch_size": 4}}'
    )
    assert cfg.detector.name == "hog" and cfg.stages == ("landmarks", "trunk")
    assert cfg.stage_options == {"trunk": {"batch_size": 4}}
    with pytest.raises(ValueError, match="JSON"):
        AnalyzerConfig(stage_options="{nope")


def test_threads_setting_is_validated():
    assert AnalyzerConfig().threads == "auto"
    assert AnalyzerConfig(threads="2").threads == 2  # e.g. from an environment variable
    with pytest.raises(ValueError, match="threads must be 'auto' or a positive integer"):
        AnalyzerConfig(threads=0)


class ThreadsSeen:
    """A test stage that records torch's thread count of the thread that runs it."""

    name = "threads_seen"
    requires = ()
    provides = ()

    def __init__(self):
        self.seen = []

    def load(self):
        pass

    def __call__(self, image, faces):
        import torch

        self.seen.append(torch.get_num_threads())
        return faces


def test_each_call_runs_with_the_analyzers_threads_then_restores():
    import torch

    from facecore.types import Box, Face

    before = torch.get_num_threads()
    stage = ThreadsSeen()
    analyzer = FaceAnalyzer(stages=[stage], threads=1)
    face = Face(box=Box(0, 0, 10, 10), detector_score=1, detector="fake")
    analyzer.detect_loaded = lambda rgb: [face]
    image = np.zeros((32, 32, 3), np.uint8)
    analyzer.analyze(image)
    analyzer.run_stages(image, [face])
    assert stage.seen == [1, 1] and torch.get_num_threads() == before


def test_default_stages_are_the_default_heads():
    a = FaceAnalyzer()
    assert a.stages == ("landmarks", "trunk", "attractiveness", "age", "quality")
    assert a.prediction_names == ("attractiveness", "age", "quality")


def test_max_faces_keeps_the_largest(two_face_photo):
    both = FaceAnalyzer(stages=()).analyze(two_face_photo)
    (one,) = FaceAnalyzer(max_faces=1, stages=()).analyze(two_face_photo)
    assert one.box == max(both, key=lambda f: f.box.area).box
    assert one.box.area > min(f.box.area for f in both)


def test_per_call_model_option_builds_another_stage_once(analyzer):
    opts = {"attractiveness": {"model": "attractiveness_scut"}}
    assert analyzer.stage("attractiveness", opts["attractiveness"]) is analyzer.stage(
        "attractiveness", opts["attractiveness"]
    )


def test_threads_share_one_analyzer(two_face_photo, one_face_photo):
    analyzer = FaceAnalyzer()  # not loaded: threads race to load it too
    imgs = [load_image(two_face_photo), load_image(one_face_photo)] * 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(analyzer.analyze, imgs))
    serial = [analyzer.analyze(i) for i in imgs[:2]]
    for got, want in zip(results, serial * 4, strict=True):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.embedding, w.embedding, atol=1e-6)
            np.testing.assert_allclose(g.landmarks, w.landmarks)
