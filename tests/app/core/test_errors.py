"""Every error is JSON ``{"error": {"code", "message"}}``; bad input is a 4xx, a model that cannot
be loaded a 503, and a bug a 500 that shows nothing of its cause."""

import json

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.errors import status_for
from app.main import create_app
from facecore import errors
from facecore.model_store import models_dir


def test_unknown_route_and_method_are_json(fake_client, assert_error):
    assert_error(fake_client.get("/nope"), 404, "not_found")
    assert_error(fake_client.get("/v1/faces"), 405, "method_not_allowed")
    assert_error(fake_client.post("/v1/stages"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "exc,status",
    [
        (errors.ImageTooLargeError, 413),
        (errors.UnsupportedImageError, 415),
        (errors.UndecodableImageError, 422),
        (errors.ImageTooSmallError, 422),
        (errors.UnknownStageError, 422),
        (errors.UnknownModelError, 422),
        (errors.ModelNotFoundError, 503),
        (errors.ModelCorruptError, 503),
    ],
)
def test_status_of_each_error(exc, status):
    assert status_for(exc("x")) == status


def test_model_error_during_a_request_is_503(
    fake_client, fake_analyzer, png, assert_error, monkeypatch
):
    """A model that fails to load lazily, on the first request that needs it."""

    def broken(index, face):
        raise errors.ModelCorruptError("trunk.dat is corrupt: sha256 mismatch")

    monkeypatch.setattr(fake_analyzer.fakes["trunk"], "apply", broken)
    err = assert_error(fake_client.post("/v1/score", files={"file": png}), 503, "model_corrupt")
    assert "trunk.dat" in err["message"]


def test_bug_is_an_opaque_500(settings, fake_analyzer, png, assert_error, monkeypatch):
    def bug(index, face):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(fake_analyzer.fakes["attractiveness"], "apply", bug)
    app = create_app(settings, analyzer=fake_analyzer)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v1/analyze", files={"file": png})
    err = assert_error(r, 500, "internal_error")
    assert "secret" not in r.text and err["message"]


def test_missing_model_files_are_503(tmp_path, png, monkeypatch, assert_error):
    """End to end: the real loader with a models folder whose files are absent."""
    manifest = json.loads((models_dir() / "manifest.json").read_text())
    # Only the entries the default stages name (so the settings are valid); the bundled
    # attractiveness file is absent from this folder.
    keep = {"attractiveness_scut", "age_utkface", "quality_faces", "dlib_face_recognition_resnet"}
    manifest["models"] = [m for m in manifest["models"] if m["name"] in keep]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    with TestClient(create_app(Settings())) as c:
        c.app.state.loader.join(timeout=60)
        assert not c.app.state.loader.is_alive()
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "failed", r.text
        assert_error(c.post("/v1/faces", files={"file": png}), 503, "model_unavailable")
