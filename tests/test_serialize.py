import json

import numpy as np
import pytest

from facecore.serialize import BASE_COLUMNS, FaceOut, WarningOut, batch_columns, face_row
from facecore.stages import Output
from facecore.types import Box, Face, FaceWarning, Prediction


def _face():
    probs = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    return Face(
        box=Box(1.5, 2, 30, 40),
        detector_score=0.75,
        detector="mtcnn",
        keypoints=np.arange(10).reshape(5, 2),
        landmarks=np.ones((68, 2)),
        embedding=np.full(128, 0.5),
        predictions={
            "attractiveness": Prediction.from_distribution([1, 2, 3, 4, 5], probs, "scut_ldl"),
            "age": Prediction(31.0, "age_x"),
        },
        features={"trunk": np.ones(896)},
    )


def test_face_record_fields_and_options():
    rec = FaceOut.from_face(_face())
    d = rec.model_dump(mode="json")
    assert d["box"] == [1.5, 2.0, 30.0, 40.0] and d["detector_score"] == 0.75
    assert len(d["keypoints"]) == 5 and len(d["landmarks"]) == 68
    assert d["embedding"] is None  # only when asked for
    att = d["predictions"]["attractiveness"]
    assert att["value"] == pytest.approx(3.0) and att["model"] == "scut_ldl"
    assert att["bins"] == [1, 2, 3, 4, 5] and att["interval"] == [1.0, 5.0]
    assert d["predictions"]["age"] == {
        "value": 31.0,
        "model": "age_x",
        "bins": None,
        "probabilities": None,
        "interval": None,
    }
    assert "features" not in d and "crops" not in d  # never serialised
    slim = FaceOut.from_face(_face(), points=False, embedding=True, predictions=("age",))
    assert slim.landmarks is None and slim.keypoints is None and len(slim.embedding) == 128
    assert list(slim.predictions) == ["age"]


def test_batch_columns_follow_the_outputs():
    outs = (Output("attractiveness", distribution=True), Output("age"))
    cols = batch_columns(outs)
    assert cols == (*BASE_COLUMNS, "attractiveness", "attractiveness_dist", "age", "error")


def test_face_row_flattens_the_same_record():
    rec = FaceOut.from_face(_face())
    row = face_row("a.jpg", 0, 1, rec)
    assert row["x1"] == "1.5000" and row["detector_score"] == "0.7500"
    assert row["attractiveness"] == "3.0000" and row["age"] == "31.0000"
    assert json.loads(row["attractiveness_dist"]) == pytest.approx([0.1, 0.2, 0.4, 0.2, 0.1])
    assert "age_dist" not in row


def test_warnings_are_what_the_faces_carry_with_their_index():
    """Each face's warnings in face order, the value rounded to 4 places and the message
    prefixed with the face's index; the serialiser names no stage."""
    low = FaceWarning("low_quality", 0.123456, 0.5, "image quality 0.12 is below 0.50")
    other = FaceWarning("other", 0.7, 0.8, "something else")
    faces = [_face(), _face().with_warning(low).with_warning(other), _face()]
    assert [w.model_dump() for w in WarningOut.for_faces(faces)] == [
        {
            "face": 1,
            "code": "low_quality",
            "quality": 0.1235,
            "threshold": 0.5,
            "message": "face 1: image quality 0.12 is below 0.50",
        },
        {
            "face": 1,
            "code": "other",
            "quality": 0.7,
            "threshold": 0.8,
            "message": "face 1: something else",
        },
    ]
    assert WarningOut.for_faces([_face()]) == []
    assert "warnings" not in FaceOut.from_face(faces[1]).model_dump()  # listed beside the faces
