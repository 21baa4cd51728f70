"""``GET /v1/stages``: what the analyzer can run."""

from __future__ import annotations

from fastapi import APIRouter

from app.schemas import StageOut
from facecore.stages import list_stages

router = APIRouter(prefix="/v1", tags=["analyze"])


@router.get("/stages", response_model=list[StageOut])
async def stages() -> list[StageOut]:
    """Every registered stage: what it requires, the predictions it provides, whether it is a
    default head, and its options with their defaults."""
    return [StageOut(**s.to_dict()) for s in list_stages()]
