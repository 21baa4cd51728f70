"""POST /v1/score: attractiveness only, a view of /v1/analyze."""

import pytest


def test_score_shape(fake_client, fake_analyzer, png, fake_face_json):
    r = fake_client.post("/v1/score", files={"file": png})
    assert r.status_code == 200, r.text
    body = r.json()
    warnings = body.pop("warnings")
    assert body == {
        "image": {"width": 96, "height": 64},
        "model": "fake_attractiveness",
        "scale": [1.0, 5.0],
        "faces": [fake_face_json(i, points=False, predictions=("attractiveness",)) for i in (0, 1)],
    }
    # The head, what it needs and the quality head (for the warnings), not the other heads.
    assert fake_analyzer.calls() == {
        "landmarks": 1,
        "trunk": 1,
        "attractiveness": 1,
        "age": 0,
        "quality": 1,
    }
    assert [(w["face"], w["code"]) for w in warnings] == [(1, "low_quality")]


def test_no_face(fake_client, fake_analyzer, png):
    fake_analyzer.faces = []
    r = fake_client.post("/v1/score", files={"file": png})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == [] and r.json()["model"] == "fake_attractiveness"


@pytest.mark.parametrize(
    "query,code",
    [
        ("model=nope", "unknown_model"),
        ("model=dlib_face_recognition_resnet", "unknown_model"),  # not an attractiveness model
        ("model=attractiveness=nope", "unknown_model"),
        ("model=nope=attractiveness_scut", "unknown_stage"),
    ],
)
def test_bad_model(fake_client, fake_analyzer, png, assert_error, query, code):
    assert_error(fake_client.post(f"/v1/score?{query}", files={"file": png}), 422, code)
    assert fake_analyzer.detected == []


def test_score_bad_input(fake_client, assert_error, png_bomb):
    r = fake_client.post("/v1/score", files={"file": ("x.jpg", b"GIF89a")})
    assert_error(r, 422, "undecodable_image")
    r = fake_client.post("/v1/score", files={"file": ("x.png", png_bomb, "image/png")})
    assert_error(r, 413, "image_too_large")


# -- the real models -----------------------------------------------------------------------------


def test_score_equals_analyze(client, two_face_photo):
    data = two_face_photo.read_bytes()
    r = client.post("/v1/score", files={"file": data})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "attractiveness_scut" and body["scale"] == [1.0, 5.0]
    assert len(body["faces"]) == 2
    for f in body["faces"]:
        assert f["landmarks"] is None and f["keypoints"] is None and f["embedding"] is None
        assert set(f["predictions"]) == {"attractiveness"}
        assert f["predictions"]["attractiveness"]["model"] == "attractiveness_scut"

    full = client.post("/v1/analyze", files={"file": data}).json()["faces"]
    assert [f["box"] for f in body["faces"]] == [f["box"] for f in full]
    scores = [f["predictions"]["attractiveness"]["value"] for f in body["faces"]]
    assert scores == pytest.approx(
        [f["predictions"]["attractiveness"]["value"] for f in full], abs=1e-6
    )
    # The two faces get different scores (a head that ignored its input would not).
    assert abs(scores[0] - scores[1]) > 0.05


def test_named_model_is_the_default(client, one_face_photo, golden_scores):
    data = one_face_photo.read_bytes()
    named = client.post("/v1/score?model=attractiveness_scut", files={"file": data})
    assert named.status_code == 200, named.text
    assert named.json()["model"] == "attractiveness_scut"
    (face,) = named.json()["faces"]
    (golden,) = golden_scores["obama.jpg"]
    p = face["predictions"]["attractiveness"]
    assert p["value"] == pytest.approx(golden, abs=1e-3)
    assert len(p["bins"]) == 9 and p["interval"][0] <= p["value"] <= p["interval"][1]


def test_the_classical_model_by_name(client, one_face_photo):
    r = client.post(
        "/v1/score?model=attractiveness_scut_classical",
        files={"file": one_face_photo.read_bytes()},
    )
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    p = face["predictions"]["attractiveness"]
    # the classical score fusion's value (its golden value before the distribution model
    # became the default); a single score, no distribution
    assert p["value"] == pytest.approx(2.7777, abs=1e-3) and p["bins"] is None


def test_every_fixture_photo_scores_without_error(client, fixtures):
    """Real photos with small, partial and many faces: always a 200 (a regression test for a
    closed mouth on a tiny face, whose zero lip thickness once made a 500)."""
    photos = sorted(fixtures.glob("*.jpg")) + sorted((fixtures / "dlib_faces").glob("*.jpg"))
    assert len(photos) >= 12
    n_faces = 0
    for p in photos:
        r = client.post("/v1/score", files={"file": p.open("rb")})
        assert r.status_code == 200, (p.name, r.text)
        n_faces += len(r.json()["faces"])
    assert n_faces >= 20
