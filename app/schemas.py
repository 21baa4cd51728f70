"""API response and request schemas (separate from the library's ``Face`` record)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facecore.types import Face


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ImageRequest(BaseModel):
    """JSON alternative to a multipart upload."""

    image_base64: str = Field(description="The image file's bytes, base64-encoded (data: URLs ok)")


class FaceOut(BaseModel):
    box: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 in float pixels of the EXIF-rotated image"
    )
    score: float = Field(description="Detector confidence (HOG margin or MTCNN probability)")
    detector: str
    landmarks: list[tuple[float, float]] | None = Field(
        default=None, description="68 iBUG points (x, y) in image pixels"
    )
    embedding: list[float] | None = Field(
        default=None, description="128-D descriptor (only with ?descriptor=true)"
    )

    @classmethod
    def from_face(cls, face: Face, *, embedding: bool) -> FaceOut:
        return cls(
            box=face.box.as_tuple(),
            score=face.score,
            detector=face.detector,
            landmarks=None
            if face.landmarks is None
            else [tuple(p) for p in face.landmarks.tolist()],
            embedding=face.embedding.tolist() if embedding and face.embedding is not None else None,
        )


class ImageInfo(BaseModel):
    width: int
    height: int


class FacesResponse(BaseModel):
    image: ImageInfo
    faces: list[FaceOut]


class Health(BaseModel):
    status: str
    detail: str | None = None
