"""Fixtures for the service tests.

Two kinds of app:

* ``fake_client``: request handling without the models. The app is built from ``settings`` as in
  production (its own analyzer comes from ``settings.analyzer``, nothing preloaded), and
  ``app.dependency_overrides[get_analyzer]`` swaps in a :class:`FakeAnalyzer`: a real
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
from fastapi.testclient import TestClient
from PIL import Image

from app.api.deps import get_analyzer
from app.core.config import Settings
from app.main import create_app
from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
from facecore.io import ImageLimits
from facecore.stages import Output
from facecore.types import Box, Face, Prediction

MIB = 1024 * 1024

#: Image limit of the fake app (the request limit is derived from it).
FAKE_MAX_BYTES = 2 * MIB

#: Size of the ``png`` fixture.
PNG_SIZE = (96, 64)

#: What the fake detector finds: a HOG face and a smaller MTCNN face with its 5 keypoints.
FAKE_FACES = (
    Face(Box(10.0, 12.0, 50.0, 52.0), detector_score=1.5, detector="hog"),
    Face(
        Box(60.0, 8.0, 90.0, 38.0),
        detector_score=0.75,
        detector="mtcnn",
        keypoints=[[68, 18], [82, 18], [75, 24], [70, 30], [80, 30]],
    ),
)

#: The fake attractiveness head's value for each face, and its model name.
FAKE_ATTRACTIVENESS = (3.25, 2.5)
FAKE_ATTRACTIVENESS_MODEL = "fake_attractiveness"
#: The fake age head's distribution: value 38.8, 90% interval [30, 50].
FAKE_AGE_BINS = (20.0, 30.0, 40.0, 50.0)
FAKE_AGE_PROBS = (0.02, 0.28, 0.5, 0.2)


def fake_landmarks(box: Box) -> list[list[float]]:
    """The fake landmarks stage's 68 points for a face box: a 17 x 4 grid of whole pixels."""
    return [[box.x1 + 1 + i % 17, box.y1 + 1 + i // 17] for i in range(68)]


def fake_embedding(index: int) -> list[float]:
    """The fake trunk's descriptor of the ``index``-th face."""
    return [0.5 * (index + 1)] * 128


class FakeStage:
    """A stage with a fixed output per face; records the image shape and face count of every
    call."""

    name = "fake"
    requires: tuple[str, ...] = ()
    provides: tuple[Output, ...] = ()

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], int]] = []
        self.loaded = False

    def load(self) -> None:
        self.loaded = True

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        self.calls.append((image.shape, len(faces)))
        return [self.apply(i, f) for i, f in enumerate(faces)]

    def apply(self, index: int, face: Face) -> Face:
        raise NotImplementedError


class FakeLandmarks(FakeStage):
    name = "landmarks"

    def apply(self, index: int, face: Face) -> Face:
        return face.evolve(landmarks=fake_landmarks(face.box))


class FakeTrunk(FakeStage):
    name = "trunk"
    requires = ("landmarks",)

    def apply(self, index: int, face: Face) -> Face:
        if face.landmarks is None:
            raise AssertionError("trunk ran before landmarks")
        emb = np.array(fake_embedding(index), np.float32)
        return face.evolve(embedding=emb).with_features(trunk=np.tile(emb, 7))


class FakeAttractiveness(FakeStage):
    name = "attractiveness"
    requires = ("landmarks", "trunk")
    provides = (Output("attractiveness", scale=(1.0, 5.0), unit="score"),)
    model_name = FAKE_ATTRACTIVENESS_MODEL

    def apply(self, index: int, face: Face) -> Face:
        if "trunk" not in face.features:
            raise AssertionError("attractiveness ran before the trunk")
        p = Prediction(FAKE_ATTRACTIVENESS[index], FAKE_ATTRACTIVENESS_MODEL)
        return face.with_prediction("attractiveness", p)


class FakeAge(FakeStage):
    """A head with a distribution (not a registered stage: the analyzer runs it as given)."""

    name = "age"
    requires = ("trunk",)
    provides = (Output("age", distribution=True, scale=(0.0, 100.0), unit="years"),)

    def apply(self, index: int, face: Face) -> Face:
        p = Prediction.from_distribution(FAKE_AGE_BINS, FAKE_AGE_PROBS, model="fake_age")
        return face.with_prediction("age", p)


class FakeAnalyzer(FaceAnalyzer):
    """A real analyzer over fixed faces and fake stages.

    ``fakes`` holds the stages by name (``fakes["trunk"].calls``, ...), ``detected`` the shape of
    every image that reached detection; set ``faces`` to change what is found. ``load`` loads the
    fake stages only (no detector model).
    """

    def __init__(self, config: AnalyzerConfig | None = None, faces=FAKE_FACES) -> None:
        self.fakes: dict[str, FakeStage] = {
            s.name: s for s in (FakeLandmarks(), FakeTrunk(), FakeAttractiveness(), FakeAge())
        }
        super().__init__(config, stages=list(self.fakes.values()))
        self.faces = list(faces)
        self.detected: list[tuple[int, ...]] = []
        self.loaded = False

    def detect_loaded(self, rgb: np.ndarray) -> list[Face]:
        self.detected.append(rgb.shape)
        return list(self.faces)

    def load(self) -> FakeAnalyzer:
        for name in self.stages:
            self.stage(name).load()
        self.loaded = True
        return self

    @property
    def ready(self) -> bool:
        return self.loaded

    def calls(self) -> dict[str, int]:
        """How many times each fake stage ran."""
        return {name: len(s.calls) for name, s in self.fakes.items()}


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


@pytest.fixture
def settings() -> Settings:
    """Settings of the fake app: a 2 MiB image limit, models not preloaded."""
    return Settings(
        analyzer=AnalyzerConfig(limits=ImageLimits(max_bytes=FAKE_MAX_BYTES)), preload=False
    )


@pytest.fixture
def fake_analyzer(settings) -> FakeAnalyzer:
    return FakeAnalyzer(settings.analyzer)


@pytest.fixture
def fake_client(settings, fake_analyzer):
    app = create_app(settings)
    app.dependency_overrides[get_analyzer] = lambda: fake_analyzer
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
