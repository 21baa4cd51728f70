"""BlazeFace as a facecore detector: anchors, decoding, NMS, letterboxing, and real photos."""

from __future__ import annotations

import numpy as np
import pytest

from facecore.detect import BlazeFaceDetector, DetectorConfig, detect_faces
from facecore.detect.blazeface import (
    anchor_centres,
    decode,
    drop_contained,
    five_from_6,
    letterbox,
    weighted_nms,
)
from facecore.evaluation import read_dlib_xml
from facecore.io import load_image
from facecore.landmarks import predictor_box

pytestmark = pytest.mark.usefixtures("torch_single_thread")

PHOTO, XML = "2008_002470.jpg", "testing_with_face_landmarks.xml"


def test_anchor_centres_follow_the_output_order() -> None:
    a = anchor_centres([(2, 2), (1, 3)])
    assert a.shape == (2 * 2 * 2 + 3, 2)
    # row by row, x fastest, the anchors of a cell together
    np.testing.assert_allclose(a[:4], [[0.25, 0.25]] * 2 + [[0.75, 0.25]] * 2)
    np.testing.assert_allclose(a[4:6], [[0.25, 0.75]] * 2)
    np.testing.assert_allclose(a[-3:], [[0.5, 0.5]] * 3)


def test_decode_offsets_are_input_pixels_around_the_anchor() -> None:
    reg = np.zeros((1, 16), np.float32)
    reg[0, :4] = [16, -32, 64, 32]  # centre +16/-32 px, 64 x 32 px
    reg[0, 4:6] = [8, 8]  # first keypoint
    boxes, kps, probs = decode(np.array([0.0]), reg, np.array([[0.5, 0.5]]), 128)
    np.testing.assert_allclose(boxes[0], [0.375, 0.125, 0.875, 0.375])
    np.testing.assert_allclose(kps[0, 0], [0.5625, 0.5625])
    np.testing.assert_allclose(kps[0, 1:], 0.5)
    assert probs[0] == pytest.approx(0.5)
    _, _, clipped = decode(np.array([-1e6, 1e6]), np.zeros((2, 16)), np.zeros((2, 2)), 128)
    assert np.isfinite(clipped).all() and clipped[0] < 1e-30 and clipped[1] == 1.0


def test_weighted_nms_merges_overlaps_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    kps[1] += 4.0
    scores = np.array([0.9, 0.3, 0.8], np.float32)
    merged = weighted_nms(boxes, kps, scores, 0.3)
    assert [s for _, _, s in merged] == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(merged[0][0], [0.25, 0, 10.25, 10])  # (0.9*0 + 0.3*1) / 1.2
    np.testing.assert_allclose(merged[0][1], 1.0)
    plain = weighted_nms(boxes, kps, scores, 0.3, weighted=False)
    np.testing.assert_allclose(plain[0][0], boxes[0])


def test_drop_contained_keeps_overlapping_neighbours() -> None:
    kps = np.zeros((6, 2), np.float32)
    big = (np.array([0, 0, 100, 100], np.float32), kps, 0.9)
    inside = (np.array([0, 40, 50, 120], np.float32), kps, 0.7)  # 75% of it inside big
    beside = (np.array([60, 0, 160, 100], np.float32), kps, 0.8)  # 40% inside
    kept = drop_contained([big, beside, inside], 0.6)
    assert [d[2] for d in kept] == [0.9, 0.8]
    assert len(drop_contained([big, beside, inside], 0.8)) == 3


def test_five_from_6_is_mtcnns_layout() -> None:
    six = np.array([[10, 20], [30, 21], [20, 30], [20, 40], [0, 25], [40, 25]], np.float64)
    five = five_from_6(six)
    # image-left eye (the person's right), image-right eye, nose tip, the mouth centre in both
    # mouth-corner places; the ears dropped
    assert five.dtype == np.float32
    assert five.tolist() == [[10, 20], [30, 21], [20, 30], [20, 40], [20, 40]]
    with pytest.raises(ValueError, match="expected"):
        five_from_6(np.zeros((5, 2)))


def test_letterbox_centres_the_image() -> None:
    img = np.full((50, 100, 3), 255, np.uint8)
    square, scale, dx, dy = letterbox(img, 128)
    assert square.shape == (128, 128, 3) and scale == pytest.approx(1.28)
    assert (dx, dy) == (0.0, 32.0)
    assert square[31].max() == 0 and square[32].min() == 255 and square[96].max() == 0


@pytest.fixture(scope="module")
def detectors() -> dict[str, BlazeFaceDetector]:
    return {v: DetectorConfig(name=f"blazeface_{v}").build() for v in ("back", "short")}


@pytest.mark.parametrize(
    ("variant", "iou", "start_iou"), [("back", 0.875, 0.805), ("short", 0.826, 0.951)]
)
def test_finds_the_face_hog_finds(
    detectors, one_face_photo, variant: str, iou: float, start_iou: float
) -> None:
    img = load_image(one_face_photo)
    (hog,) = detect_faces(img, "hog")
    (det,) = detectors[variant].detections(img)
    assert det.box.iou(hog.box) == pytest.approx(iou, abs=0.01)  # measured
    assert det.score > 0.9
    kp = det.keypoints  # person's right eye, left eye, nose, mouth, right ear, left ear
    assert kp.shape == (6, 2)
    assert kp[0, 0] < kp[2, 0] < kp[1, 0]  # the person's right eye on the image's left
    assert kp[4, 0] < kp[0, 0] and kp[1, 0] < kp[5, 0]  # ears outside the eyes
    assert kp[0, 1] < kp[2, 1] < kp[3, 1]  # eyes above the nose above the mouth
    b = det.box
    assert np.all((kp[:4, 0] > b.x1) & (kp[:4, 0] < b.x2) & (kp[:4, 1] > b.y1) & (kp[:4, 1] < b.y2))
    # the face record's keypoints give the landmark predictor a box near HOG's (measured)
    (face,) = detectors[variant].detect(img)
    assert predictor_box(face).iou(hog.box) == pytest.approx(start_iou, abs=0.01)


@pytest.mark.parametrize("variant", ["back", "short"])
def test_two_people_and_no_face(detectors, two_face_photo, no_face_photo, variant) -> None:
    faces = detect_faces(two_face_photo, detectors[variant])
    assert len(faces) == 2
    xs = sorted(f.box.center[0] for f in faces)
    w = load_image(two_face_photo).shape[1]
    assert xs[0] < w / 2 < xs[1]
    assert all(f.detector == f"blazeface_{variant}" for f in faces)
    dets = sorted(
        detectors[variant].detections(load_image(two_face_photo)), key=lambda d: -d.box.area
    )
    for face, det in zip(faces, dets, strict=True):
        assert face.box == det.box
        np.testing.assert_array_equal(face.keypoints, five_from_6(det.keypoints))
    assert detect_faces(no_face_photo, detectors[variant]) == []


def test_small_faces_of_a_group_photo(detectors, fixtures) -> None:
    # 2008_002470.jpg (dlib's examples, faces of about 40 px): HOG finds none without
    # upsampling; every box of dlib's annotation is matched.
    truth = [f.box for f in read_dlib_xml(fixtures / "dlib_faces" / XML) if f.file == PHOTO]
    faces = detectors["back"].detect(load_image(fixtures / "dlib_faces" / PHOTO))
    assert len(truth) == len(faces) == 6
    assert all(max(f.box.iou(t) for f in faces) > 0.5 for t in truth)


def test_one_face_filling_the_photo_gives_one_box(detectors, data_root) -> None:
    # A UTKFace crop on which the 256x256 model also boxes part of the same face (measured:
    # IoU 0.34 with the face's box, 96% of it inside): only one face is reported.
    path = data_root / "utkface" / "images" / "13_0_0_20170110224531616.jpg.chip.jpg"
    img = load_image(path)
    assert len(detectors["back"].detections(img)) == 1
    plain = BlazeFaceDetector("back", max_contained=None)
    assert len(plain.detections(img)) == 2


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="variant must be one of"):
        BlazeFaceDetector("front")
    with pytest.raises(ValueError, match="threshold must be in"):
        BlazeFaceDetector(threshold=1.5)
