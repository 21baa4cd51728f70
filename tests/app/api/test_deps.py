"""app.api.deps: the providers give the app's analyzer, engine and a service per request; a
failed model load is a 503 before the body is read."""

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.deps import EngineDep, ImageBytes, Images, ServiceDep
from app.core.errors import install_error_handlers


@pytest.fixture
def app(fake_analyzer):
    app = FastAPI()
    install_error_handlers(app)
    app.state.analyzer = fake_analyzer
    app.state.engine = SimpleNamespace(load_error=None)
    app.state.settings = SimpleNamespace(max_images=2)

    @app.middleware("http")
    async def request_id(request, call_next):
        request.state.request_id = "rid-7"
        return await call_next(request)

    @app.post("/service")
    async def service(service: ServiceDep, engine: EngineDep, data: ImageBytes):
        assert service.analyzer is fake_analyzer and service.engine is engine
        return {"request_id": service.request_id, "bytes": len(data)}

    @app.post("/images")
    async def images(upload: Images):
        return {"batch": upload.batch, "n": len(upload.images)}

    return app


def test_a_service_per_request(app, png):
    with TestClient(app) as c:
        r = c.post("/service", files={"file": png})
        assert r.json() == {"request_id": "rid-7", "bytes": len(png)}
        r = c.post("/images", files=[("files", b"1"), ("files", b"2")])
        assert r.json() == {"batch": True, "n": 2}
        r = c.post("/images", files=[("files", b"1")] * 3)  # the app's max_images
        assert r.json()["error"]["code"] == "too_many_images"


def test_failed_models_are_503_before_the_body(app):
    app.state.engine.load_error = "corrupt file"
    with TestClient(app) as c:
        r = c.post("/service", content=b"not multipart")
    assert r.status_code == 503
    assert r.json()["error"] == {
        "code": "model_unavailable",
        "message": "models could not be loaded: corrupt file",
    }
