"""``POST /v1/score``: attractiveness of every face (a thin view of ``/v1/analyze``), for one
image or several."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.api.deps import (
    IMAGE_ROUTE,
    AnalyzerDep,
    Images,
    analyze_images,
    batch_item,
    model_options,
    multi_image_route,
)
from app.core.errors import ApiError
from app.core.pipeline import Failure
from app.schemas import FaceOut, ImageInfo, ScoreBatchResponse, ScoreItem, ScoreResponse

router = APIRouter(prefix="/v1", tags=["attractiveness"])

HEAD = "attractiveness"


@router.post(
    "/score",
    response_model=ScoreResponse | ScoreBatchResponse,
    responses=IMAGE_ROUTE["responses"],
    openapi_extra=multi_image_route(),
)
async def score(
    request: Request,
    analyzer: AnalyzerDep,
    upload: Images,
    model: str | None = Query(
        None, description="Attractiveness model (manifest name); default: the service's setting"
    ),
) -> ScoreResponse | ScoreBatchResponse:
    """Score every face (largest first). The default model was trained on SCUT-FBP5500 ratings
    (1-5; non-commercial research use only); see its model card for what the number means.
    Several images give ``{"results": [...]}``, one entry per image."""
    options = model_options([model], HEAD) if model else None
    _, results = await analyze_images(
        request, analyzer, [d for _, d in upload.images], (HEAD,), options
    )
    stage = analyzer.stage(HEAD, (options or {}).get(HEAD))
    (output,) = [o for o in stage.provides if o.name == HEAD]

    def response(res) -> ScoreResponse:  # noqa: ANN001
        return ScoreResponse(
            image=ImageInfo(width=res.width, height=res.height),
            model=stage.model_name,
            scale=output.scale,
            faces=[FaceOut.from_face(f, points=False, predictions=(HEAD,)) for f in res.faces],
        )

    if not upload.batch:
        (res,) = results
        if isinstance(res, Failure):
            raise ApiError(res.status, res.code, res.message)
        return response(res)
    return ScoreBatchResponse(
        results=[
            batch_item(ScoreItem, i, name, res, response)
            for i, ((name, _), res) in enumerate(zip(upload.images, results, strict=True))
        ]
    )
