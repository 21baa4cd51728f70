"""The facecore HTTP service: ``uvicorn app.main:app`` or ``facecore serve``."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

import facecore
from app.api.routes import analyze, faces, health, score, stages
from app.core.config import Settings, get_settings, unknown_variables
from app.core.errors import install_error_handlers
from app.core.limits import BodySizeLimit
from facecore.analyzer import FaceAnalyzer

log = logging.getLogger("app")


def _load_in_background(app: FastAPI, analyzer: FaceAnalyzer) -> threading.Thread:
    def run() -> None:
        try:
            analyzer.load()
            log.info("models loaded; ready")
        except Exception as e:  # reported by /readyz and every request as a 503
            log.exception("model loading failed")
            app.state.load_error = e

    t = threading.Thread(target=run, name="facecore-model-load", daemon=True)
    t.start()
    return t


def create_app(settings: Settings | None = None, analyzer: FaceAnalyzer | None = None) -> FastAPI:
    """Build the app. ``analyzer`` may be given (tests); otherwise it is built from settings."""
    settings = settings or get_settings()
    for name in unknown_variables():
        log.warning(
            "%s is not a facecore setting and is ignored (analysis settings are "
            "FACECORE_ANALYZER__<FIELD>, e.g. FACECORE_ANALYZER__LIMITS__MAX_BYTES; see README)",
            name,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.load_error = None
        app.state.analyzer = analyzer or FaceAnalyzer(settings.analyzer)
        app.state.loader = None
        if settings.preload and not app.state.analyzer.ready:
            app.state.loader = _load_in_background(app, app.state.analyzer)
        yield

    app = FastAPI(
        title="facecore",
        version=facecore.__version__,
        summary="Face detection, landmarks, descriptors and attractiveness, offline on a CPU.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.request_limit)
    for module in (health, analyze, faces, score, stages):
        app.include_router(module.router)
    return app


app = create_app()
