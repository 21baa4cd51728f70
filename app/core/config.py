"""Service settings: one pydantic-settings object read from ``FACECORE_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from facecore.analyzer import AnalyzerConfig
from facecore.io import ImageLimits


class Settings(BaseSettings):
    """Settings of the HTTP service (``FACECORE_`` + field name, case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="FACECORE_", extra="ignore")

    detector: Literal["hog", "mtcnn", "auto"] = "auto"
    max_faces: int = 20
    hog_upsample: int = 0
    attractiveness_model: str = "attractiveness_scut"
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_image_side: int = 16
    #: Whole request body limit; the default leaves room for base64 (4/3) and JSON around it.
    max_request_bytes: int | None = None
    #: Load models in the background at start-up (``/readyz`` says when done).
    preload: bool = True

    @property
    def request_limit(self) -> int:
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return self.max_image_bytes * 4 // 3 + 64 * 1024

    def image_limits(self) -> ImageLimits:
        return ImageLimits(
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            min_side=self.min_image_side,
        )

    def analyzer_config(self) -> AnalyzerConfig:
        return AnalyzerConfig(
            detector=self.detector,
            max_faces=self.max_faces,
            hog_upsample=self.hog_upsample,
            limits=self.image_limits(),
            stages=("landmarks", "trunk", "attractiveness"),
            attractiveness_model=self.attractiveness_model,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
