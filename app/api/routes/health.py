"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request):
    """Ready only once every model is loaded."""
    state = request.app.state
    if getattr(state, "load_error", None) is not None:
        return JSONResponse(
            status_code=503, content={"status": "failed", "detail": str(state.load_error)}
        )
    if not state.analyzer.ready:
        return JSONResponse(status_code=503, content={"status": "loading", "detail": None})
    return Health(status="ready")
