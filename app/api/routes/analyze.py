"""``POST /v1/analyze``: every face with every prediction of the chosen stages, for one image or
several."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.api.deps import (
    IMAGE_ROUTE,
    AnalyzerDep,
    Images,
    analyze_images,
    batch_item,
    face_warnings,
    model_options,
    multi_image_route,
)
from app.core.errors import ApiError
from app.core.pipeline import Failure
from app.schemas import AnalyzeBatchResponse, AnalyzeItem, AnalyzeResponse, FaceOut, ImageInfo
from facecore.stages import parse_stage_list

router = APIRouter(prefix="/v1", tags=["analyze"])


@router.post(
    "/analyze",
    response_model=AnalyzeResponse | AnalyzeBatchResponse,
    responses=IMAGE_ROUTE["responses"],
    openapi_extra=multi_image_route(),
)
async def analyze(
    request: Request,
    analyzer: AnalyzerDep,
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
    wanted = parse_stage_list(stages)
    order, results = await analyze_images(
        request, analyzer, [d for _, d in upload.images], wanted, model_options(model)
    )

    def response(res) -> AnalyzeResponse:  # noqa: ANN001
        return AnalyzeResponse(
            image=ImageInfo(width=res.width, height=res.height),
            stages=list(order),
            faces=[FaceOut.from_face(f, embedding=descriptor) for f in res.faces],
            warnings=face_warnings(request, res.faces),
        )

    if not upload.batch:
        (res,) = results
        if isinstance(res, Failure):
            raise ApiError(res.status, res.code, res.message)
        return response(res)
    return AnalyzeBatchResponse(
        results=[
            batch_item(AnalyzeItem, i, name, res, response)
            for i, ((name, _), res) in enumerate(zip(upload.images, results, strict=True))
        ]
    )
