"""Request bodies over the limit are refused with 413 without being read whole; the default
request limit leaves room for an image under the image limit sent as base64."""

import base64

from fastapi.testclient import TestClient

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
    app = create_app(
        settings.model_copy(update={"max_request_bytes": 1024}), analyzer=fake_analyzer
    )
    with TestClient(app) as c:
        assert len(png) > 1024
        assert_error(c.post("/v1/faces", files={"file": png}), 413, "request_too_large")
        small = c.post("/v1/faces", json={"image_base64": "AAAA"})
        assert_error(small, 422, "undecodable_image")  # under the limit: read and decoded


# -- the middleware driven directly: how much it reads, and how long it waits ------------------

import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402

from app.core.limits import BodySizeLimit  # noqa: E402

CHUNK = 64 * 1024


async def _reading_app(scope, receive, send):
    """An app that reads the whole body, as a route does."""
    while True:
        message = await receive()
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _scope(headers=()):
    return {"type": "http", "method": "POST", "path": "/v1/faces", "headers": list(headers)}


def test_endless_body_is_refused_after_the_limit():
    """A body that never ends (no Content-Length): reading stops one chunk past the limit."""
    limit = 1 * MIB
    read = 0

    async def endless():
        nonlocal read
        read += CHUNK
        return {"type": "http.request", "body": b"\0" * CHUNK, "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    mw = BodySizeLimit(_reading_app, max_bytes=limit)
    with pytest.raises(HTTPException) as e:
        asyncio.run(mw(_scope(), endless, send))
    assert e.value.status_code == 413 and e.value.headers == {"Connection": "close"}
    assert limit < read <= limit + CHUNK
    assert sent == []  # the app never answered: the 413 is the error handler's


def test_declared_length_over_the_limit_reads_nothing():
    calls = 0

    async def receive():
        nonlocal calls
        calls += 1
        raise AssertionError("the body must not be read")

    sent = []

    async def send(message):
        sent.append(message)

    mw = BodySizeLimit(_reading_app, max_bytes=1000)
    asyncio.run(mw(_scope([(b"content-length", b"1001")]), receive, send))
    assert calls == 0 and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_too_large"


def test_slow_body_is_cut_off():
    """A client that sends one byte every 50 ms: a 408 once the body time limit passes."""
    got = 0

    async def trickle():
        nonlocal got
        await asyncio.sleep(0.05)
        got += 1
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message):
        raise AssertionError("no answer from the app")

    mw = BodySizeLimit(_reading_app, max_bytes=MIB, body_timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(HTTPException) as e:
        asyncio.run(mw(_scope(), trickle, send))
    assert 0.45 < time.monotonic() - t0 < 1.5
    assert e.value.status_code == 408 and 5 <= got <= 11


def test_the_time_limit_ends_with_the_body():
    """After the whole body came, waiting for the client's disconnect is not timed."""

    async def app(scope, receive, send):
        await receive()
        assert (await receive())["type"] == "http.disconnect"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = [{"type": "http.request", "body": b"x", "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.sleep(0.3)
        return {"type": "http.disconnect"}

    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(BodySizeLimit(app, max_bytes=10, body_timeout_s=0.1)(_scope(), receive, send))
    assert sent[0]["status"] == 200


# End to end through a real server (TestClient buffers the body): tests/app/test_server.py.
