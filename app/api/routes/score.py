"""``POST /v1/score``: attractiveness of every face (a thin view of ``/v1/analyze``)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import IMAGE_ROUTE, AnalyzerDep, ImageBytes, analyze_bytes, model_options
from app.schemas import FaceOut, ScoreResponse

router = APIRouter(prefix="/v1", tags=["attractiveness"])

HEAD = "attractiveness"


@router.post("/score", response_model=ScoreResponse, **IMAGE_ROUTE)
async def score(
    analyzer: AnalyzerDep,
    data: ImageBytes,
    model: str | None = Query(
        None, description="Attractiveness model (manifest name); default: the service's setting"
    ),
) -> ScoreResponse:
    """Score every face (largest first). The default model was trained on SCUT-FBP5500 ratings
    (1-5; non-commercial research use only); see its model card for what the number means."""
    options = model_options([model], HEAD) if model else None
    image, _, found = await analyze_bytes(analyzer, data, (HEAD,), options)
    stage = analyzer.stage(HEAD, (options or {}).get(HEAD))
    (output,) = [o for o in stage.provides if o.name == HEAD]
    return ScoreResponse(
        image=image,
        model=stage.model_name,
        scale=output.scale,
        faces=[FaceOut.from_face(f, points=False, predictions=(HEAD,)) for f in found],
    )
