"""GET /healthz and /readyz, and what requests get while models load or after loading failed."""

from fastapi.testclient import TestClient

from app.main import create_app
from facecore.errors import ModelNotFoundError


def test_healthz(fake_client):
    r = fake_client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "detail": None}


def test_ready_with_loaded_models(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "detail": None}


def test_not_ready_until_loaded(fake_client):
    """Preload off: the app's own analyzer (built from the settings) has not loaded anything."""
    assert not fake_client.app.state.analyzer.ready
    r = fake_client.get("/readyz")
    assert r.status_code == 503 and r.json() == {"status": "loading", "detail": None}


def test_preload_in_background(settings, fake_analyzer):
    app = create_app(settings.model_copy(update={"preload": True}), analyzer=fake_analyzer)
    with TestClient(app) as c:
        c.app.state.loader.join(timeout=30)
        assert not c.app.state.loader.is_alive()
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
    assert all(s.loaded for s in fake_analyzer.fakes.values())


def test_failed_load_is_503_everywhere(settings, fake_analyzer, png, assert_error, monkeypatch):
    def broken() -> None:
        raise ModelNotFoundError("model file trunk.dat is missing")

    monkeypatch.setattr(fake_analyzer.fakes["trunk"], "load", broken)
    app = create_app(settings.model_copy(update={"preload": True}), analyzer=fake_analyzer)
    with TestClient(app) as c:
        c.app.state.loader.join(timeout=30)
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "failed", "detail": "model file trunk.dat is missing"}
        for route in ("/v1/faces", "/v1/score", "/v1/analyze"):
            err = assert_error(c.post(route, files={"file": png}), 503, "model_unavailable")
            assert "trunk.dat" in err["message"]
        assert c.get("/healthz").status_code == 200
    assert fake_analyzer.detected == []
