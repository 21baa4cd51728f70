"""``FaceAnalyzer``: the pipeline every door (library, CLI, service, batch) goes through.

bytes -> RGB image -> faces (detector) -> 68 landmarks -> aligned chips -> descriptor/heads.
Each stage's model loads once, lazily (or all at once with :meth:`FaceAnalyzer.load`), and one
analyzer may be called from several threads at once: model loading is guarded by locks and the
stages that keep mutable state inside their model serialise their own calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from facecore.detect import DETECTORS, FaceDetector, make_detector, order_and_cap
from facecore.io import ImageLimits, load_image
from facecore.types import Face

__all__ = ["AnalyzerConfig", "FaceAnalyzer", "STAGES", "get_default_analyzer"]

log = logging.getLogger(__name__)

#: Stages after detection, in pipeline order, and the stages each one needs before it.
STAGE_REQUIRES: dict[str, tuple[str, ...]] = {
    "landmarks": (),
    "trunk": ("landmarks",),
    "attractiveness": ("landmarks", "trunk"),
}
STAGES = tuple(STAGE_REQUIRES)
#: The ``Face.predictions`` keys each stage writes.
STAGE_PREDICTIONS: dict[str, tuple[str, ...]] = {"attractiveness": ("attractiveness",)}


@dataclass(frozen=True)
class AnalyzerConfig:
    """Settings of a :class:`FaceAnalyzer` (all have working defaults)."""

    detector: str = "auto"
    hog_upsample: int = 0
    hog_threshold: float = 0.0
    mtcnn_threshold: float = 0.9
    mtcnn_min_face_size: int = 20
    detect_max_side: int | None = 1280
    max_faces: int = 20
    stages: tuple[str, ...] = ("landmarks", "trunk")
    attractiveness_model: str = "attractiveness_scut"
    limits: ImageLimits = field(default_factory=ImageLimits)

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        unknown = [s for s in self.stages if s not in STAGE_REQUIRES]
        if unknown:
            raise ValueError(f"unknown stages {unknown}; known: {list(STAGES)}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")


def default_stages() -> tuple[str, ...]:
    """The stages a batch or score run uses: landmarks and every prediction stage."""
    return ("landmarks", *STAGE_PREDICTIONS)


def _with_requirements(stages: Sequence[str]) -> tuple[str, ...]:
    wanted: set[str] = set()

    def add(s: str) -> None:
        if s not in STAGE_REQUIRES:
            raise ValueError(f"unknown stage {s!r}; known: {list(STAGES)}")
        for r in STAGE_REQUIRES[s]:
            add(r)
        wanted.add(s)

    for s in stages:
        add(s)
    return tuple(s for s in STAGES if s in wanted)


class FaceAnalyzer:
    """Detect faces and run the configured stages on them.

    Parameters
    ----------
    config : AnalyzerConfig, optional
    **overrides
        Fields of :class:`AnalyzerConfig` to override, e.g. ``FaceAnalyzer(detector="mtcnn")``.

    Examples
    --------
    >>> analyzer = FaceAnalyzer(stages=("landmarks",))
    >>> faces = analyzer.analyze("photo.jpg")          # doctest: +SKIP
    >>> faces[0].box, faces[0].landmarks.shape         # doctest: +SKIP
    """

    def __init__(self, config: AnalyzerConfig | None = None, **overrides: Any) -> None:
        cfg = config or AnalyzerConfig()
        if overrides:
            cfg = replace(cfg, **overrides)
        self.config = cfg
        self._lock = threading.Lock()
        # Built now (cheap: no model file is read) so that a bad detector setting fails here,
        # at construction, rather than on the first image.
        self._detector: FaceDetector = self._build_detector()
        self._stages: dict[str, Callable[[np.ndarray, list[Face]], list[Face]]] = {}
        self._ready = False

    # -- construction -----------------------------------------------------------------------
    def _build_detector(self) -> FaceDetector:
        c = self.config
        kw: dict[str, Any] = {}
        if c.detector in ("hog", "auto"):
            p = "hog_" if c.detector == "auto" else ""
            kw |= {
                f"{p}upsample": c.hog_upsample,
                f"{p}threshold": c.hog_threshold,
                f"{p}max_side": c.detect_max_side,
            }
        if c.detector in ("mtcnn", "auto"):
            p = "mtcnn_" if c.detector == "auto" else ""
            kw |= {
                f"{p}threshold": c.mtcnn_threshold,
                f"{p}min_face_size": c.mtcnn_min_face_size,
                f"{p}max_side": c.detect_max_side,
            }
        return make_detector(c.detector, **kw)

    def _build_stage(self, name: str) -> Callable[[np.ndarray, list[Face]], list[Face]]:
        if name == "landmarks":
            from facecore.landmarks import LandmarkPredictor

            return LandmarkPredictor()
        if name == "trunk":
            from facecore.descriptor import TorchTrunk

            return TorchTrunk()
        if name == "attractiveness":
            from facecore.attractiveness.model import AttractivenessScorer

            return AttractivenessScorer(self.config.attractiveness_model)
        raise ValueError(f"unknown stage {name!r}")

    @property
    def detector(self) -> FaceDetector:
        return self._detector

    def _stage(self, name: str) -> Callable[[np.ndarray, list[Face]], list[Face]]:
        stage = self._stages.get(name)
        if stage is None:
            with self._lock:
                stage = self._stages.get(name)
                if stage is None:
                    stage = self._build_stage(name)
                    self._stages[name] = stage
        return stage

    def load(self) -> FaceAnalyzer:
        """Load every model the configured stages need now (raises if a file is bad)."""
        self.detector.load()
        for name in _with_requirements(self.config.stages):
            stage = self._stage(name)
            if hasattr(stage, "load"):
                stage.load()
        self._ready = True
        return self

    @property
    def stages(self) -> tuple[str, ...]:
        """The configured stages with the stages they need, in pipeline order."""
        return _with_requirements(self.config.stages)

    @property
    def prediction_names(self) -> tuple[str, ...]:
        """Names of the predictions the configured stages add to each face."""
        return tuple(n for s in self.stages for n in STAGE_PREDICTIONS.get(s, ()))

    @property
    def ready(self) -> bool:
        """True once :meth:`load` has loaded every model."""
        return self._ready

    # -- running ----------------------------------------------------------------------------
    def load_image(self, source: Any) -> np.ndarray:
        """Decode ``source`` with this analyzer's image limits."""
        return load_image(source, limits=self.config.limits)

    def detect(self, image: Any) -> list[Face]:
        """Faces in ``image`` (anything :func:`facecore.io.load_image` takes), largest first."""
        return self.detect_loaded(self.load_image(image))

    def detect_loaded(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an image already decoded by :meth:`load_image` (no second decode)."""
        return order_and_cap(self.detector.detect(rgb), self.config.max_faces)

    def analyze(self, image: Any, stages: Sequence[str] | None = None) -> list[Face]:
        """Detect faces and run ``stages`` (default: the configured ones) on each.

        Returns
        -------
        list of Face
            Largest face first; an image without faces gives an empty list.
        """
        return self.analyze_image(image, stages)[1]

    def analyze_image(
        self, image: Any, stages: Sequence[str] | None = None
    ) -> tuple[np.ndarray, list[Face]]:
        """Like :meth:`analyze`, and also return the decoded RGB image (e.g. for its size)."""
        rgb = self.load_image(image)
        return rgb, self.run_stages(rgb, self.detect_loaded(rgb), stages)

    def run_stages(
        self, image: np.ndarray, faces: list[Face], stages: Sequence[str] | None = None
    ) -> list[Face]:
        """Run stages on faces that were already detected in ``image``."""
        if not faces:
            return []
        for name in _with_requirements(self.config.stages if stages is None else stages):
            faces = self._stage(name)(image, faces)
        return faces


_default: FaceAnalyzer | None = None
_default_lock = threading.Lock()


def get_default_analyzer() -> FaceAnalyzer:
    """The process-wide analyzer behind :func:`facecore.analyze` (built on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = FaceAnalyzer()
    return _default
