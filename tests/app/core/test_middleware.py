"""Request ids, structured logs, the 500 handler, 405 answers and the metrics."""

import json
import logging

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.core.logs import JsonFormatter
from app.core.middleware import valid_request_id
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
