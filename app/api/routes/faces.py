"""``POST /v1/faces``: faces, boxes, detector scores, keypoints and 68 landmarks."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.api.deps import IMAGE_ROUTE, AnalyzerDep, ImageBytes, analyze_bytes
from app.schemas import FaceOut, FacesResponse

router = APIRouter(prefix="/v1", tags=["faces"])


@router.post("/faces", response_model=FacesResponse, **IMAGE_ROUTE)
async def faces(
    request: Request,
    analyzer: AnalyzerDep,
    data: ImageBytes,
    descriptor: bool = Query(False, description="also return the 128-D face descriptor"),
) -> FacesResponse:
    """Detect every face (largest first) with its box, detector score and 68 landmarks.

    No face is a 200 with an empty list.
    """
    stages = ("landmarks", "trunk") if descriptor else ("landmarks",)
    image, _, found = await analyze_bytes(request, analyzer, data, stages)
    return FacesResponse(
        image=image,
        faces=[FaceOut.from_face(f, embedding=descriptor, predictions=()) for f in found],
    )
