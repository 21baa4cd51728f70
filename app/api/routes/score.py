"""``POST /v1/score``: attractiveness of every face on SCUT-FBP5500's 1-5 scale."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api.deps import AnalyzerDep, ImageBytes
from app.api.routes.faces import BODY_DOC, ERRORS, analyze_bytes
from app.schemas import ImageInfo


class ScoredFace(BaseModel):
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels")
    score: float = Field(description="Attractiveness, 1 (low) to 5 (high), SCUT-FBP5500 scale")
    detector_score: float


class ScoreResponse(BaseModel):
    image: ImageInfo
    model: str = Field(description="Name of the model in models/manifest.json")
    scale: tuple[float, float] = (1.0, 5.0)
    faces: list[ScoredFace]


router = APIRouter(prefix="/v1", tags=["attractiveness"])


@router.post("/score", response_model=ScoreResponse, responses=ERRORS, openapi_extra=BODY_DOC)
async def score(analyzer: AnalyzerDep, data: ImageBytes) -> ScoreResponse:
    """Score every face (largest first). The model was trained on SCUT-FBP5500 ratings
    (non-commercial research use only); see its model card for what the number means."""
    (w, h), found = await run_in_threadpool(analyze_bytes, analyzer, data, ("attractiveness",))
    return ScoreResponse(
        image=ImageInfo(width=w, height=h),
        model=analyzer.config.attractiveness_model,
        faces=[
            ScoredFace(
                box=f.box.as_tuple(),
                score=f.predictions["attractiveness"],
                detector_score=f.score,
            )
            for f in found
        ],
    )
