"""Fixtures for the service tests.

Two kinds of app:

* ``fake_client``: request handling without the models. The app is built from ``settings`` as in
  production, with a :class:`FakeAnalyzer` given to ``create_app`` (the analyzer its thread
  workers run and its requests are checked with): a real
  :class:`~facecore.analyzer.FaceAnalyzer` (real decoding with the configured limits, real stage
  ordering and option handling) whose detector returns :data:`FAKE_FACES` and whose stages are
  the fakes below, with fixed, exactly known outputs.
* ``client``: the session's loaded default analyzer, for the tests where the models are the
  point.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from fakes import (  # noqa: F401 - re-exported for the tests
    FAKE_AGE_BINS,
    FAKE_AGE_PROBS,
    FAKE_ATTRACTIVENESS,
    FAKE_ATTRACTIVENESS_MODEL,
    FAKE_FACES,
    FAKE_MAX_BYTES,
    FAKE_QUALITY,
    FAKE_QUALITY_THRESHOLD,
    MIB,
    PNG_SIZE,
    FakeAnalyzer,
    fake_embedding,
    fake_landmarks,
)
from fastapi.testclient import TestClient
from PIL import Image

from app.core.config import Settings
from app.main import create_app
from facecore.analyzer import AnalyzerConfig
from facecore.io import ImageLimits


def noise_png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG of random pixels (about 3 bytes a pixel: noise does not compress)."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def make_png():
    """``make_png(width, height)``: a valid PNG of random pixels, about 3 bytes a pixel."""
    return noise_png


@pytest.fixture(scope="session")
def png() -> bytes:
    """A small valid PNG, 96 x 64."""
    return noise_png(*PNG_SIZE)


@pytest.fixture(scope="session")
def fake_face_json():
    """``fake_face_json(i, points=..., embedding=..., predictions=...)``: the JSON record the
    service must give for the fake analyzer's ``i``-th face (written out here, not made by the
    serialiser under test)."""

    def make(
        index: int,
        *,
        points: bool = True,
        landmarks: bool = True,
        embedding: bool = False,
        predictions: tuple[str, ...] = (),
    ) -> dict:
        face = FAKE_FACES[index]
        keypoints = None if face.keypoints is None or not points else face.keypoints.tolist()
        preds = {}
        if "attractiveness" in predictions:
            preds["attractiveness"] = {
                "value": FAKE_ATTRACTIVENESS[index],
                "model": FAKE_ATTRACTIVENESS_MODEL,
                "bins": None,
                "probabilities": None,
                "interval": None,
            }
        if "quality" in predictions:
            preds["quality"] = {
                "value": FAKE_QUALITY[index],
                "model": "fake_quality",
                "bins": None,
                "probabilities": None,
                "interval": None,
            }
        if "age" in predictions:
            preds["age"] = {
                "value": pytest.approx(38.8),
                "model": "fake_age",
                "bins": list(FAKE_AGE_BINS),
                "probabilities": pytest.approx(list(FAKE_AGE_PROBS)),
                "interval": [30.0, 50.0],
            }
        return {
            "box": list(face.box.as_tuple()),
            "detector_score": face.detector_score,
            "detector": face.detector,
            "keypoints": keypoints,
            "landmarks": fake_landmarks(face.box) if points and landmarks else None,
            "embedding": fake_embedding(index) if embedding else None,
            "predictions": preds,
        }

    return make


@pytest.fixture(autouse=True)
def thread_workers(monkeypatch):
    """Apps built from the environment in these tests run their workers as threads of the test
    process (the process workers are tested with a real server, ``test_server.py``)."""
    monkeypatch.setenv("FACECORE_WORKER_MODE", "thread")


@pytest.fixture
def settings() -> Settings:
    """Settings of the fake app: a 2 MiB image limit, models not preloaded, 2 thread workers."""
    return Settings(
        analyzer=AnalyzerConfig(limits=ImageLimits(max_bytes=FAKE_MAX_BYTES)),
        preload=False,
        worker_mode="thread",
        workers=2,
        quality_threshold=FAKE_QUALITY_THRESHOLD,
    )


@pytest.fixture
def fake_analyzer(settings) -> FakeAnalyzer:
    return FakeAnalyzer(settings.analyzer)


@pytest.fixture
def fake_client(settings, fake_analyzer):
    app = create_app(settings, analyzer=fake_analyzer)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def client(analyzer):
    """The app over the session's loaded default analyzer (default settings)."""
    settings = Settings()
    assert analyzer.config == settings.analyzer, "the analyzer must be what the settings say"
    with TestClient(create_app(settings, analyzer=analyzer)) as c:
        yield c


@pytest.fixture(scope="session")
def assert_error():
    """Check a JSON error response: status, ``{"error": {"code", "message"}}`` and the code."""

    def check(r, status: int, code: str) -> dict:
        assert r.status_code == status, r.text
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert body["error"]["message"]
        assert body["error"]["code"] == code, body
        return body["error"]

    return check
