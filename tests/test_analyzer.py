import io
import subprocess
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facecore
from facecore.align import AlignSpec, face_crop
from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
from facecore.detect import DetectorConfig, order_and_cap
from facecore.errors import UnknownModelError, UnknownStageError
from facecore.io import load_image
from facecore.types import Box, Face


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


# -- large photos: detected on a reduced copy, analysed at full resolution ----------------------


@pytest.fixture(scope="module")
def large_photo(tmp_path_factory) -> bytes:
    """obama.jpg enlarged to 3024x3780, JPEG q 90, by scripts/make_large_photo.py."""
    out = tmp_path_factory.mktemp("large") / "obama_3024x3780.jpg"
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_large_photo.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True)
    return out.read_bytes()


def test_large_photo_is_detected_on_a_reduced_copy(analyzer, large_photo, one_face_photo):
    """3780 px: the 1/4 DCT copy (945 px, 55% of a 1280-px copy's pixels) is the detector's
    input as it is; with ``large_jpeg_share=1`` the 1/2 copy is resized to 1280."""
    decoded = analyzer.decode(large_photo)
    assert decoded.pixels.shape == (3780, 3024, 3)
    assert decoded.view.shape == (945, 756, 3)
    assert decoded.scale == pytest.approx(4.0)
    exact = FaceAnalyzer(detector=DetectorConfig(large_jpeg_share=1.0)).decode(large_photo)
    assert exact.view.shape == (1280, 1024, 3)  # the detector's max_side
    assert exact.scale == pytest.approx(3780 / 1280)
    (face,) = analyzer.detect(large_photo)
    box = face.box
    assert 0 <= box.x1 < box.x2 <= 3024 and 0 <= box.y1 < box.y2 <= 3780
    # Full-resolution coordinates: the face of obama.jpg, 3780/1137 times larger (IoU 0.82
    # measured with the 1024x1280 copy, 0.81 with the 756x945 one, against HOG's box on the
    # 910x1137 original).
    (small,) = analyzer.detect(one_face_photo)
    k = 3780 / 1137
    assert Box(*(v / k for v in box.as_tuple())).iou(small.box) > 0.75


def test_large_photo_chips_are_cut_from_full_resolution(analyzer, large_photo):
    """The stages read the full-resolution pixels: the landmarks, chips and scores are those
    of the same boxes on the fully decoded photo, bit for bit; a chip cut from the detector's
    copy would differ (more than 1 grey level on average, measured 2.3 with the 1280-px copy)."""
    # One thread count for both runs: "auto" may pick another under load, which moves the
    # scores' last digits (facecore.threads).
    analyzer = FaceAnalyzer(analyzer.config, threads=1)
    faces = analyzer.analyze(large_photo)
    pixels = load_image(large_photo)
    found = [Face(box=f.box, detector_score=f.detector_score, detector=f.detector) for f in faces]
    reference = analyzer.run_stages(pixels, found)
    assert len(faces) == len(reference) == 1
    face, ref = faces[0], reference[0]
    np.testing.assert_array_equal(face.landmarks, ref.landmarks)
    spec = AlignSpec("dlib", 150, 0.25)  # the trunk's chip
    np.testing.assert_array_equal(face.crops[spec], ref.crops[spec])
    for name, prediction in ref.predictions.items():
        assert face.predictions[name].value == prediction.value, name
    decoded = analyzer.decode(large_photo)
    s = decoded.scale
    in_view = face.evolve(
        box=Box(*(v / s for v in face.box.as_tuple())), landmarks=face.landmarks / np.float32(s)
    )
    from_view = face_crop(decoded.view, in_view, spec)
    assert np.abs(from_view.astype(int) - face.crops[spec].astype(int)).mean() > 1.0


def test_large_photo_detected_at_max_side_finds_what_the_full_array_gives(analyzer, large_photo):
    """With ``large_jpeg_share=1`` the detector sees the 1/2 copy resized to 1280 px: the same
    boxes as detecting on the fully decoded array (which the detector shrinks itself)."""
    exact = FaceAnalyzer(analyzer.config, detector=DetectorConfig(large_jpeg_share=1.0))
    pixels = load_image(large_photo)
    full = order_and_cap(exact.detector.detect(pixels), exact.config.max_faces)
    assert [f.box for f in exact.detect(large_photo)] == [f.box for f in full]


def test_large_photo_scores_agree_with_the_original(analyzer, large_photo, one_face_photo):
    """Measured, large against original: attractiveness 2.7440 against 2.6666, age 57.80
    against 59.41, quality 0.8769 against 0.8769 (detected on the 1280-px copy: 2.7432, 57.37,
    0.8769; the enlargement and the chip cut from 3.3 times more pixels make the difference)."""
    (large,) = analyzer.analyze(large_photo)
    (small,) = analyzer.analyze(one_face_photo)
    measured = {"attractiveness": 0.078, "age": 1.61, "quality": 0.001}
    for name, diff in measured.items():
        gap = abs(large.predictions[name].value - small.predictions[name].value)
        assert gap <= 1.5 * diff, (name, gap)


def test_large_photo_holds_one_full_size_copy(analyzer, large_photo):
    """Python-side allocations while analysing the 11 Mpx photo: the full-resolution array
    (32.7 MiB), the detector's copy (the JPEG decoded at 1/4 scale, 2.0 MiB) and the strips
    of the conversion; 40.8 MiB measured (50.6 with the 1280-px copy), against 65.5 MiB (two
    full-size arrays at once) when decoding went through ``numpy.array``."""
    analyzer.analyze(large_photo)  # models loaded, caches warm
    tracemalloc.start()
    try:
        analyzer.analyze(large_photo)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full = 3780 * 3024 * 3
    assert full < peak < full + 12 * 2**20
