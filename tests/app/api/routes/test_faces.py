"""POST /v1/faces: multipart and JSON bodies, bad uploads, malformed requests; landmarks and
descriptors on the real models."""

import base64
import io

import numpy as np
import pytest
from PIL import Image


def test_faces_multipart(fake_client, fake_analyzer, png, fake_face_json):
    r = fake_client.post("/v1/faces", files={"file": ("x.png", png, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "image": {"width": 96, "height": 64},
        "faces": [fake_face_json(0), fake_face_json(1)],
    }
    # Landmarks only: no descriptor network, no head.
    assert fake_analyzer.calls() == {
        "landmarks": 1,
        "trunk": 0,
        "attractiveness": 0,
        "age": 0,
        "quality": 0,
    }


def test_descriptor_runs_the_trunk(fake_client, fake_analyzer, png, fake_face_json):
    r = fake_client.post("/v1/faces?descriptor=true", files={"file": png})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == [fake_face_json(i, embedding=True) for i in range(2)]
    assert fake_analyzer.calls() == {
        "landmarks": 1,
        "trunk": 1,
        "attractiveness": 0,
        "age": 0,
        "quality": 0,
    }


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: "data:image/png;base64," + base64.b64encode(b).decode(),
        lambda b: base64.encodebytes(b).decode(),  # MIME: wrapped at 76 columns
        lambda b: "  " + base64.b64encode(b).decode() + "\n",
    ],
    ids=["plain", "data-url", "wrapped", "padded"],
)
def test_json_base64(fake_client, png, fake_face_json, encode):
    r = fake_client.post("/v1/faces", json={"image_base64": encode(png)})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == [fake_face_json(0), fake_face_json(1)]


def test_format_comes_from_the_bytes(fake_client, png):
    """A PNG sent as photo.jpg / image/jpeg (or with no type) is read as the PNG it is."""
    for file in [("photo.jpg", png, "image/jpeg"), ("blob", png, "application/octet-stream")]:
        r = fake_client.post("/v1/faces", files={"file": file})
        assert r.status_code == 200, r.text
        assert r.json()["image"] == {"width": 96, "height": 64}


def test_no_face_is_200_empty(fake_client, fake_analyzer, png):
    fake_analyzer.faces = []
    r = fake_client.post("/v1/faces", files={"file": png})
    assert r.status_code == 200 and r.json() == {"image": {"width": 96, "height": 64}, "faces": []}


def _ico() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="ICO")
    return buf.getvalue()


def _truncated_jpeg(photo) -> bytes:
    data = photo.read_bytes()
    return data[: len(data) // 3]


@pytest.mark.parametrize(
    "payload,status,code",
    [
        (b"", 422, "undecodable_image"),
        (b"hello, this is a text file\n", 422, "undecodable_image"),
        (b"<!DOCTYPE html><html><body>not a jpeg</body></html>", 422, "undecodable_image"),
        (b"GIF89a", 422, "undecodable_image"),
        ("truncated_jpeg", 422, "undecodable_image"),
        ("tiny_png", 422, "image_too_small"),
        ("ico", 415, "unsupported_image"),
        ("png_bomb", 413, "image_too_large"),
    ],
)
def test_bad_uploads(
    fake_client, fake_analyzer, assert_error, request, one_face_photo, payload, status, code
):
    if payload == "png_bomb":
        payload = request.getfixturevalue("png_bomb")
    elif payload == "truncated_jpeg":
        payload = _truncated_jpeg(one_face_photo)
    elif payload == "tiny_png":
        payload = request.getfixturevalue("make_png")(8, 8)
    elif payload == "ico":
        payload = _ico()
    r = fake_client.post("/v1/faces", files={"file": ("photo.jpg", payload, "image/jpeg")})
    assert_error(r, status, code)
    assert fake_analyzer.detected == []


@pytest.mark.parametrize(
    "kwargs,status,code",
    [
        ({"json": {"image_base64": "not base64!!"}}, 422, "invalid_base64"),
        ({"json": {"image_base64": "QUJ"}}, 422, "invalid_base64"),  # missing padding
        ({"json": {"image_base64": ""}}, 422, "invalid_base64"),
        ({"json": {"image_base64": 5}}, 422, "invalid_request"),
        ({"json": {"image": "abc"}}, 422, "invalid_request"),
        ({"json": [1, 2]}, 422, "invalid_request"),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            "invalid_request",
        ),
        (
            {"content": b"raw", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ({"content": b"raw"}, 415, "unsupported_media_type"),  # no content type
        ({"data": {"file": "field"}}, 415, "unsupported_media_type"),  # urlencoded form
        ({"files": {"other": ("a.jpg", b"123")}}, 422, "missing_file"),
        ({"files": {"other": ("a.jpg", b"123")}, "data": {"file": "text"}}, 422, "missing_file"),
        ({"files": [("file", ("a", b"1")), ("file", ("b", b"2"))]}, 422, "invalid_request"),
        (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data; boundary=x"}},
            422,
            "invalid_request",
        ),
        (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data"}},
            422,
            "invalid_request",
        ),
    ],
    ids=[
        "bad-base64",
        "bad-padding",
        "empty-base64",
        "base64-not-a-string",
        "wrong-field",
        "json-array",
        "bad-json",
        "text-plain",
        "no-content-type",
        "urlencoded",
        "no-file-field",
        "file-is-text",
        "two-files",
        "bad-multipart",
        "no-boundary",
    ],
)
def test_malformed_requests(fake_client, fake_analyzer, assert_error, kwargs, status, code):
    assert_error(fake_client.post("/v1/faces", **kwargs), status, code)
    assert fake_analyzer.detected == []


# -- the real models -----------------------------------------------------------------------------


def test_two_faces_with_landmarks(client, two_face_photo):
    with open(two_face_photo, "rb") as fh:
        r = client.post("/v1/faces", files={"file": ("x.jpg", fh, "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"width": 1126, "height": 661}
    boxes = [f["box"] for f in body["faces"]]
    assert boxes == [
        pytest.approx([244, 62, 395, 212], abs=1),
        pytest.approx([792, 95, 942, 245], abs=1),
    ]
    for f in body["faces"]:
        assert f["detector"] == "hog" and f["keypoints"] is None
        assert f["embedding"] is None and f["predictions"] == {}
        lm = np.array(f["landmarks"])
        assert lm.shape == (68, 2)
        # Points 36-47 are the eyes, 48-67 the mouth: eyes above the mouth, inside the box.
        x1, y1, x2, y2 = f["box"]
        eyes, mouth = lm[36:48].mean(0), lm[48:68].mean(0)
        assert x1 < eyes[0] < x2 and y1 < eyes[1] < mouth[1] < y2


def test_descriptor_matches_the_analyzer(client, analyzer, one_face_photo):
    data = base64.b64encode(one_face_photo.read_bytes()).decode()
    r = client.post("/v1/faces?descriptor=true", json={"image_base64": data})
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    (ref,) = analyzer.analyze(one_face_photo, stages=("trunk",))
    assert len(face["embedding"]) == 128
    np.testing.assert_allclose(face["embedding"], ref.embedding, atol=1e-6)
    assert face["predictions"] == {}


def test_no_face_photo(client, no_face_photo):
    r = client.post("/v1/faces", files={"file": no_face_photo.open("rb")})
    assert r.status_code == 200 and r.json()["faces"] == []
