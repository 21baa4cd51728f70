"""API request and response schemas (separate from the library's ``Face`` record).

A face is always :class:`facecore.serialize.FaceOut`, the one serialiser the CLI and the batch
rows use too; the route schemas below wrap it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from facecore.serialize import FaceOut, PredictionOut, WarningOut

__all__ = [
    "AgeBatchResponse",
    "AgeItem",
    "AgeResponse",
    "AnalyzeBatchResponse",
    "CompareResponse",
    "CompareSide",
    "AnalyzeItem",
    "AnalyzeResponse",
    "ErrorBody",
    "ErrorResponse",
    "FaceOut",
    "FacesResponse",
    "Health",
    "ImageInfo",
    "ImageRequest",
    "ImagesRequest",
    "PredictionOut",
    "ScoreBatchResponse",
    "ScoreItem",
    "ScoreResponse",
    "StageOut",
    "WarningOut",
]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ImageRequest(BaseModel):
    """JSON alternative to a multipart upload."""

    image_base64: str = Field(description="The image file's bytes, base64-encoded (data: URLs ok)")


class ImagesRequest(BaseModel):
    """JSON alternative to a multipart upload of several images."""

    images_base64: list[str] = Field(
        min_length=1, description="Each image file's bytes, base64-encoded (data: URLs ok)"
    )


class ImageInfo(BaseModel):
    width: int
    height: int


class FacesResponse(BaseModel):
    image: ImageInfo
    faces: list[FaceOut]


class AnalyzeResponse(BaseModel):
    image: ImageInfo
    stages: list[str] = Field(description="The stages that ran, in order")
    faces: list[FaceOut]
    warnings: list[WarningOut] = Field(
        default_factory=list,
        description="Faces whose quality is below the service's threshold (needs the quality "
        "stage, which runs by default)",
    )


class ScoreResponse(BaseModel):
    image: ImageInfo
    model: str = Field(description="Name of the attractiveness model in models/manifest.json")
    scale: tuple[float, float] | None = Field(description="Range of the model's score")
    faces: list[FaceOut] = Field(
        description="Each face with predictions['attractiveness'] (no landmarks)"
    )
    warnings: list[WarningOut] = Field(
        default_factory=list,
        description="Faces whose quality is below the service's threshold (needs the quality "
        "stage, which runs by default)",
    )


class AgeResponse(BaseModel):
    image: ImageInfo
    model: str = Field(description="Name of the age model in models/manifest.json")
    scale: tuple[float, float] | None = Field(description="Range of the estimate")
    unit: str | None = Field(description="Unit of the estimate (years)")
    faces: list[FaceOut] = Field(
        description="Each face with predictions['age']: value, distribution over ages 0-100 "
        "(bins, probabilities) and its 90% interval (no landmarks)"
    )
    warnings: list[WarningOut] = Field(
        default_factory=list,
        description="Faces whose quality is below the service's threshold (needs the quality "
        "stage, which runs by default)",
    )


class _BatchItem(BaseModel):
    index: int = Field(description="Position of the image in the request (0-based)")
    filename: str | None = Field(None, description="The part's file name (multipart)")
    status: int = Field(description="200, or the status this image alone would have got")
    error: ErrorBody | None = Field(None, description="Why this image has no result")


class AnalyzeItem(_BatchItem):
    result: AnalyzeResponse | None = None


class AnalyzeBatchResponse(BaseModel):
    """One entry per image sent, in order: a result or an error (one bad image does not fail
    the others)."""

    results: list[AnalyzeItem]


class ScoreItem(_BatchItem):
    result: ScoreResponse | None = None


class ScoreBatchResponse(BaseModel):
    """One entry per image sent, in order: a result or an error."""

    results: list[ScoreItem]


class AgeItem(_BatchItem):
    result: AgeResponse | None = None


class AgeBatchResponse(BaseModel):
    """One entry per image sent, in order: a result or an error."""

    results: list[AgeItem]


class CompareSide(BaseModel):
    image: ImageInfo
    face: FaceOut = Field(description="The image's largest face with predictions['attractiveness']")
    warnings: list[WarningOut] = Field(
        default_factory=list,
        description="Faces whose quality is below the service's threshold (needs the quality "
        "stage, which runs by default)",
    )


class CompareResponse(BaseModel):
    model: str = Field(description="The attractiveness model (a distribution model)")
    probability_first_higher: float = Field(
        ge=0.0,
        le=1.0,
        description="P(a rating drawn from the first face's distribution beats one drawn from "
        "the second's), ties counted half",
    )
    first: CompareSide
    second: CompareSide


class StageOut(BaseModel):
    name: str
    requires: list[str]
    provides: list[str] = Field(description="Predictions the stage adds to each face")
    default: bool = Field(description="Whether /v1/analyze runs it when no stages are given")
    options: dict[str, str] = Field(description="Options and their defaults (Python repr)")
    summary: str


class Health(BaseModel):
    status: str
    detail: str | None = None
