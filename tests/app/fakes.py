"""The fake analyzer of the service tests (see ``conftest.py``); a module of its own so that
tests outside fixtures (``test_fuzz.py``, built at import) can use it too."""

from __future__ import annotations

import numpy as np

from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
from facecore.quality.warnings import low_quality_warning
from facecore.stages import Output
from facecore.types import Box, DecodedImage, Face, Prediction

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


#: The fake quality head's value for each face (the second face is below the fake app's
#: threshold, FAKE_QUALITY_THRESHOLD).
FAKE_QUALITY = (0.9, 0.2)
FAKE_QUALITY_THRESHOLD = 0.5


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
    model_name = "fake_age"

    def apply(self, index: int, face: Face) -> Face:
        p = Prediction.from_distribution(FAKE_AGE_BINS, FAKE_AGE_PROBS, model="fake_age")
        return face.with_prediction("age", p)


class FakeQuality(FakeStage):
    """Like the real quality stage, it warns about the faces below its threshold
    (:data:`FAKE_QUALITY_THRESHOLD`)."""

    name = "quality"
    requires = ("trunk",)
    provides = (Output("quality", scale=(0.0, 1.0), unit="quality"),)
    model_name = "fake_quality"
    warns = True

    def apply(self, index: int, face: Face) -> Face:
        q = FAKE_QUALITY[index]
        face = face.with_prediction("quality", Prediction(q, "fake_quality"))
        warning = low_quality_warning(q, FAKE_QUALITY_THRESHOLD, face.box.width)
        return face if warning is None else face.with_warning(warning)


class FakeAnalyzer(FaceAnalyzer):
    """A real analyzer over fixed faces and fake stages.

    ``fakes`` holds the stages by name (``fakes["trunk"].calls``, ...), ``detected`` the shape of
    every image that reached detection; set ``faces`` to change what is found. ``load`` loads the
    fake stages only (no detector model).
    """

    def __init__(self, config: AnalyzerConfig | None = None, faces=FAKE_FACES) -> None:
        self.fakes: dict[str, FakeStage] = {
            s.name: s
            for s in (FakeLandmarks(), FakeTrunk(), FakeAttractiveness(), FakeAge(), FakeQuality())
        }
        super().__init__(config, stages=list(self.fakes.values()))
        self.faces = list(faces)
        self.detected: list[tuple[int, ...]] = []
        self.loaded = False

    def detect_loaded(self, image: DecodedImage | np.ndarray) -> list[Face]:
        rgb = image.pixels if isinstance(image, DecodedImage) else image
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
