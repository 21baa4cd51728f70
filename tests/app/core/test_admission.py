"""app.core.admission: with the queue full, the image routes are refused 503 ``overloaded``
before the body is read; other routes pass; requests are taken again once the queue drains."""

import asyncio
import json
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from app.core.admission import Admission, RefusalPacer
from app.core.engine import Engine
from app.core.metrics import Metrics
from app.core.middleware import REFUSED
from app.main import create_app


@pytest.fixture
def full_app(settings, fake_analyzer):
    app = create_app(settings.model_copy(update={"retry_after_s": 3}), analyzer=fake_analyzer)
    with TestClient(app) as c:
        yield c


def call(app, method, path, scope_out=None):
    """One ASGI call whose ``receive`` records being called; the messages sent back (the scope
    is appended to ``scope_out``)."""
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
    if scope_out is not None:
        scope_out.append(scope)
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


def test_the_refusal_is_built_once_for_each_queue_length():
    """The answer names the images waiting and is reused while that count holds; the request is
    marked refused (for the access log's summary) and named by its route."""
    engine = Engine(None, queue_size=2, batch_max=1, retry_after_s=4)  # not started
    route = SimpleNamespace(methods={"POST"}, path="/v1/analyze")

    async def inner(scope, receive, send):
        raise AssertionError("a refused request reached the app")

    metrics = Metrics()
    admission = Admission(
        inner, state=SimpleNamespace(engine=engine), routes={route.path: route}, metrics=metrics
    )
    engine._pending.extend([object()] * 3)
    scopes = []
    sent, received = call(admission, "POST", "/v1/analyze", scopes)
    assert received == [] and sent[0]["status"] == 503
    assert scopes[0][REFUSED] == "overloaded" and scopes[0]["route"] is route
    assert dict(sent[0]["headers"])[b"retry-after"] == b"4"
    assert json.loads(sent[1]["body"]) == {
        "error": {
            "code": "overloaded",
            "message": "the server is busy (3 images waiting); try again shortly",
        }
    }
    assert admission.answer(engine) is admission.answer(engine)
    engine._pending.append(object())
    sent, _ = call(admission, "POST", "/v1/analyze")
    assert b"(4 images waiting)" in sent[1]["body"]
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(sent[1]["body"])).encode()
    assert metrics.rejected.labels("overloaded")._value.get() == 2
    engine._pending.clear()  # an empty queue takes a request: it reaches the app
    with pytest.raises(AssertionError, match="reached the app"):
        call(admission, "POST", "/v1/analyze")


def test_the_pacer_answers_rate_refusals_a_second_and_the_rest_in_turn():
    now = [100.0]
    pacer = RefusalPacer(rate=100.0, max_wait=0.055, clock=lambda: now[0])
    # Refusals 10 ms apart or more never wait.
    assert pacer.delay() == 0.0
    now[0] += 0.010
    assert pacer.delay() == 0.0
    # A burst: each takes the next turn, 10 ms after the last, while the wait is <= 55 ms ...
    waits = [round(pacer.delay(), 6) for _ in range(7)]
    assert waits == [0.01, 0.02, 0.03, 0.04, 0.05, 0.055, 0.055]  # ... then 55 ms, no turn
    now[0] += 0.07  # past the last turn taken: free again
    assert pacer.delay() == 0.0
    assert RefusalPacer(rate=0.0, max_wait=1.0).delay() == 0.0  # off


def test_refusals_past_the_rate_wait_their_turn():
    """Through the app: with the default settings (100 a second, at most 0.5 s), 11 refusals at
    once are answered over about 0.1 s; a request that is not refused does not wait."""
    import time

    from app.core.config import Settings

    settings = Settings()
    assert (settings.refusal_rate, settings.refusal_wait_s) == (100.0, 0.5)
    engine = Engine(None, queue_size=2, batch_max=1)
    engine._pending.extend([object()] * 3)
    route = SimpleNamespace(methods={"POST"}, path="/v1/analyze")
    answered = []

    async def inner(scope, receive, send):
        answered.append(scope["path"])

    admission = Admission(
        inner,
        state=SimpleNamespace(engine=engine),
        routes={route.path: route},
        metrics=Metrics(),
        pacer=RefusalPacer(settings.refusal_rate, settings.refusal_wait_s),
    )

    async def one(path):
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": path, "headers": []}
        await admission(scope, None, send)
        return time.monotonic(), sent

    async def run():
        t0 = time.monotonic()
        refused = await asyncio.gather(*(one("/v1/analyze") for _ in range(11)))
        passed, _ = await one("/v1/other")
        return t0, refused, passed

    t0, refused, passed = asyncio.run(run())
    done = sorted(t - t0 for t, _ in refused)
    assert all(sent[0]["status"] == 503 for _, sent in refused)
    assert done[0] < 0.05 and 0.1 <= done[-1] < 0.4
    assert answered == ["/v1/other"]
