"""Service settings: one pydantic-settings object read from ``FACECORE_*`` variables.

The analysis settings are the library's own :class:`~facecore.analyzer.AnalyzerConfig`, nested
under ``analyzer`` (variables ``FACECORE_ANALYZER__<FIELD>``, nested fields joined by ``__``),
so that the service builds its analyzer from exactly what it was configured with::

    FACECORE_ANALYZER__DETECTOR=hog
    FACECORE_ANALYZER__MAX_FACES=5
    FACECORE_ANALYZER__LIMITS__MAX_BYTES=10485760
    FACECORE_ANALYZER__STAGE_OPTIONS='{"attractiveness": {"model": "attractiveness_scut"}}'

The service's own settings (keys, workers, queue, time limits, CORS, logs) are the other fields
of :class:`Settings`; README.md ("Settings") lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from facecore.analyzer import AnalyzerConfig
from facecore.io import ImageLimits


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Settings of the HTTP service (``FACECORE_`` + field name, case-insensitive)."""

    model_config = SettingsConfigDict(
        env_prefix="FACECORE_", env_nested_delimiter="__", extra="ignore"
    )

    #: What the analyzer runs: detector, faces per image, default stages, per-stage options
    #: (e.g. the default model of a head) and the image limits.
    analyzer: AnalyzerConfig = Field(default_factory=AnalyzerConfig)
    #: Whole request body limit (all images of a request together); the default leaves room for
    #: one image at the image limit sent as base64 (4/3) and JSON around it.
    max_request_bytes: int | None = Field(None, ge=1)
    #: Most images in one request (several ``file``/``files`` parts, or ``images_base64``).
    max_images: int = Field(8, ge=1, le=256)
    #: Faces whose quality is below this get a ``warnings`` entry; unset: the quality model's
    #: recommended threshold (``warn_below`` in its manifest entry, from its card's error table).
    #: It is the ``quality`` stage's ``warn_below`` option (set in ``analyzer.stage_options``,
    #: which it overrides), so the stage that makes the warnings applies it in every worker.
    quality_threshold: float | None = Field(None, ge=0.0, le=1.0)
    #: Load models at start-up (``/readyz`` says when done); requests that come earlier wait.
    preload: bool = True

    #: API keys, comma-separated. Empty: every route is open (a warning is logged at start-up).
    api_keys: SecretStr = SecretStr("")
    #: Origins allowed by CORS, comma-separated (``*`` for any); empty: no CORS headers.
    cors_origins: str = ""

    #: Where the analysis runs: ``process`` (worker processes, the default: dlib's detector and
    #: the feature code hold Python's GIL, so threads cannot use two cores) or ``thread``.
    worker_mode: Literal["process", "thread"] = "process"
    #: Number of workers; 0: one per usable CPU.
    workers: int = Field(0, ge=0, le=64)
    #: torch / BLAS / OpenMP / OpenCV threads of each worker (1: workers never oversubscribe
    #: the cores; see README "Settings").
    worker_threads: int = Field(1, ge=1, le=64)
    #: Images that may wait for a worker; more is a 503 with ``Retry-After``.
    queue_size: int = Field(32, ge=1)
    #: Longest expected wait of an image admitted to the queue, seconds: the images waiting x the
    #: workers' measured seconds per image / the workers; more is a 503 (0: only ``queue_size``).
    queue_wait_s: float = Field(0.5, ge=0.0, le=60.0)
    #: Most images one worker task takes (the trunk runs once over all their faces).
    batch_max: int = Field(4, ge=1, le=64)
    #: How long a worker that finds fewer than ``batch_max`` images waiting waits for more, ms
    #: (0: take what is waiting, never delay an image).
    batch_wait_ms: float = Field(0.0, ge=0.0, le=1000.0)
    #: Per-request time limit, seconds (504 ``timeout`` after it).
    request_timeout_s: float = Field(30.0, gt=0.0)
    #: The whole request body must arrive within this many seconds (408 after it).
    body_timeout_s: float = Field(10.0, gt=0.0)
    #: ``Retry-After`` of a 503, seconds.
    retry_after_s: int = Field(1, ge=0)
    #: Refusals of a full queue answered a second at once; past this rate each waits its turn
    #: (up to ``refusal_wait_s``) before its 503, so that clients that ignore ``Retry-After``
    #: cannot take the workers' CPU with refusals (0: never wait; app.core.admission).
    refusal_rate: float = Field(100.0, ge=0.0)
    #: Longest a refusal waits its turn, seconds; one that would wait longer is answered at once.
    refusal_wait_s: float = Field(0.5, ge=0.0, le=10.0)
    #: After SIGTERM, how long in-flight requests may take before the server stops anyway.
    shutdown_timeout_s: float = Field(30.0, ge=0.0)

    #: Log records as one JSON object a line (``json``) or as text (``text``).
    log_format: Literal["json", "text"] = "json"
    #: Level of the service's own loggers (``app``, ``facecore``).
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {v}")
        return v

    @model_validator(mode="after")
    def _threshold_to_stage_option(self) -> Settings:
        if self.quality_threshold is not None:
            options = dict(self.analyzer.stage_options)  # type: ignore[arg-type]
            options["quality"] = {
                **options.get("quality", {}),
                "warn_below": self.quality_threshold,
            }
            self.analyzer = replace(self.analyzer, stage_options=options)
        return self

    @property
    def limits(self) -> ImageLimits:
        return self.analyzer.limits

    @property
    def request_limit(self) -> int:
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return self.limits.max_bytes * 4 // 3 + 64 * 1024

    @property
    def keys(self) -> tuple[bytes, ...]:
        """The API keys (never log them)."""
        raw = self.api_keys.get_secret_value()
        return tuple(k.strip().encode() for k in raw.split(",") if k.strip())

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def worker_count(self) -> int:
        return self.workers or usable_cpus()


#: ``FACECORE_*`` variables read by the library itself, not by :class:`Settings`.
LIBRARY_VARIABLES = frozenset({"FACECORE_MODELS_DIR", "FACECORE_DATA"})


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``FACECORE_*`` variables that no setting reads (typos, or names from an older release
    such as ``FACECORE_MAX_IMAGE_BYTES``); the service logs them at start-up."""
    environ = os.environ if environ is None else environ
    fields = {name.upper() for name in Settings.model_fields}
    out = []
    for key in environ:
        upper = key.upper()
        if not upper.startswith("FACECORE_") or upper in LIBRARY_VARIABLES:
            continue
        head = upper.removeprefix("FACECORE_").split("__", 1)[0]
        if head not in fields:
            out.append(key)
    return sorted(out)


@lru_cache
def get_settings() -> Settings:
    return Settings()
