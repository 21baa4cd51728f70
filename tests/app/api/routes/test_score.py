"""POST /v1/score."""

import pytest


def test_score_two_faces(client, two_face_photo):
    r = client.post("/v1/score", files={"file": two_face_photo.open("rb")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "attractiveness_scut" and body["scale"] == [1.0, 5.0]
    assert len(body["faces"]) == 2
    assert all(1.0 <= f["score"] <= 5.0 for f in body["faces"])


def test_score_matches_the_library(client, one_face_photo):
    import facecore

    (face,) = facecore.score(one_face_photo)
    r = client.post("/v1/score", files={"file": one_face_photo.open("rb")})
    assert r.json()["faces"][0]["score"] == pytest.approx(face.predictions["attractiveness"])


def test_score_bad_input(client, assert_error, png_bomb):
    assert_error(client.post("/v1/score", files={"file": ("x.jpg", b"GIF89a")}), 422)
    r = client.post("/v1/score", files={"file": ("x.png", png_bomb, "image/png")})
    assert_error(r, 413, "image_too_large")


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
