"""Liveness, readiness and metrics (open even when API keys are set)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.core.metrics import CONTENT_TYPE_LATEST
from app.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request):
    """Ready only once every model is loaded (in every worker); 503 ``loading`` before,
    ``failed`` if loading failed, ``draining`` once the server is shutting down."""
    state = request.app.state
    engine = state.engine
    if engine.load_error is not None:
        return JSONResponse(
            status_code=503, content={"status": "failed", "detail": str(engine.load_error)}
        )
    if state.lifecycle.draining:
        return JSONResponse(status_code=503, content={"status": "draining", "detail": None})
    if not engine.ready:
        return JSONResponse(status_code=503, content={"status": "loading", "detail": None})
    return Health(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by route and status, latency per route, time per pipeline
    stage, queue depth, workers and models loaded."""
    engine = request.app.state.engine
    engine.update_gauges()
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
