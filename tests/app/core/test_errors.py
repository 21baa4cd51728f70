"""Every error is JSON; model-loading failures are 503."""

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


def test_unknown_route_and_method_are_json(client, assert_error):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/v1/faces"), 405, "method_not_allowed")


def test_model_load_failure_is_503(tmp_path, one_face_photo, monkeypatch, assert_error):
    (tmp_path / "manifest.json").write_text('{"models": []}')
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    with TestClient(create_app(Settings())) as c:
        c.app.state.loader.join(timeout=30)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "failed"
        assert_error(c.post("/v1/faces", files={"file": one_face_photo.open("rb")}), 503)
