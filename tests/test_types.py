import dataclasses

import numpy as np
import pytest

from facecore.types import Box, Face


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
    f = Face(box=Box(0, 0, 1, 1), score=1.0, detector="hog", landmarks=lm)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.score = 2.0
    with pytest.raises(ValueError):
        f.landmarks[0, 0] = 5
    lm[0, 0] = 7  # the record keeps its own copy
    assert f.landmarks[0, 0] == 0
    assert f.landmarks.dtype == np.float32
    assert f.landmark_scheme == "ibug68"


def test_face_evolve_and_predictions():
    f = Face(box=Box(0, 0, 1, 1), score=0.5, detector="mtcnn")
    g = f.with_prediction("age", 31.2).evolve(embedding=np.ones(128))
    assert f.predictions == {} and f.embedding is None
    assert g.predictions == {"age": pytest.approx(31.2)}
    d = g.to_dict()
    assert d["box"] == [0, 0, 1, 1] and len(d["embedding"]) == 128
