"""POST /v1/faces: multipart and JSON bodies, bad uploads, malformed requests."""

import base64
import io

import numpy as np
import pytest
from PIL import Image


def test_two_faces_multipart(client, two_face_photo):
    with open(two_face_photo, "rb") as fh:
        r = client.post("/v1/faces", files={"file": ("x.jpg", fh, "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"width": 1126, "height": 661}
    assert len(body["faces"]) == 2
    for f in body["faces"]:
        assert len(f["box"]) == 4 and len(f["landmarks"]) == 68
        assert f["embedding"] is None
        x1, y1, x2, y2 = f["box"]
        lm = np.array(f["landmarks"])
        assert x1 < lm[:, 0].mean() < x2 and y1 < lm[:, 1].mean() < y2


def test_json_base64_with_descriptor(client, one_face_photo):
    data = base64.b64encode(one_face_photo.read_bytes()).decode()
    r = client.post("/v1/faces?descriptor=true", json={"image_base64": data})
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    assert len(face["embedding"]) == 128
    r2 = client.post("/v1/faces", json={"image_base64": "data:image/jpeg;base64," + data})
    assert r2.status_code == 200 and len(r2.json()["faces"]) == 1


def test_no_face_is_200_empty(client, no_face_photo):
    r = client.post("/v1/faces", files={"file": no_face_photo.open("rb")})
    assert r.status_code == 200 and r.json()["faces"] == []


@pytest.mark.parametrize(
    "payload,status,code",
    [
        (b"", 422, "undecodable_image"),
        (b"hello, this is a text file\n", 422, "undecodable_image"),
        (b"<!DOCTYPE html><html><body>not a jpeg</body></html>", 422, "undecodable_image"),
        ("png_bomb", 413, "image_too_large"),
    ],
)
def test_bad_uploads(client, payload, status, code, assert_error, request):
    if payload == "png_bomb":
        payload = request.getfixturevalue("png_bomb")
    r = client.post("/v1/faces", files={"file": ("photo.jpg", payload, "image/jpeg")})
    assert_error(r, status, code)


def test_truncated_jpeg(client, one_face_photo, assert_error):
    data = one_face_photo.read_bytes()
    r = client.post("/v1/faces", files={"file": ("t.jpg", data[: len(data) // 3], "image/jpeg")})
    assert_error(r, 422, "undecodable_image")


def test_unsupported_format(client, assert_error):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="ICO")
    r = client.post("/v1/faces", files={"file": ("a.png", buf.getvalue(), "image/png")})
    assert_error(r, 415, "unsupported_image")


def test_image_over_byte_limit(client, assert_error):
    big = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    assert len(buf.getvalue()) > 2 * 1024 * 1024
    r = client.post("/v1/faces", files={"file": ("big.png", buf.getvalue(), "image/png")})
    assert_error(r, 413)


@pytest.mark.parametrize(
    "kwargs,status,code",
    [
        ({"json": {"image_base64": "not base64!!"}}, 422, "invalid_base64"),
        ({"json": {"image": "abc"}}, 422, "invalid_request"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, None),
        ({"content": b"raw", "headers": {"content-type": "text/plain"}}, 415, None),
        ({"data": {"other": "field"}}, 415, None),
        ({"files": {"other": ("a.jpg", b"123")}}, 422, "missing_file"),
    ],
)
def test_malformed_requests(client, kwargs, status, code, assert_error):
    assert_error(client.post("/v1/faces", **kwargs), status, code)
