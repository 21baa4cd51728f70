"""``POST /v1/score``: attractiveness of every face (a thin view of ``/v1/analyze``), for one
image or several."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import Images, ServiceDep
from app.api.openapi_bodies import IMAGE_ROUTE, multi_image_route
from app.schemas import ScoreBatchResponse, ScoreItem, ScoreResponse

router = APIRouter(prefix="/v1", tags=["attractiveness"])

HEAD = "attractiveness"


@router.post(
    "/score",
    response_model=ScoreResponse | ScoreBatchResponse,
    responses=IMAGE_ROUTE["responses"],
    openapi_extra=multi_image_route(),
)
async def score(
    service: ServiceDep,
    upload: Images,
    model: str | None = Query(
        None, description="Attractiveness model (manifest name); default: the service's setting"
    ),
) -> ScoreResponse | ScoreBatchResponse:
    """Score every face (largest first). The default model was trained on SCUT-FBP5500 ratings
    (1-5; non-commercial research use only); see its model card for what the number means.
    Several images give ``{"results": [...]}``, one entry per image."""
    return await service.head_view(
        upload, HEAD, model, ScoreResponse, ScoreItem, ScoreBatchResponse
    )
