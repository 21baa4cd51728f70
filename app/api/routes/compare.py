"""``POST /v1/compare``: which of two photos' faces the raters behind a model would rate higher.

Multipart fields ``first`` and ``second``, one image each. The largest face of each is scored by
an attractiveness model that predicts a rating distribution; ``probability_first_higher`` is the
probability that a rating drawn from the first face's distribution beats one drawn from the
second's, ties counted half (:func:`facecore.ldl.distributions.probability_higher`; the
preference model of Ren & Geng, "Sense Beauty by Label Distribution Learning", IJCAI 2017).
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.api.deps import ServiceDep
from app.api.openapi_bodies import IMAGE_ROUTE, fields_body
from app.api.uploads import read_fields
from app.schemas import CompareResponse

router = APIRouter(prefix="/v1", tags=["attractiveness"])

HEAD = "attractiveness"
FIELDS = ("first", "second")


@router.post(
    "/compare",
    response_model=CompareResponse,
    responses=IMAGE_ROUTE["responses"],
    openapi_extra=fields_body(FIELDS),
)
async def compare(
    request: Request,
    service: ServiceDep,
    model: str | None = Query(
        None,
        description="Attractiveness model with a distribution (manifest name); default: the "
        "service's attractiveness model",
    ),
) -> CompareResponse:
    """Compare the largest face of two photos: the probability that the first is rated
    higher, from the two predicted rating distributions, and each face with its prediction."""
    images = await read_fields(request, FIELDS)
    return await service.compare(FIELDS, images, HEAD, model)
