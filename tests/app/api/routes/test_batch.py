"""Several images in one request (/v1/analyze, /v1/score): one entry per image, a bad image gets
its own error and does not fail the others, and one image keeps the single-image answer."""

import base64

import pytest

ROUTES = ("/v1/analyze", "/v1/score")


def _entry_ok(entry, index, filename=None):
    assert entry["index"] == index and entry["status"] == 200 and entry["error"] is None, entry
    assert entry["filename"] == filename
    assert entry["result"]["image"] == {"width": 96, "height": 64}
    assert len(entry["result"]["faces"]) == 2
    return entry["result"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("field", ["file", "files"])
def test_several_files(fake_client, fake_analyzer, png, route, field, make_png):
    other = make_png(40, 30)
    files = [(field, ("a.png", png)), (field, ("bad.jpg", b"not an image")), (field, ("c", other))]
    r = fake_client.post(route, files=files)
    assert r.status_code == 200, r.text
    a, bad, c = r.json()["results"]
    _entry_ok(a, 0, "a.png")
    assert bad == {
        "index": 1,
        "filename": "bad.jpg",
        "status": 422,
        "error": {"code": "undecodable_image", "message": bad["error"]["message"]},
        "result": None,
    }
    assert c["status"] == 200 and c["result"]["image"] == {"width": 40, "height": 30}
    # The two good images reached detection, the bad one did not.
    assert sorted(fake_analyzer.detected) == [(30, 40, 3), (64, 96, 3)]


def test_batch_entry_equals_the_single_answer(fake_client, png):
    single = fake_client.post("/v1/analyze", files={"file": png}).json()
    (entry,) = fake_client.post("/v1/analyze", files=[("files", ("x.png", png))]).json()["results"]
    assert entry["result"] == single
    single = fake_client.post("/v1/score", files={"file": png}).json()
    (entry,) = fake_client.post("/v1/score", files=[("files", ("x.png", png))]).json()["results"]
    assert entry["result"] == single


@pytest.mark.parametrize("route", ROUTES)
def test_json_images_base64(fake_client, png, route):
    good = base64.b64encode(png).decode()
    junk = base64.b64encode(b"not an image").decode()
    body = {"images_base64": [good, junk, "data:image/png;base64," + good]}
    r = fake_client.post(route, json=body)
    assert r.status_code == 200, r.text
    a, bad, c = r.json()["results"]
    _entry_ok(a, 0)
    assert (bad["status"], bad["error"]["code"], bad["result"]) == (422, "undecodable_image", None)
    _entry_ok(c, 2)


def test_text_that_is_not_base64_fails_the_request(fake_client, png, assert_error):
    """Not base64 at all is a malformed request (the schema's pattern says so), not one image's
    error; bytes that are base64 but no image are that image's error (above)."""
    good = base64.b64encode(png).decode()
    r = fake_client.post("/v1/analyze", json={"images_base64": [good, "not base64!!"]})
    err = assert_error(r, 422, "invalid_base64")
    assert "images_base64[1]" in err["message"]


def test_one_file_keeps_the_single_shape(fake_client, png):
    r = fake_client.post("/v1/analyze", files={"file": png})
    assert set(r.json()) == {"image", "stages", "faces", "warnings"}
    r = fake_client.post("/v1/analyze", json={"image_base64": base64.b64encode(png).decode()})
    assert set(r.json()) == {"image", "stages", "faces", "warnings"}


def test_oversize_image_in_a_batch(fake_client, png, png_bomb):
    r = fake_client.post("/v1/score", files=[("files", ("a", png)), ("files", ("b", png_bomb))])
    a, b = r.json()["results"]
    assert a["status"] == 200
    assert (b["status"], b["error"]["code"]) == (413, "image_too_large")


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"files": [("files", ("x", b"1"))] * 9}, "too_many_images"),  # max_images is 8
        ({"files": [("file", ("x", b"1"))] * 5 + [("files", ("y", b"2"))] * 4}, "too_many_images"),
        ({"json": {"images_base64": ["AAAA"] * 9}}, "too_many_images"),
        ({"json": {"images_base64": []}}, "invalid_request"),
        ({"json": {"images_base64": "AAAA"}}, "invalid_request"),
        ({"json": {"images_base64": ["AAAA"], "image_base64": "AAAA"}}, "invalid_request"),
        ({"files": {"other": ("a", b"1")}}, "missing_file"),
    ],
    ids=["9-files", "9-mixed", "9-base64", "empty-list", "not-a-list", "both-keys", "no-file"],
)
def test_request_level_errors(fake_client, fake_analyzer, assert_error, kwargs, code):
    assert_error(fake_client.post("/v1/analyze", **kwargs), 422, code)
    assert fake_analyzer.detected == []


def test_bad_query_fails_the_whole_batch(fake_client, png, assert_error):
    r = fake_client.post("/v1/analyze?stages=nope", files=[("files", ("a", png))] * 2)
    assert_error(r, 422, "unknown_stage")


def test_one_images_stage_failure_does_not_fail_the_others(
    fake_client, fake_analyzer, png, make_png, monkeypatch
):
    """A stage that raises on one image (a bug): that image is a 500 entry, the other is fine."""
    original = fake_analyzer.fakes["attractiveness"].__class__.__call__

    def flaky(self, image, faces):
        if image.shape[1] == 40:
            raise RuntimeError("secret detail")
        return original(self, image, faces)

    monkeypatch.setattr(type(fake_analyzer.fakes["attractiveness"]), "__call__", flaky)
    files = [("files", ("a", png)), ("files", ("b", make_png(40, 30)))]
    r = fake_client.post("/v1/score", files=files)
    assert r.status_code == 200, r.text
    a, b = r.json()["results"]
    assert a["status"] == 200 and len(a["result"]["faces"]) == 2
    assert b["status"] == 500 and b["error"]["code"] == "internal_error"
    assert "secret" not in r.text


def test_faces_route_takes_one_image(fake_client, png, assert_error):
    r = fake_client.post("/v1/faces", files=[("files", ("a", png))])
    assert_error(r, 422, "missing_file")
    r = fake_client.post("/v1/faces", files=[("file", ("a", png))] * 3)
    assert_error(r, 422, "invalid_request")
