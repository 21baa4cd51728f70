"""``POST /v1/age``: the age of every face (a thin view of ``/v1/analyze``), for one image or
several."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.api.deps import IMAGE_ROUTE, AnalyzerDep, Images, head_view, multi_image_route
from app.schemas import AgeBatchResponse, AgeItem, AgeResponse

router = APIRouter(prefix="/v1", tags=["age"])

HEAD = "age"


@router.post(
    "/age",
    response_model=AgeResponse | AgeBatchResponse,
    responses=IMAGE_ROUTE["responses"],
    openapi_extra=multi_image_route(),
)
async def age(
    request: Request,
    analyzer: AnalyzerDep,
    upload: Images,
    model: str | None = Query(
        None, description="Age model (manifest name); default: the service's setting"
    ),
) -> AgeResponse | AgeBatchResponse:
    """Estimate the age of every face (largest first), in years, with the distribution over
    ages 0-100 and its central 90% interval. The default model was trained on UTKFace
    (non-commercial research use only); its model card gives the error per age band. Several
    images give ``{"results": [...]}``, one entry per image."""
    return await head_view(
        request, analyzer, upload, HEAD, model, AgeResponse, AgeItem, AgeBatchResponse
    )
