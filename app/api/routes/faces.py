"""``POST /v1/faces``: faces, boxes, 68 landmarks and scores."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from app.api.deps import AnalyzerDep, ImageBytes
from app.schemas import ErrorResponse, FaceOut, FacesResponse, ImageInfo
from facecore.analyzer import FaceAnalyzer
from facecore.types import Face

router = APIRouter(prefix="/v1", tags=["faces"])

ERRORS = {
    413: {"model": ErrorResponse, "description": "image or request too large"},
    415: {"model": ErrorResponse, "description": "unsupported image format or content type"},
    422: {"model": ErrorResponse, "description": "undecodable image or invalid request"},
    503: {"model": ErrorResponse, "description": "models not available"},
}

BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"image_base64": {"type": "string"}},
                    "required": ["image_base64"],
                }
            },
        },
    }
}


def analyze_bytes(
    analyzer: FaceAnalyzer, data: bytes, stages: tuple[str, ...]
) -> tuple[tuple[int, int], list[Face]]:
    rgb, faces = analyzer.analyze_image(data, stages)
    return (rgb.shape[1], rgb.shape[0]), faces


@router.post("/faces", response_model=FacesResponse, responses=ERRORS, openapi_extra=BODY_DOC)
async def faces(
    analyzer: AnalyzerDep,
    data: ImageBytes,
    descriptor: bool = Query(False, description="also return the 128-D face descriptor"),
) -> FacesResponse:
    """Detect every face (largest first) with its box, detector score and 68 landmarks.

    No face is a 200 with an empty list.
    """
    stages = ("landmarks", "trunk") if descriptor else ("landmarks",)
    (w, h), found = await run_in_threadpool(analyze_bytes, analyzer, data, stages)
    return FacesResponse(
        image=ImageInfo(width=w, height=h),
        faces=[FaceOut.from_face(f, embedding=descriptor) for f in found],
    )
