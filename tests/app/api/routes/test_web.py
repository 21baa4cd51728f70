"""The web page's files: served at ``/`` and ``/static/``, open when API keys are set, and not in
the OpenAPI schema. What the page does is tested in a real browser (``tests/app/test_browser.py``).
"""

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.routes.web import STATIC_DIR
from app.main import create_app
from facecore.beauty.pipeline import DEFAULT_SMOOTH, DEFAULT_WARP


def test_index_and_assets(fake_client):
    r = fake_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    # Every file the page loads from this origin is served.
    for href in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        asset = fake_client.get(href)
        assert asset.status_code == 200, href
        assert asset.content == (STATIC_DIR / href.removeprefix("/static/")).read_bytes()
    assert fake_client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert fake_client.get("/static/style.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/static/index.html", "/static/../main.py", "/static/x.js"])
def test_only_the_listed_files(fake_client, path):
    assert fake_client.get(path).status_code == 404


def test_not_in_the_schema(fake_client):
    paths = fake_client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith(("/v1/", "/healthz", "/readyz", "/metrics"))]


def test_open_when_keys_are_set(settings, fake_analyzer):
    app = create_app(
        settings.model_copy(update={"api_keys": SecretStr("k1")}), analyzer=fake_analyzer
    )
    with TestClient(app) as c:
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert c.post("/v1/analyze").status_code == 401


def test_sliders_start_at_the_route_defaults():
    html = (STATIC_DIR / "index.html").read_text("utf-8")
    for name, default in (("warp", DEFAULT_WARP), ("smooth", DEFAULT_SMOOTH)):
        (value,) = re.findall(rf'id="{name}" type="range"[^>]* value="([^"]+)"', html)
        (shown,) = re.findall(rf'<output id="{name}-value"[^>]*>([^<]+)<', html)
        assert float(value) == float(shown) == default, name
