"""``POST /v1/age``: the age of every face (a thin view of ``/v1/analyze``), for one image or
several."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import Images, ServiceDep
from app.api.openapi_bodies import IMAGE_ROUTE, multi_image_route
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
    service: ServiceDep,
    upload: Images,
    model: str | None = Query(
        None, description="Age model (manifest name); default: the service's setting"
    ),
) -> AgeResponse | AgeBatchResponse:
    """Estimate the age of every face (largest first), in years, with the distribution over
    ages 0-100 and its central 90% interval. The default model was trained on UTKFace
    (non-commercial research use only); its model card gives the error per age band. Several
    images give ``{"results": [...]}``, one entry per image."""
    return await service.head_view(upload, HEAD, model, AgeResponse, AgeItem, AgeBatchResponse)
