"""``POST /v1/analyze``: every face with every prediction of the chosen stages, for one image or
several."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import Images, ServiceDep
from app.api.openapi_bodies import IMAGE_ROUTE, multi_image_route
from app.schemas import AnalyzeBatchResponse, AnalyzeResponse

router = APIRouter(prefix="/v1", tags=["analyze"])


@router.post(
    "/analyze",
    response_model=AnalyzeResponse | AnalyzeBatchResponse,
    responses=IMAGE_ROUTE["responses"],
    openapi_extra=multi_image_route(),
)
async def analyze(
    service: ServiceDep,
    upload: Images,
    stages: str | None = Query(
        None,
        description="Comma-separated stages (GET /v1/stages lists them); default: the "
        "service's stages (every default head)",
    ),
    model: list[str] = Query(
        [], description="HEAD=NAME: the model a head uses (manifest name); repeatable"
    ),
    descriptor: bool = Query(False, description="also return the 128-D face descriptor"),
) -> AnalyzeResponse | AnalyzeBatchResponse:
    """Detect every face (largest first) and run the stages on it: geometry, descriptor and
    every head's prediction (with its distribution, when the model gives one).

    The same numbers as ``facecore analyze`` and the batch CSV for the same photo. Several
    images (``files``, a repeated ``file`` or ``images_base64``) give ``{"results": [...]}``,
    one entry per image with its result or its own error.
    """
    return await service.analyze(upload, stages, model, descriptor)
