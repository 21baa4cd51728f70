"""POST /v1/age: the age head only, a view of /v1/analyze."""

import pytest


def test_age_shape_on_the_fake(fake_client, fake_analyzer, png, fake_face_json):
    r = fake_client.post("/v1/age", files={"file": png})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fake_age" and body["unit"] == "years"
    assert body["scale"] == [0.0, 100.0]
    assert body["faces"] == [fake_face_json(i, points=False, predictions=("age",)) for i in (0, 1)]
    age = body["faces"][0]["predictions"]["age"]
    assert age["interval"] == [30.0, 50.0] and age["value"] == pytest.approx(38.8, abs=1e-4)
    # The age head needs the trunk, not the attractiveness head.
    assert fake_analyzer.calls()["attractiveness"] == 0 and fake_analyzer.calls()["age"] == 1
    assert [w["face"] for w in body["warnings"]] == [1]


def test_age_batch_keeps_every_image(fake_client, png):
    r = fake_client.post(
        "/v1/age", files=[("files", ("a.png", png)), ("files", ("b.jpg", b"GIF89a"))]
    )
    assert r.status_code == 200, r.text
    a, b = r.json()["results"]
    assert a["status"] == 200 and a["result"]["unit"] == "years"
    assert b["status"] == 422 and b["error"]["code"] == "undecodable_image"


@pytest.mark.parametrize(
    "query,code",
    [("model=nope", "unknown_model"), ("model=attractiveness_scut", "unknown_model")],
)
def test_age_bad_model(fake_client, fake_analyzer, png, assert_error, query, code):
    assert_error(fake_client.post(f"/v1/age?{query}", files={"file": png}), 422, code)
    assert fake_analyzer.detected == []


# -- the real models -----------------------------------------------------------------------------


def test_age_from_the_shipped_model(client, two_face_photo):
    data = two_face_photo.read_bytes()
    r = client.post("/v1/age", files={"file": data})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "age_utkface" and body["unit"] == "years"
    assert len(body["faces"]) == 2
    full = client.post("/v1/analyze", files={"file": data}).json()["faces"]
    for f, g in zip(body["faces"], full, strict=True):
        age = f["predictions"]["age"]
        assert set(f["predictions"]) == {"age"} and age["model"] == "age_utkface"
        assert len(age["bins"]) == 101 and sum(age["probabilities"]) == pytest.approx(1, abs=1e-3)
        lo, hi = age["interval"]
        assert 0 <= lo <= age["value"] <= hi <= 100
        assert age["value"] == pytest.approx(g["predictions"]["age"]["value"], abs=1e-4)
