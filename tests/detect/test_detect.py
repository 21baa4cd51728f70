import numpy as np
import pytest

from facecore.detect import HogDetector, MtcnnDetector, detect_faces, make_detector
from facecore.detect.base import order_and_cap
from facecore.io import load_image
from facecore.types import Box, Face


@pytest.mark.parametrize("detector", ["hog", "mtcnn", "auto"])
def test_two_people(two_face_photo, detector):
    faces = detect_faces(two_face_photo, detector=detector)
    assert len(faces) == 2
    # the two faces are in the left and right halves of the photo
    xs = sorted(f.box.center[0] for f in faces)
    w = load_image(two_face_photo).shape[1]
    assert xs[0] < w / 2 < xs[1]
    assert faces[0].box.area >= faces[1].box.area
    for f in faces:
        assert f.detector == ("hog" if detector == "auto" else detector)


@pytest.mark.parametrize("detector", ["hog", "mtcnn"])
def test_no_face(no_face_photo, detector):
    assert detect_faces(no_face_photo, detector=detector) == []


def test_mtcnn_gives_five_points_inside_the_box(one_face_photo):
    (face,) = detect_faces(one_face_photo, detector="mtcnn")
    assert face.keypoints.shape == (5, 2) and face.landmarks is None
    kp, b = face.keypoints, face.box
    assert np.all((kp[:, 0] > b.x1) & (kp[:, 0] < b.x2))
    assert np.all((kp[:, 1] > b.y1) & (kp[:, 1] < b.y2))
    # image-left eye is left of image-right eye, mouth below the eyes
    assert kp[0, 0] < kp[1, 0]
    assert kp[3, 1] > kp[0, 1]
    assert face.detector_score == pytest.approx(0.99974, abs=1e-4)  # measured


def test_hog_and_mtcnn_agree_on_the_face(one_face_photo):
    (h,) = detect_faces(one_face_photo, detector="hog")
    (m,) = detect_faces(one_face_photo, detector="mtcnn")
    assert h.box.iou(m.box) > 0.6  # measured 0.72


def test_upsampling_finds_small_faces(fixtures):
    img = load_image(fixtures / "dlib_faces" / "2008_002470.jpg")
    plain = HogDetector(upsample=0).detect(img)
    up = HogDetector(upsample=1).detect(img)
    assert len(up) > len(plain)


def test_downscaled_detection_maps_boxes_back(one_face_photo):
    img = load_image(one_face_photo)
    (full,) = HogDetector(max_side=None).detect(img)
    (small,) = HogDetector(max_side=600).detect(img)
    assert full.box.iou(small.box) > 0.76  # measured 0.84


def test_order_and_cap():
    faces = [
        Face(box=Box(0, 0, 10, 10), detector_score=1, detector="hog"),
        Face(box=Box(0, 0, 30, 30), detector_score=0.5, detector="hog"),
        Face(box=Box(0, 0, 20, 20), detector_score=2, detector="hog"),
    ]
    out = order_and_cap(faces, 2)
    assert [f.box.x2 for f in out] == [30, 20]


def test_detector_arguments_are_checked():
    with pytest.raises(ValueError, match="detector must be one of"):
        make_detector("haar")
    with pytest.raises(ValueError, match="upsample"):
        HogDetector(upsample=9)
    with pytest.raises(TypeError):
        make_detector("auto", bogus=1)
    assert isinstance(make_detector("auto", mtcnn_threshold=0.5).mtcnn, MtcnnDetector)


@pytest.mark.parametrize("shape", [(16, 16), (19, 300), (300, 17), (40, 40)])
def test_tiny_images_give_no_face_not_an_error(shape):
    img = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    assert MtcnnDetector().detect(img) == []
    assert detect_faces(img, detector="auto") == []
