"""app.core.admission: with the queue full, the image routes are refused 503 ``overloaded``
before the body is read; other routes pass; requests are taken again once the queue drains."""

import asyncio

import pytest
from fastapi.testclient import TestClient

from app.main import create_app


@pytest.fixture
def full_app(settings, fake_analyzer):
    app = create_app(settings.model_copy(update={"retry_after_s": 3}), analyzer=fake_analyzer)
    with TestClient(app) as c:
        yield c


def call(app, method, path):
    """One ASGI call whose ``receive`` records being called; the messages sent back."""
    sent, received = [], []

    async def receive():
        received.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"x"), (b"content-type", b"multipart/form-data; boundary=b")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    asyncio.run(app(scope, receive, send))
    return sent, received


ROUTES = ["/v1/analyze", "/v1/faces", "/v1/score", "/v1/age", "/v1/compare", "/v1/beautify"]


@pytest.mark.parametrize("path", [*ROUTES, "/v1/average"])
def test_refused_before_the_body_is_read(full_app, monkeypatch, path):
    engine = full_app.app.state.engine
    monkeypatch.setattr(engine, "would_accept", lambda n=1: False)
    sent, received = call(full_app.app, "POST", path)
    assert received == []  # the body was never read
    start, body = sent[0], sent[-1]
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"3"
    assert headers[b"content-type"] == b"application/json"
    import json

    error = json.loads(body["body"])
    assert set(error) == {"error"} and error["error"]["code"] == "overloaded"
    assert error["error"]["message"].startswith("the server is busy")


def test_other_routes_pass_and_the_queue_drains(full_app, monkeypatch, png):
    engine = full_app.app.state.engine
    monkeypatch.setattr(engine, "would_accept", lambda n=1: False)
    for path in ("/healthz", "/readyz", "/metrics", "/v1/stages", "/docs", "/openapi.json"):
        r = full_app.get(path)
        assert r.status_code in (200, 503) and "the server is busy" not in r.text, path
    r = full_app.post("/v1/faces", files={"file": png})
    assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded"
    assert 'facecore_rejected_total{reason="overloaded"} 1.0' in full_app.get("/metrics").text
    monkeypatch.undo()  # the queue drained
    assert full_app.post("/v1/faces", files={"file": png}).status_code == 200
