"""POST /v1/compare: the probability that the first photo's face is rated higher."""

import pytest


def test_a_model_without_distribution_is_refused(fake_client, png, assert_error):
    r = fake_client.post("/v1/compare", files={"first": png, "second": png})
    err = assert_error(r, 422, "model_without_distribution")
    assert "fake_attractiveness" in err["message"]


@pytest.mark.parametrize(
    "files,code",
    [
        ({"first": b"x"}, "missing_file"),
        ({"second": b"x"}, "missing_file"),
        ({"file": b"x"}, "missing_file"),
    ],
)
def test_both_fields_are_needed(fake_client, assert_error, files, code):
    err = assert_error(fake_client.post("/v1/compare", files=files), 422, code)
    assert "first" in err["message"] or "second" in err["message"]


def test_json_is_not_accepted(fake_client, assert_error):
    assert_error(fake_client.post("/v1/compare", json={"x": 1}), 415, "unsupported_media_type")


# -- the real models -----------------------------------------------------------------------------


def test_compare_two_photos(client, one_face_photo, fixtures):
    a, b = one_face_photo.read_bytes(), (fixtures / "biden.jpg").read_bytes()
    r = client.post("/v1/compare", files={"first": a, "second": b})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "attractiveness_scut"
    p = body["probability_first_higher"]
    assert 0.0 <= p <= 1.0
    for side in ("first", "second"):
        assert body[side]["warnings"] == []
        pred = body[side]["face"]["predictions"]["attractiveness"]
        assert len(pred["probabilities"]) == len(pred["bins"]) == 9
    swapped = client.post("/v1/compare", files={"first": b, "second": a}).json()
    assert swapped["probability_first_higher"] == pytest.approx(1.0 - p, abs=1e-6)
    # The side with the higher expected rating is the more likely winner.
    va = body["first"]["face"]["predictions"]["attractiveness"]["value"]
    vb = body["second"]["face"]["predictions"]["attractiveness"]["value"]
    assert (p > 0.5) == (va > vb)
    same = client.post("/v1/compare", files={"first": a, "second": a}).json()
    assert same["probability_first_higher"] == pytest.approx(0.5, abs=1e-6)


def test_compare_with_another_model_and_bad_photos(
    client, one_face_photo, no_face_photo, assert_error
):
    a = one_face_photo.read_bytes()
    r = client.post("/v1/compare?model=attractiveness_mebeauty", files={"first": a, "second": a})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "attractiveness_mebeauty"
    assert len(r.json()["first"]["face"]["predictions"]["attractiveness"]["bins"]) == 10
    err = assert_error(
        client.post("/v1/compare", files={"first": a, "second": no_face_photo.read_bytes()}),
        422,
        "no_face",
    )
    assert err["message"].startswith("second")
    err = assert_error(
        client.post("/v1/compare", files={"first": b"GIF89a", "second": a}),
        422,
        "undecodable_image",
    )
    assert err["message"].startswith("first")
    assert_error(
        client.post(
            "/v1/compare?model=attractiveness_scut_classical", files={"first": a, "second": a}
        ),
        422,
        "model_without_distribution",
    )
