"""``POST /v1/faces``: faces, boxes, detector scores, keypoints and 68 landmarks."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import ImageBytes, ServiceDep
from app.api.openapi_bodies import IMAGE_ROUTE
from app.schemas import FacesResponse

router = APIRouter(prefix="/v1", tags=["faces"])


@router.post("/faces", response_model=FacesResponse, **IMAGE_ROUTE)
async def faces(
    service: ServiceDep,
    data: ImageBytes,
    descriptor: bool = Query(False, description="also return the 128-D face descriptor"),
) -> FacesResponse:
    """Detect every face (largest first) with its box, detector score and 68 landmarks.

    No face is a 200 with an empty list.
    """
    return await service.faces(data, descriptor)
