import base64
import io
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.core.config import Settings
from app.main import create_app


@pytest.fixture(scope="module")
def client(analyzer):
    settings = Settings(max_image_bytes=2 * 1024 * 1024)
    with TestClient(create_app(settings, analyzer=analyzer)) as c:
        yield c


def _png_bomb(w=40000, h=40000) -> bytes:
    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _assert_error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


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
        (_png_bomb(), 413, "image_too_large"),
    ],
)
def test_bad_uploads(client, payload, status, code):
    r = client.post("/v1/faces", files={"file": ("photo.jpg", payload, "image/jpeg")})
    _assert_error(r, status, code)


def test_truncated_jpeg(client, one_face_photo):
    data = one_face_photo.read_bytes()
    r = client.post("/v1/faces", files={"file": ("t.jpg", data[: len(data) // 3], "image/jpeg")})
    _assert_error(r, 422, "undecodable_image")


def test_unsupported_format(client):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="ICO")
    r = client.post("/v1/faces", files={"file": ("a.png", buf.getvalue(), "image/png")})
    _assert_error(r, 415, "unsupported_image")


def test_image_over_byte_limit(client):
    big = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    assert len(buf.getvalue()) > 2 * 1024 * 1024
    r = client.post("/v1/faces", files={"file": ("big.png", buf.getvalue(), "image/png")})
    _assert_error(r, 413)


def test_huge_base64_body_refused_before_reading(client):
    huge = "A" * (4 * 1024 * 1024)
    r = client.post("/v1/faces", json={"image_base64": huge})
    _assert_error(r, 413, "request_too_large")


def test_streamed_body_over_limit(client):
    def gen():
        for _ in range(64):
            yield b"x" * 65536

    r = client.post("/v1/faces", content=gen(), headers={"content-type": "application/json"})
    _assert_error(r, 413, "request_too_large")


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
def test_malformed_requests(client, kwargs, status, code):
    _assert_error(client.post("/v1/faces", **kwargs), status, code)


def test_unknown_route_and_method_are_json(client):
    _assert_error(client.get("/nope"), 404, "not_found")
    _assert_error(client.get("/v1/faces"), 405, "method_not_allowed")


def test_model_load_failure_is_503(tmp_path, one_face_photo, monkeypatch):
    (tmp_path / "manifest.json").write_text('{"models": []}')
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    with TestClient(create_app(Settings())) as c:
        c.app.state.loader.join(timeout=30)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "failed"
        _assert_error(c.post("/v1/faces", files={"file": one_face_photo.open("rb")}), 503)


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


def test_score_bad_input(client):
    _assert_error(client.post("/v1/score", files={"file": ("x.jpg", b"GIF89a")}), 422)
    r = client.post("/v1/score", files={"file": ("x.png", _png_bomb(), "image/png")})
    _assert_error(r, 413, "image_too_large")


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
