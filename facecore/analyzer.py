"""``FaceAnalyzer``: the pipeline every door (library, CLI, service, batch) goes through.

bytes -> RGB image, with a reduced copy for the detector when it is large
(:class:`~facecore.types.DecodedImage`) -> faces (detected on the reduced copy, in full-resolution
coordinates) -> the registered stages (:mod:`facecore.stages`), on the full-resolution pixels, in
the order their requirements give: ``landmarks`` -> ``trunk`` (aligned chip, one network forward
per face) -> heads (attractiveness, ...). The analyzer knows no stage by name: it builds the stages
it is asked for from the registry with their options (``AnalyzerConfig.stage_options``), or takes
stage instances (a test's fake). One image goes through the same stage loop as several
(:func:`facecore.multi.analyze_many`, :func:`facecore.multi.run_stages`). Each stage's model
loads once, lazily (or all at once with :meth:`FaceAnalyzer.load`), and one analyzer may be
called from several threads at once.

Each call of :meth:`FaceAnalyzer.analyze`, :meth:`~FaceAnalyzer.analyze_image` and
:meth:`~FaceAnalyzer.run_stages` runs with torch's intra-op threads of the calling thread set
from ``AnalyzerConfig.threads`` and restored afterwards (:func:`facecore.threads.call_threads`;
``"auto"``: fewer while other processes keep the cores busy, never more than the thread has).
The batch runner and the service's workers run :func:`facecore.multi.analyze_many` directly,
with the thread counts they set for themselves.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from facecore import multi
from facecore.detect import DetectorConfig, FaceDetector, order_and_cap, shared_detector
from facecore.detect.base import downscale_for_detection
from facecore.io import ImageLimits, ReducedLoad, load_image, load_image_reduced
from facecore.lazy import Lazy
from facecore.stages import (
    Output,
    Stage,
    build_stage,
    default_heads,
    parse_stage_list,
    resolve_order,
)
from facecore.threads import AUTO, call_threads, check_threads
from facecore.types import DecodedImage, Face

__all__ = ["AnalyzerConfig", "FaceAnalyzer", "StageOptions", "get_default_analyzer"]

log = logging.getLogger(__name__)

#: Options per stage name, e.g. ``{"attractiveness": {"model": "attractiveness_scut"}}``.
StageOptions = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class AnalyzerConfig:
    """Settings of a :class:`FaceAnalyzer` (all have working defaults).

    Attributes
    ----------
    detector : DetectorConfig
        Which detector, with its settings; a name (``"auto"``, ``"hog"``, ``"mtcnn"``) is
        accepted and turned into a config.
    max_faces : int
        Keep at most this many faces per image (the largest).
    stages : tuple of str, or None
        Stages to run after detection (their requirements are added); None runs the default
        heads (:func:`facecore.stages.default_heads`). ``()`` detects only. A comma-separated
        string is accepted (e.g. from an environment variable).
    stage_options : mapping of str to mapping
        Options per stage, e.g. ``{"attractiveness": {"model": "attractiveness_scut"}}``; a
        JSON object string is accepted.
    limits : ImageLimits
        Byte and pixel limits checked before an image is decoded.
    threads : int or "auto"
        torch's intra-op threads for each call, set in the calling thread and restored after
        it. ``"auto"`` (default) keeps the thread's count while the cores are free and uses
        fewer while other processes use them (:mod:`facecore.threads`); it never uses more than
        the thread's count. An int is used as given. A numeric string is accepted.
    """

    detector: DetectorConfig | str = field(default_factory=DetectorConfig)
    max_faces: int = 20
    stages: tuple[str, ...] | str | None = None
    stage_options: dict[str, dict[str, Any]] | str = field(default_factory=dict)
    limits: ImageLimits = field(default_factory=ImageLimits)
    threads: int | str = AUTO

    def __post_init__(self) -> None:
        object.__setattr__(self, "threads", check_threads(self.threads))
        object.__setattr__(self, "detector", DetectorConfig.of(self.detector))
        stages = self.stages
        if isinstance(stages, str):
            stages = parse_stage_list(stages)
        if stages is not None:
            object.__setattr__(self, "stages", tuple(stages))
        options = self.stage_options
        if isinstance(options, str):
            try:
                options = json.loads(options) if options.strip() else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"stage_options is not a JSON object: {e}") from None
        if not isinstance(options, Mapping) or not all(
            isinstance(v, Mapping) for v in options.values()
        ):
            raise ValueError(f"stage_options must map stage names to option dicts, got {options!r}")
        object.__setattr__(self, "stage_options", {str(k): dict(v) for k, v in options.items()})
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The stages asked for (the default heads when ``stages`` is None)."""
        return default_heads() if self.stages is None else tuple(self.stages)


def _options_key(options: Mapping[str, Any]) -> str:
    return repr(sorted(options.items()))


class FaceAnalyzer:
    """Detect faces and run stages on them.

    Parameters
    ----------
    config : AnalyzerConfig, optional
    stages : sequence of str or Stage, optional
        Stages to run, by registered name or as instances (e.g. a test's fake); replaces
        ``config.stages``.
    **overrides
        Other fields of :class:`AnalyzerConfig`, e.g. ``FaceAnalyzer(detector="mtcnn")``.

    Raises
    ------
    ValueError
        A bad setting: an unknown stage, an option a stage does not take, an unknown model.

    Examples
    --------
    >>> analyzer = FaceAnalyzer(stages=("landmarks",))
    >>> faces = analyzer.analyze("photo.jpg")          # doctest: +SKIP
    >>> faces[0].box, faces[0].landmarks.shape         # doctest: +SKIP
    """

    def __init__(
        self,
        config: AnalyzerConfig | None = None,
        *,
        stages: Sequence[str | Stage] | None = None,
        **overrides: Any,
    ) -> None:
        cfg = config or AnalyzerConfig()
        self._given: dict[str, Stage] = {}
        if stages is not None:
            names = []
            for s in stages:
                if isinstance(s, str):
                    names.append(s)
                else:
                    self._given[s.name] = s
                    names.append(s.name)
            overrides["stages"] = tuple(names)
        if overrides:
            cfg = replace(cfg, **overrides)
        self.config = cfg
        self._lock = threading.Lock()
        self._built: dict[tuple[str, str], Stage] = {}
        self._ready = False
        # Built now (cheap: no model file is read) so that a bad setting fails here, at
        # construction, rather than on the first image.
        self._detector: FaceDetector = shared_detector(cfg.detector)
        self.stage_order()

    # -- stages -------------------------------------------------------------------------------
    def stage(self, name: str, options: Mapping[str, Any] | None = None) -> Stage:
        """The stage ``name`` with the configured options updated by ``options`` (built once
        per distinct options)."""
        if name in self._given and not options:
            return self._given[name]
        opts = {**self.config.stage_options.get(name, {}), **(options or {})}
        key = (name, _options_key(opts))
        with self._lock:
            stage = self._built.get(key)
            if stage is None:
                stage = build_stage(name, **opts)
                self._built[key] = stage
        return stage

    def stage_order(
        self, stages: Sequence[str] | None = None, options: StageOptions | None = None
    ) -> tuple[str, ...]:
        """``stages`` (default: the configured ones) with their requirements, in run order."""
        options = options or {}
        wanted = self.config.stage_names if stages is None else tuple(stages)

        def requires(name: str) -> tuple[str, ...]:
            return tuple(self.stage(name, options.get(name)).requires)

        return resolve_order(wanted, requires)

    @property
    def stages(self) -> tuple[str, ...]:
        """The configured stages with the stages they need, in run order."""
        return self.stage_order()

    def outputs(
        self, stages: Sequence[str] | None = None, options: StageOptions | None = None
    ) -> tuple[Output, ...]:
        """What the stages add to each face (in run order)."""
        options = options or {}
        return tuple(
            o
            for n in self.stage_order(stages, options)
            for o in self.stage(n, options.get(n)).provides
        )

    @property
    def prediction_names(self) -> tuple[str, ...]:
        """Names of the predictions the configured stages add to each face."""
        return tuple(o.name for o in self.outputs())

    @property
    def detector(self) -> FaceDetector:
        return self._detector

    def load(self) -> FaceAnalyzer:
        """Load every model the configured stages need now (raises if a file is bad)."""
        self.detector.load()
        for name in self.stages:
            self.stage(name).load()
        self._ready = True
        return self

    @property
    def ready(self) -> bool:
        """True once :meth:`load` has loaded every model."""
        return self._ready

    # -- running ------------------------------------------------------------------------------
    def load_image(self, source: Any) -> np.ndarray:
        """Decode ``source`` with this analyzer's image limits."""
        return load_image(source, limits=self.config.limits)

    def decode(self, source: Any) -> DecodedImage:
        """Decode ``source`` with this analyzer's image limits, with the reduced copy its
        detector runs on (longer side at most the detector's ``max_side``).

        A JPEG at least twice that size is decoded at a reduced scale for detection while its
        full-resolution pixels decode in a background thread
        (:func:`facecore.io.load_image_reduced`)."""
        detector = self.config.detector
        max_side = detector.max_side
        if not max_side:
            return self.for_detection(self.load_image(source))
        loaded = load_image_reduced(
            source, max_side, limits=self.config.limits, min_share=detector.large_jpeg_share
        )
        if not isinstance(loaded, ReducedLoad):
            return self.for_detection(loaded)
        view = downscale_for_detection(loaded.reduced, max_side)[0]
        return DecodedImage(loaded.full, view, max(loaded.shape) / max(view.shape[:2]))

    def for_detection(self, rgb: np.ndarray) -> DecodedImage:
        """An image decoded by :meth:`load_image` with the reduced copy its detector runs on."""
        view, scale = downscale_for_detection(rgb, self.config.detector.max_side)
        return DecodedImage(rgb, view, scale)

    def detect(self, image: Any) -> list[Face]:
        """Faces in ``image`` (anything :func:`facecore.io.load_image` takes), largest first."""
        return self.detect_loaded(self.decode(image))

    def detect_loaded(self, image: DecodedImage | np.ndarray) -> list[Face]:
        """Faces in an image already decoded by :meth:`decode` or :meth:`load_image` (no second
        decode), largest first, in full-resolution coordinates."""
        if not isinstance(image, DecodedImage):
            image = self.for_detection(image)
        return order_and_cap(image.to_full(self.detector.detect(image.view)), self.config.max_faces)

    def analyze(
        self,
        image: Any,
        stages: Sequence[str] | None = None,
        options: StageOptions | None = None,
    ) -> list[Face]:
        """Detect faces and run ``stages`` (default: the configured ones) on each.

        Parameters
        ----------
        image : path, bytes, file object, ndarray or PIL image
        stages : sequence of str, optional
        options : mapping, optional
            Per-stage options for this call, e.g. ``{"attractiveness": {"model": "..."}}``.

        Returns
        -------
        list of Face
            Largest face first; an image without faces gives an empty list.
        """
        return self.analyze_image(image, stages, options)[1]

    def analyze_image(
        self,
        image: Any,
        stages: Sequence[str] | None = None,
        options: StageOptions | None = None,
    ) -> tuple[np.ndarray, list[Face]]:
        """Like :meth:`analyze`, and also return the decoded RGB image (e.g. for its size)."""
        with call_threads(self.config.threads):
            decoded = self.decode(image)
            (result,) = multi.analyze_many(self, [image], stages, options, decoded=[decoded])
        return decoded.pixels, _faces_or_raise(result)

    def run_stages(
        self,
        image: np.ndarray,
        faces: list[Face],
        stages: Sequence[str] | None = None,
        options: StageOptions | None = None,
    ) -> list[Face]:
        """Run stages on faces that were already detected in ``image``."""
        with call_threads(self.config.threads):
            (result,) = multi.run_stages(self, [image], [faces], stages, options)
        return _faces_or_raise(result)


def _faces_or_raise(result: multi.ImageResult) -> list[Face]:
    """The faces of one image's result, or the exception its analysis raised."""
    if result.error is not None:
        raise result.error
    return list(result.faces)


_default = Lazy(FaceAnalyzer)


def get_default_analyzer() -> FaceAnalyzer:
    """The process-wide analyzer behind :func:`facecore.analyze` (built on first use)."""
    return _default.get()
