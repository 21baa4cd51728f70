"""app.api.uploads: the images of a request (multipart parts, JSON base64) and their errors,
read by a bare app's routes (the service's routes: ``tests/app/api/routes``)."""

import base64
import re

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from app.api.openapi_bodies import BASE64_PATTERN
from app.api.uploads import decode_base64, read_fields, read_named_files, read_upload
from app.core.errors import ApiError, install_error_handlers


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/one")
    async def one(request: Request):
        up = await read_upload(request, 1, multi=False)
        return {"batch": up.batch, "images": [[n, d.decode()] for n, d in up.images]}

    @app.post("/many")
    async def many(request: Request):
        up = await read_upload(request, 3, multi=True)
        return {"batch": up.batch, "images": [[n, d.decode()] for n, d in up.images]}

    @app.post("/named")
    async def named(request: Request):
        return [[n, d.decode()] for n, d in await read_named_files(request, "files", 2)]

    @app.post("/fields")
    async def fields(request: Request):
        return [d.decode() for d in await read_fields(request, ("first", "second"))]

    with TestClient(app) as c:
        yield c


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def error(r, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
    return r.json()["error"]["message"]


def test_one_image_multipart_or_json(client):
    r = client.post("/one", files={"file": ("a.png", b"AA")})
    assert r.json() == {"batch": False, "images": [["a.png", "AA"]]}
    r = client.post("/one", json={"image_base64": "data:image/png;base64," + b64("BB")})
    assert r.json() == {"batch": False, "images": [[None, "BB"]]}
    msg = error(client.post("/one", files=[("file", b"a"), ("file", b"b")]), 422, "invalid_request")
    assert msg == "send one file (field 'file')"
    msg = error(client.post("/one", files={"files": b"a"}), 422, "missing_file")
    assert msg == "multipart body has no file field named 'file'"
    msg = error(client.post("/one", content=b"x"), 415, "unsupported_media_type")
    assert msg == (
        "content type '(none)' is not accepted; send multipart/form-data with a 'file' field "
        "or application/json with image_base64"
    )
    error(client.post("/one", json={"image_base64": "QUJ"}), 422, "invalid_base64")
    error(client.post("/one", json={"image": "QUJD"}), 422, "invalid_request")


def test_several_images_in_order_with_their_names(client):
    files = [("file", ("a", b"1")), ("files", ("b", b"2")), ("files", ("c", b"3"))]
    r = client.post("/many", files=files)
    assert r.json() == {"batch": True, "images": [["a", "1"], ["b", "2"], ["c", "3"]]}
    assert client.post("/many", files={"file": b"1"}).json()["batch"] is False
    r = client.post("/many", json={"images_base64": [b64("x"), b64("y")]})
    assert r.json() == {"batch": True, "images": [[None, "x"], [None, "y"]]}
    msg = error(client.post("/many", files=[*files, ("files", b"4")]), 422, "too_many_images")
    assert msg == "at most 3 images per request"
    r = client.post("/many", json={"images_base64": [b64("x")] * 4})
    assert error(r, 422, "too_many_images") == "at most 3 images per request"
    r = client.post("/many", json={"images_base64": [b64("x"), "nope!"]})
    assert error(r, 422, "invalid_base64") == "images_base64[1] is not valid base64"
    r = client.post("/many", json={"images_base64": [b64("x")], "image_base64": b64("y")})
    assert error(r, 422, "invalid_request") == "send image_base64 or images_base64, not both"
    assert "body is not JSON" in error(
        client.post("/many", content=b"{", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )


def test_named_files(client):
    r = client.post("/named", files=[("files", ("a.jpg", b"1")), ("files", ("b.png", b"2"))])
    assert r.json() == [["a.jpg", "1"], ["b.png", "2"]]
    many = [("files", (f"{i}.jpg", b"x")) for i in range(3)]
    assert error(client.post("/named", files=many), 422, "invalid_request") == (
        "at most 2 files per request"
    )
    msg = error(client.post("/named", files={"file": b"1"}), 422, "missing_file")
    assert msg == "multipart body has no file field named 'files'"
    msg = error(client.post("/named", json={"files": []}), 415, "unsupported_media_type")
    assert msg.endswith("send multipart/form-data with one 'files' field per image")


def test_one_image_per_field(client):
    assert client.post("/fields", files={"second": b"2", "first": b"1"}).json() == ["1", "2"]
    msg = error(client.post("/fields", files={"first": b"1"}), 422, "missing_file")
    assert msg == "multipart body needs exactly one file field named 'second', got 0"
    msg = error(client.post("/fields", json={}), 415, "unsupported_media_type")
    assert msg.endswith("send multipart/form-data with the fields 'first' and 'second'")
    r = client.post("/fields", files=[("first", b"1"), ("first", b"1"), ("second", b"2")])
    assert error(r, 422, "invalid_request").startswith(
        "send one image in 'first' and one in 'second' ("
    )


def test_base64_pattern_is_what_the_service_decodes():
    pattern = re.compile(BASE64_PATTERN)
    for raw in (b"a", b"ab", b"abc", bytes(range(256))):
        text = base64.b64encode(raw).decode()
        assert pattern.match(text) and pattern.match("data:image/png;base64," + text)
        assert decode_base64(text) == raw and decode_base64("data:x;base64," + text) == raw
    assert pattern.match(base64.encodebytes(bytes(range(200))).decode())  # MIME: line breaks
    assert decode_base64(base64.encodebytes(bytes(range(200))).decode()) == bytes(range(200))
    for bad in ("", "  ", "data:,", "QUJ", "not base64!!", "QUJD=", "====", "QU=D", "data:x", "Q"):
        assert not pattern.match(bad), bad
        with pytest.raises(ApiError):
            decode_base64(bad)
