"""Request bodies over the limit are refused with 413 without being read whole; the default
request limit leaves room for an image under the image limit sent as base64."""

import base64

from fastapi.testclient import TestClient

from app.api.deps import get_analyzer
from app.core.config import Settings
from app.main import create_app

MIB = 1024 * 1024


def test_default_request_limit_follows_the_image_limit(fake_client, settings):
    assert settings.limits.max_bytes == 2 * MIB
    assert settings.request_limit == 2 * MIB * 4 // 3 + 64 * 1024
    assert Settings(max_request_bytes=1000).request_limit == 1000


def test_huge_base64_body_refused_before_reading(fake_client, fake_analyzer, assert_error):
    huge = "A" * (4 * MIB)
    r = fake_client.post("/v1/faces", json={"image_base64": huge})
    assert_error(r, 413, "request_too_large")
    assert fake_analyzer.detected == []


def test_streamed_body_over_limit(fake_client, fake_analyzer, assert_error):
    def gen():
        for _ in range(64):
            yield b"x" * 65536

    r = fake_client.post("/v1/faces", content=gen(), headers={"content-type": "application/json"})
    assert_error(r, 413, "request_too_large")
    assert fake_analyzer.detected == []


def test_multipart_over_limit(fake_client, assert_error):
    r = fake_client.post("/v1/score", files={"file": ("big.png", b"\0" * (3 * MIB), "image/png")})
    assert_error(r, 413, "request_too_large")


def test_image_under_the_limit_fits_as_base64(fake_client, make_png):
    """An image just under the image limit, base64 in JSON: within the derived request limit."""
    data = make_png(800, 800)
    assert 1.8 * MIB < len(data) < 2 * MIB
    r = fake_client.post("/v1/faces", json={"image_base64": base64.b64encode(data).decode()})
    assert r.status_code == 200, r.text
    assert r.json()["image"] == {"width": 800, "height": 800}


def test_image_over_the_image_limit(fake_client, settings, make_png, assert_error):
    data = make_png(900, 900)
    assert settings.limits.max_bytes < len(data) < settings.request_limit - 4096
    r = fake_client.post("/v1/faces", files={"file": ("big.png", data, "image/png")})
    assert_error(r, 413, "image_too_large")


def test_request_limit_setting(settings, fake_analyzer, png, assert_error):
    app = create_app(settings.model_copy(update={"max_request_bytes": 1024}))
    app.dependency_overrides[get_analyzer] = lambda: fake_analyzer
    with TestClient(app) as c:
        assert len(png) > 1024
        assert_error(c.post("/v1/faces", files={"file": png}), 413, "request_too_large")
        small = c.post("/v1/faces", json={"image_base64": "AAAA"})
        assert_error(small, 422, "undecodable_image")  # under the limit: read and decoded
