"""API keys: with FACECORE_API_KEYS set every /v1 route needs one (X-API-Key or Bearer), health,
readiness, metrics and the docs stay open, and no key is ever logged."""

import hmac
import logging

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.auth import ApiKeyAuth
from app.main import create_app

KEYS = "k-alpha-123,k-beta-456"


@pytest.fixture
def keyed(settings, fake_analyzer):
    app = create_app(
        settings.model_copy(update={"api_keys": SecretStr(KEYS)}), analyzer=fake_analyzer
    )
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "k-alpha-123"},
        {"Authorization": "Basic k-alpha-123"},
        {"X-API-Key": ""},
        {"X-API-Key": "k-alpha-12"},
    ],
    ids=["none", "wrong-key", "wrong-bearer", "no-scheme", "basic", "empty", "prefix"],
)
def test_v1_routes_need_a_key(keyed, fake_analyzer, png, assert_error, headers):
    for method, path, kw in [
        ("post", "/v1/analyze", {"files": {"file": png}}),
        ("post", "/v1/faces", {"files": {"file": png}}),
        ("post", "/v1/score", {"files": {"file": png}}),
        ("get", "/v1/stages", {}),
        ("get", "/v1/nope", {}),  # before routing: an unknown /v1 path says nothing either
        ("put", "/v1/analyze", {}),
    ]:
        r = getattr(keyed, method)(path, headers=headers, **kw)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert fake_analyzer.detected == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "k-alpha-123"},
        {"X-API-Key": "k-beta-456"},
        {"Authorization": "Bearer k-beta-456"},
        {"Authorization": "bearer  k-alpha-123 "},
    ],
)
def test_a_valid_key_passes(keyed, png, headers):
    assert keyed.post("/v1/analyze", files={"file": png}, headers=headers).status_code == 200
    assert keyed.get("/v1/stages", headers=headers).status_code == 200


def test_open_routes(keyed):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert keyed.get(path).status_code in (200, 503), path  # readyz: not loaded here


def test_keys_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth = ApiKeyAuth(app=None, keys=(b"one", b"two", b"three"))
    assert auth.allowed(b"one") and not auth.allowed(b"nope") and not auth.allowed(None)
    # Every key compared every time (no early exit at the first match).
    assert [b for _, b in calls] == [b"one", b"two", b"three"] * 2


def test_keys_never_logged(settings, fake_analyzer, png, caplog, capfd):
    with caplog.at_level(logging.DEBUG):
        app = create_app(
            settings.model_copy(update={"api_keys": SecretStr(KEYS)}), analyzer=fake_analyzer
        )
        with TestClient(app) as c:
            c.post("/v1/analyze", files={"file": png}, headers={"X-API-Key": "k-alpha-123"})
            c.post("/v1/analyze", files={"file": png}, headers={"X-API-Key": "k-guess-789"})
    out, err = capfd.readouterr()
    text = caplog.text + out + err
    assert "app.access" in caplog.text  # requests were logged ...
    for secret in ("k-alpha-123", "k-beta-456", "k-guess-789"):
        assert secret not in text  # ... without the keys
    assert "k-alpha" not in repr(settings.model_copy(update={"api_keys": SecretStr(KEYS)}))


def test_no_key_logs_a_warning(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="app"):
        create_app(settings)
    assert "FACECORE_API_KEYS is not set" in caplog.text


def test_keys_from_the_environment(monkeypatch):
    from app.core.config import Settings

    monkeypatch.setenv("FACECORE_API_KEYS", " a1 , b2,, ")
    assert Settings().keys == (b"a1", b"b2")


def test_schema_declares_the_security(keyed):
    doc = keyed.get("/openapi.json").json()
    assert set(doc["components"]["securitySchemes"]) == {"ApiKeyHeader", "BearerAuth"}
    for path, ops in doc["paths"].items():
        for op in ops.values():
            if path.startswith("/v1/"):
                assert op["security"] == [{"ApiKeyHeader": []}, {"BearerAuth": []}], path
                assert "401" in op["responses"], path
            else:
                assert "security" not in op, path


def test_cors(settings, fake_analyzer):
    app = create_app(
        settings.model_copy(
            update={"cors_origins": "https://a.example", "api_keys": SecretStr(KEYS)}
        )
    )
    with TestClient(app) as c:
        pre = c.options(
            "/v1/analyze",
            headers={
                "Origin": "https://a.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key",
            },
        )
        assert pre.status_code == 200  # a preflight needs no key
        assert pre.headers["access-control-allow-origin"] == "https://a.example"
        r = c.get("/v1/stages", headers={"Origin": "https://a.example"})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"]
        r = c.get("/healthz", headers={"Origin": "https://b.example"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(settings)) as c:  # no origins set: no CORS headers at all
        r = c.get("/healthz", headers={"Origin": "https://a.example"})
        assert "access-control-allow-origin" not in r.headers
