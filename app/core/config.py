"""Service settings: one pydantic-settings object read from ``FACECORE_*`` variables.

The analysis settings are the library's own :class:`~facecore.analyzer.AnalyzerConfig`, nested
under ``analyzer`` (variables ``FACECORE_ANALYZER__<FIELD>``, nested fields joined by ``__``),
so that the service builds its analyzer from exactly what it was configured with::

    FACECORE_ANALYZER__DETECTOR=hog
    FACECORE_ANALYZER__MAX_FACES=5
    FACECORE_ANALYZER__LIMITS__MAX_BYTES=10485760
    FACECORE_ANALYZER__STAGE_OPTIONS='{"attractiveness": {"model": "attractiveness_scut"}}'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from facecore.analyzer import AnalyzerConfig
from facecore.io import ImageLimits


class Settings(BaseSettings):
    """Settings of the HTTP service (``FACECORE_`` + field name, case-insensitive)."""

    model_config = SettingsConfigDict(
        env_prefix="FACECORE_", env_nested_delimiter="__", extra="ignore"
    )

    #: What the analyzer runs: detector, faces per image, default stages, per-stage options
    #: (e.g. the default model of a head) and the image limits.
    analyzer: AnalyzerConfig = Field(default_factory=AnalyzerConfig)
    #: Whole request body limit; the default leaves room for base64 (4/3) and JSON around it.
    max_request_bytes: int | None = None
    #: Load models in the background at start-up (``/readyz`` says when done).
    preload: bool = True

    @property
    def limits(self) -> ImageLimits:
        return self.analyzer.limits

    @property
    def request_limit(self) -> int:
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return self.limits.max_bytes * 4 // 3 + 64 * 1024


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
