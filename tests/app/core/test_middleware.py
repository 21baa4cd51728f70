"""Request ids, structured logs, the 500 handler, 405 answers and the metrics."""

import asyncio
import json
import logging

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.core.logs import JsonFormatter
from app.core.metrics import Metrics
from app.core.middleware import REFUSED, Lifecycle, RequestContext, valid_request_id
from app.main import create_app


def test_request_id_is_made_and_echoed(fake_client, png):
    a = fake_client.get("/healthz").headers["x-request-id"]
    b = fake_client.post("/v1/faces", files={"file": png}).headers["x-request-id"]
    assert len(a) == 32 and a != b


@pytest.mark.parametrize(
    "sent,kept",
    [
        ("abc-123", True),
        ("trace.id:9_Z", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("<script>", False),
        ("é".encode(), False),
        ("", False),
    ],
)
def test_client_request_id_is_validated(fake_client, sent, kept):
    got = fake_client.get("/healthz", headers={"X-Request-ID": sent}).headers["x-request-id"]
    assert (got == sent) is kept or (isinstance(sent, bytes) and not kept)
    assert valid_request_id(got) == got


def test_every_answer_has_the_id(fake_client, assert_error):
    """Errors made by the middlewares and the router carry it too."""
    for r in (
        fake_client.get("/nope"),
        fake_client.put("/v1/faces"),
        fake_client.post("/v1/faces", content=b"x" * (4 << 20)),
    ):
        assert r.headers["x-request-id"], r.status_code


def test_405_has_allow(fake_client, assert_error):
    r = fake_client.get("/v1/analyze")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    r = fake_client.post("/healthz")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET"


def test_logs_are_json_with_the_request_id(fake_client, png, caplog):
    with caplog.at_level(logging.INFO):
        r = fake_client.post("/v1/faces", files={"file": png}, headers={"X-Request-ID": "rid-42"})
    (rec,) = [x for x in caplog.records if x.name == "app.access"]
    line = json.loads(JsonFormatter().format(rec))
    assert line["request_id"] == "rid-42" == r.headers["x-request-id"]
    assert line["logger"] == "app.access" and line["level"] == "info"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/faces", 200)
    assert line["duration_ms"] >= 0


def test_the_500_handler(settings, fake_analyzer, caplog, assert_error):
    """Documented: a route that raises is a 500 JSON ``internal_error`` (nothing of the cause),
    logged with its traceback and the request id."""
    app = create_app(settings, analyzer=fake_analyzer)
    router = APIRouter()

    @router.get("/v1/boom")
    async def boom():
        raise RuntimeError("secret internal detail")

    app.include_router(router)
    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/v1/boom", headers={"X-Request-ID": "boom-1"})
    err = assert_error(r, 500, "internal_error")
    assert "secret" not in r.text and err["message"]
    assert r.headers["x-request-id"] == "boom-1"
    (rec,) = [x for x in caplog.records if x.levelno == logging.ERROR]
    line = json.loads(JsonFormatter().format(rec))
    assert line["request_id"] == "boom-1" and "RuntimeError: secret" in line["exc_info"]


def test_metrics(fake_client, png):
    fake_client.post("/v1/analyze", files={"file": png})
    fake_client.post("/v1/analyze", files={"file": ("x", b"junk")})
    fake_client.get("/nope/1")
    fake_client.get("/nope/2")
    r = fake_client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in [
        'facecore_http_requests_total{method="POST",route="/v1/analyze",status="200"} 1.0',
        'facecore_http_requests_total{method="POST",route="/v1/analyze",status="422"} 1.0',
        'facecore_http_requests_total{method="GET",route="unmatched",status="404"} 2.0',
        'facecore_http_request_duration_seconds_count{method="POST",route="/v1/analyze"} 2.0',
        'facecore_stage_seconds_count{stage="decode"} 2.0',
        'facecore_stage_seconds_count{stage="detect"} 1.0',
        'facecore_stage_seconds_count{stage="landmarks"} 1.0',
        'facecore_stage_seconds_count{stage="trunk"} 1.0',
        'facecore_stage_seconds_count{stage="attractiveness"} 1.0',
        'facecore_images_total{outcome="ok"} 1.0',
        'facecore_images_total{outcome="undecodable_image"} 1.0',
        "facecore_queue_depth 0.0",
        "facecore_images_in_flight 0.0",
        "facecore_models_loaded 0.0",  # preload off: nothing loaded up front
        'facecore_workers{state="loading"} 2.0',
    ]:
        assert line in text, line


def test_refusals_are_logged_in_one_summary_a_second(caplog):
    """A request marked refused (by Admission) gets no access record of its own: one summary
    record per interval counts them; it is still counted in the metrics and gets an id. An
    unmarked 503 keeps its own record."""
    sent = []

    async def inner(scope, receive, send):
        if scope["path"] == "/v1/analyze":
            scope[REFUSED] = "overloaded"
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    metrics = Metrics()
    context = RequestContext(
        inner, metrics=metrics, lifecycle=Lifecycle(), timeout_s=5.0, refusal_log_s=0.05
    )

    async def run():
        def scope(path):
            return {"type": "http", "method": "POST", "path": path, "headers": []}

        for _ in range(5):
            await context(scope("/v1/analyze"), receive, send)
        await context(scope("/v1/faces"), receive, send)
        await asyncio.sleep(0.3)
        for _ in range(2):
            await context(scope("/v1/analyze"), receive, send)
        await asyncio.sleep(0.3)

    with caplog.at_level(logging.INFO, logger="app.access"):
        asyncio.run(run())
    records = [r for r in caplog.records if r.name == "app.access"]
    assert [(r.status, getattr(r, "count", None)) for r in records] == [
        (503, None),  # /v1/faces, logged as it ends
        (503, 5),
        (503, 2),
    ]
    assert records[1].reason == "overloaded" and 0.05 <= records[1].seconds < 0.3
    assert records[1].getMessage().startswith("5 requests refused (overloaded) in ")
    assert metrics.requests.labels("unmatched", "POST", "503")._value.get() == 8
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert all(dict(m["headers"]).get(b"x-request-id") for m in starts) and len(starts) == 8
