import dataclasses

import numpy as np
import pytest

from facecore.types import Box, DecodedImage, Face, FaceWarning, Prediction


def test_box_geometry():
    b = Box(10, 20, 30, 60)
    assert (b.width, b.height, b.area) == (20, 40, 800)
    assert b.center == (20, 40)
    assert b.clip(25, 50).as_tuple() == (10, 20, 25, 50)
    assert b.iou(b) == pytest.approx(1.0)
    assert b.iou(Box(30, 60, 40, 70)) == 0.0
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_face_is_frozen_and_arrays_read_only():
    lm = np.zeros((68, 2))
    f = Face(box=Box(0, 0, 1, 1), detector_score=1.0, detector="hog", landmarks=lm)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.detector_score = 2.0
    with pytest.raises(ValueError):
        f.landmarks[0, 0] = 5
    lm[0, 0] = 7  # the record keeps its own copy
    assert f.landmarks[0, 0] == 0
    assert f.landmarks.dtype == np.float32


def test_keypoints_and_landmarks_are_separate_and_shape_checked():
    kp = np.arange(10).reshape(5, 2)
    f = Face(box=Box(0, 0, 1, 1), detector_score=0.99, detector="mtcnn", keypoints=kp)
    assert f.keypoints.shape == (5, 2) and f.landmarks is None
    with pytest.raises(ValueError, match="landmarks must have shape"):
        Face(box=Box(0, 0, 1, 1), detector_score=1, detector="hog", landmarks=kp)
    with pytest.raises(ValueError, match="keypoints must have shape"):
        Face(box=Box(0, 0, 1, 1), detector_score=1, detector="hog", keypoints=np.zeros((68, 2)))


def test_face_evolve_and_predictions():
    f = Face(box=Box(0, 0, 1, 1), detector_score=0.5, detector="mtcnn")
    g = f.with_prediction("age", Prediction(31.2, "age_x")).evolve(embedding=np.ones(128))
    assert f.predictions == {} and f.embedding is None
    assert g.predictions["age"].value == pytest.approx(31.2)
    assert g.predictions["age"].model == "age_x"
    with pytest.raises(TypeError, match="must be a Prediction"):
        f.evolve(predictions={"age": 31.2})


def test_face_warnings_are_added_not_replaced():
    f = Face(box=Box(0, 0, 1, 1), detector_score=0.5, detector="hog")
    a, b = FaceWarning("low_quality", 0.2, 0.5, "a"), FaceWarning("other", 0.1, 0.3, "b")
    g = f.with_warning(a).with_prediction("age", Prediction(31.2, "age_x")).with_warning(b)
    assert f.warnings == () and g.warnings == (a, b)
    assert g.evolve(landmarks=np.zeros((68, 2))).warnings == (a, b)
    assert Face(box=Box(0, 0, 1, 1), detector_score=0.5, detector="hog", warnings=[a]).warnings == (
        a,
    )


def test_evolve_keeps_the_crop_cache_unless_geometry_changes():
    f = Face(box=Box(0, 0, 1, 1), detector_score=0.5, detector="hog")
    f.crops["spec"] = np.zeros((2, 2, 3), np.uint8)
    assert "spec" in f.with_prediction("a", Prediction(1.0, "m")).crops
    assert f.evolve(landmarks=np.zeros((68, 2))).crops == {}
    assert f.evolve(box=Box(0, 0, 2, 2)).crops == {}


def test_evolving_does_not_copy_frozen_arrays():
    big = np.ones((128, 8, 8), np.float32)
    f = Face(box=Box(0, 0, 1, 1), detector_score=1, detector="hog", features={"m": big})
    g = f.with_prediction("a", Prediction(1.0, "m"))
    assert g.features["m"] is f.features["m"]


def test_prediction_distribution_expectation_and_interval():
    bins = list(range(1, 11))
    probs = np.zeros(10)
    probs[[3, 4, 5]] = [0.25, 0.5, 0.25]  # ratings 4, 5, 6
    p = Prediction.from_distribution(bins, probs, model="m")
    assert p.value == pytest.approx(5.0)
    assert p.interval(0.9) == (4.0, 6.0)  # 5% in each tail falls inside the outer bins
    assert p.interval(0.4) == (5.0, 5.0)  # the middle bin holds 50%
    assert p.has_distribution and p.probabilities.sum() == pytest.approx(1.0)
    assert Prediction(3.0, "m").interval() is None


def test_prediction_validation():
    with pytest.raises(ValueError, match="both bins and probabilities"):
        Prediction(1.0, "m", bins=(1.0, 2.0))
    with pytest.raises(ValueError, match="sum to 1"):
        Prediction(1.0, "m", bins=(1.0, 2.0), probabilities=np.array([0.2, 0.2]))
    with pytest.raises(ValueError, match="increasing"):
        Prediction(1.0, "m", bins=(2.0, 1.0), probabilities=np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="shape"):
        Prediction(1.0, "m", bins=(1.0, 2.0), probabilities=np.array([1.0]))


def test_decoded_image_maps_faces_from_the_view_to_full_resolution():
    pixels = np.zeros((400, 300, 3), np.uint8)
    view = np.zeros((200, 150, 3), np.uint8)
    points = np.array([[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]], np.float32)
    found = [
        Face(box=Box(10, 20, 50, 60), detector_score=0.9, detector="mtcnn", keypoints=points),
        Face(box=Box(120, 180, 160, 210), detector_score=0.5, detector="hog"),
    ]
    a, b = DecodedImage(pixels, view, 2.0).to_full(found)
    assert a.box == Box(20, 40, 100, 120) and a.detector_score == 0.9 and a.detector == "mtcnn"
    np.testing.assert_array_equal(a.keypoints, points * 2)
    assert a.keypoints.dtype == np.float32
    assert b.box == Box(240, 360, 300, 400) and b.keypoints is None  # clipped to 300 x 400
    same = DecodedImage(pixels, pixels).to_full(found)  # a small image: its own view
    assert same[0] is found[0] and same[1] is found[1]
