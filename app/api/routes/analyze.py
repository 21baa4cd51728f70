"""``POST /v1/analyze``: every face with every prediction of the chosen stages."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import IMAGE_ROUTE, AnalyzerDep, ImageBytes, analyze_bytes, model_options
from app.schemas import AnalyzeResponse, FaceOut

router = APIRouter(prefix="/v1", tags=["analyze"])


@router.post("/analyze", response_model=AnalyzeResponse, **IMAGE_ROUTE)
async def analyze(
    analyzer: AnalyzerDep,
    data: ImageBytes,
    stages: str | None = Query(
        None,
        description="Comma-separated stages (GET /v1/stages lists them); default: the "
        "service's stages (every default head)",
    ),
    model: list[str] = Query(
        [], description="HEAD=NAME: the model a head uses (manifest name); repeatable"
    ),
    descriptor: bool = Query(False, description="also return the 128-D face descriptor"),
) -> AnalyzeResponse:
    """Detect every face (largest first) and run the stages on it: geometry, descriptor and
    every head's prediction (with its distribution, when the model gives one).

    The same numbers as ``facecore analyze`` and the batch CSV for the same photo.
    """
    wanted = None if stages is None else tuple(s.strip() for s in stages.split(",") if s.strip())
    image, order, found = await analyze_bytes(analyzer, data, wanted, model_options(model))
    return AnalyzeResponse(
        image=image,
        stages=list(order),
        faces=[FaceOut.from_face(f, embedding=descriptor) for f in found],
    )
