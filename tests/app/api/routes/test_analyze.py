"""POST /v1/analyze: stage selection, per-head models, the face records, and (on the real models)
the same numbers as the library."""

import base64

import numpy as np
import pytest
from fakes import FAKE_QUALITY, FAKE_QUALITY_THRESHOLD

from facecore.stages import Stage

ALL = ("attractiveness", "age", "quality")

#: The fake app's warning for its second face (quality 0.2 < threshold 0.5).
LOW_SECOND = {
    "face": 1,
    "code": "low_quality",
    "quality": FAKE_QUALITY[1],
    "threshold": FAKE_QUALITY_THRESHOLD,
}


def test_default_stages_give_every_prediction(fake_client, fake_analyzer, png, fake_face_json):
    r = fake_client.post("/v1/analyze", files={"file": ("x.png", png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    (warning,) = body.pop("warnings")
    assert body == {
        "image": {"width": 96, "height": 64},
        "stages": ["landmarks", "trunk", "attractiveness", "age", "quality"],
        "faces": [fake_face_json(0, predictions=ALL), fake_face_json(1, predictions=ALL)],
    }
    assert {k: warning[k] for k in LOW_SECOND} == LOW_SECOND
    assert "face 1" in warning["message"]
    # One decode, one detection, each stage once on the decoded image with both faces.
    assert fake_analyzer.detected == [(64, 96, 3)]
    assert {n: s.calls for n, s in fake_analyzer.fakes.items()} == {
        n: [((64, 96, 3), 2)] for n in fake_analyzer.fakes
    }


def test_fakes_are_stages(fake_analyzer):
    assert all(isinstance(s, Stage) for s in fake_analyzer.fakes.values())


def test_json_body_gives_the_same_answer(fake_client, png):
    multipart = fake_client.post("/v1/analyze", files={"file": png})
    data = base64.b64encode(png).decode()
    plain = fake_client.post("/v1/analyze", json={"image_base64": data})
    data_url = fake_client.post(
        "/v1/analyze", json={"image_base64": "data:image/png;base64," + data}
    )
    assert multipart.status_code == plain.status_code == data_url.status_code == 200
    assert plain.json() == multipart.json() == data_url.json()


@pytest.mark.parametrize(
    "query,order,predictions",
    [
        ("attractiveness", ["landmarks", "trunk", "attractiveness"], ("attractiveness",)),
        ("age", ["landmarks", "trunk", "age"], ("age",)),
        (
            " age , attractiveness ",
            ["landmarks", "trunk", "attractiveness", "age"],
            ("attractiveness", "age"),
        ),
        ("quality", ["landmarks", "trunk", "quality"], ("quality",)),
        ("trunk,landmarks", ["landmarks", "trunk"], ()),
        ("landmarks", ["landmarks"], ()),
    ],
)
def test_stages_query(fake_client, fake_analyzer, png, fake_face_json, query, order, predictions):
    r = fake_client.post("/v1/analyze", params={"stages": query}, files={"file": png})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stages"] == order
    assert body["faces"] == [fake_face_json(i, predictions=predictions) for i in range(2)]
    assert fake_analyzer.calls() == {n: int(n in order) for n in fake_analyzer.fakes}
    # A warning needs the quality stage: without it there is nothing to warn about.
    assert [w["face"] for w in body["warnings"]] == ([1] if "quality" in order else [])


def test_empty_stages_detects_only(fake_client, fake_analyzer, png, fake_face_json):
    r = fake_client.post("/v1/analyze?stages=", files={"file": png})
    assert r.status_code == 200, r.text
    assert r.json()["stages"] == []
    assert r.json()["faces"] == [fake_face_json(i, landmarks=False) for i in range(2)]
    assert fake_analyzer.calls() == dict.fromkeys(fake_analyzer.fakes, 0)


def test_descriptor(fake_client, png, fake_face_json):
    r = fake_client.post("/v1/analyze?descriptor=true", files={"file": png})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == [
        fake_face_json(i, embedding=True, predictions=ALL) for i in range(2)
    ]


def test_no_face(fake_client, fake_analyzer, png):
    fake_analyzer.faces = []
    r = fake_client.post("/v1/analyze", files={"file": png})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == [] and r.json()["warnings"] == []
    assert r.json()["stages"] == ["landmarks", "trunk", "attractiveness", "age", "quality"]


@pytest.mark.parametrize(
    "query,code",
    [
        ("stages=nope", "unknown_stage"),
        ("stages=landmarks,nope", "unknown_stage"),
        ("model=attractiveness=nope", "unknown_model"),
        ("model=attractiveness=dlib_shape_predictor_68", "unknown_model"),  # another task's
        ("stages=attractiveness&model=attractiveness=nope", "unknown_model"),
        ("model=nope=attractiveness_scut", "unknown_stage"),
        ("model=attractiveness_scut", "invalid_request"),  # needs HEAD=NAME here
        ("model==attractiveness_scut", "invalid_request"),
        ("model=attractiveness=", "invalid_request"),
        ("model=landmarks=x", "invalid_request"),  # landmarks takes no model: once a 500
        ("descriptor=maybe", "invalid_request"),
        ("model=trunk=nope", "unknown_model"),
    ],
)
def test_bad_query_is_422_before_decoding(
    fake_client, fake_analyzer, png, assert_error, query, code
):
    assert_error(fake_client.post(f"/v1/analyze?{query}", files={"file": png}), 422, code)
    assert fake_analyzer.detected == []


def test_bad_image(fake_client, assert_error):
    r = fake_client.post("/v1/analyze", files={"file": ("x.jpg", b"not an image")})
    assert_error(r, 422, "undecodable_image")


# -- the real models -----------------------------------------------------------------------------


def test_obama_matches_the_library(client, one_face_photo, golden_scores):
    import facecore

    r = client.post("/v1/analyze", files={"file": one_face_photo.open("rb")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stages"] == ["landmarks", "trunk", "attractiveness", "age", "quality"]
    assert body["warnings"] == []
    (face,) = body["faces"]
    assert face["box"] == pytest.approx([366, 136, 625, 395], abs=1)
    assert face["detector"] == "hog" and face["keypoints"] is None
    att = face["predictions"]["attractiveness"]
    assert att["model"] == "attractiveness_scut"
    assert att["value"] == pytest.approx(golden_scores["obama.jpg"][0], abs=1e-3)  # golden

    (lib,) = facecore.analyze(one_face_photo)
    assert face["box"] == list(lib.box.as_tuple())
    assert face["detector_score"] == pytest.approx(lib.detector_score, abs=1e-9)
    np.testing.assert_allclose(face["landmarks"], lib.landmarks, atol=1e-4)
    # The service's workers run one thread, the library here two: the SVR's float16 product
    # sums in another order (a few 1e-6 on the 1-5 scale).
    assert att["value"] == pytest.approx(lib.predictions["attractiveness"].value, abs=1e-4)


def test_blurred_photo_gets_low_quality_and_a_warning(client, one_face_photo):
    """The quality issue's done-when check: a blurred copy of a photo gets a low quality and a
    warning naming its face; the sharp original a high one and no warning."""
    import cv2

    from facecore.io import load_image

    img = load_image(one_face_photo)
    ok, jpg = cv2.imencode(".jpg", cv2.GaussianBlur(img, (0, 0), 10)[..., ::-1])
    assert ok
    sharp = client.post("/v1/analyze", files={"file": one_face_photo.open("rb")}).json()
    r = client.post("/v1/analyze", files={"file": ("blurred.jpg", jpg.tobytes(), "image/jpeg")})
    assert r.status_code == 200, r.text
    blurred = r.json()
    q_sharp = sharp["faces"][0]["predictions"]["quality"]["value"]
    q_blur = blurred["faces"][0]["predictions"]["quality"]["value"]
    assert q_blur < q_sharp - 0.2
    assert sharp["warnings"] == []
    (w,) = blurred["warnings"]
    assert w["face"] == 0 and w["code"] == "low_quality" and w["quality"] < w["threshold"]
    # The single-head views carry the same warning.
    for route in ("/v1/score", "/v1/age"):
        view = client.post(route, files={"file": ("b.jpg", jpg.tobytes(), "image/jpeg")}).json()
        assert [x["face"] for x in view["warnings"]] == [0], route
        assert "quality" not in view["faces"][0]["predictions"]
