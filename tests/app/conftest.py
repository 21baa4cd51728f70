"""Fixtures for the service tests: one app over the session's loaded analyzer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


@pytest.fixture(scope="session")
def client(analyzer):
    settings = Settings(max_image_bytes=2 * 1024 * 1024)
    with TestClient(create_app(settings, analyzer=analyzer)) as c:
        yield c


@pytest.fixture(scope="session")
def assert_error():
    """Check a JSON error response: status, ``{"error": {"code", "message"}}`` and the code."""

    def check(r, status, code=None):
        assert r.status_code == status, r.text
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        assert body["error"]["message"]
        if code:
            assert body["error"]["code"] == code

    return check
