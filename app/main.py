"""The facecore HTTP service: ``uvicorn app.main:app`` or ``facecore serve``.

Requests pass, outermost first: :class:`~app.core.middleware.RequestContext` (request id, access
log, metrics, time limit, draining, 500s), CORS (when origins are set),
:class:`~app.core.auth.ApiKeyAuth` (when keys are set), :class:`~app.core.admission.Admission` (a
503 ``overloaded`` before the body is read while the queue is full, for the routes that queue
images), :class:`~app.core.limits.BodySizeLimit` (size and time of the body), then the routes. Every
image route's work (analysis, beautify, average) runs on the workers (:mod:`app.core.workers`)
behind the bounded queue of :class:`~app.core.engine.Engine`; in process mode this process loads no
model. On SIGTERM the server drains: new ``/v1`` requests get 503, the ones in flight finish (up to
``shutdown_timeout_s``), then uvicorn stops. ``/`` serves the web page (:mod:`app.api.routes.web`,
files in ``app/static/``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import facecore
from app.api.deps import queued_routes
from app.api.routes import age, analyze, beautify, compare, faces, health, score, stages, web
from app.core.admission import Admission, RefusalPacer
from app.core.auth import ApiKeyAuth
from app.core.config import Settings, get_settings, unknown_variables
from app.core.engine import Engine
from app.core.errors import install_error_handlers
from app.core.limits import BodySizeLimit, keep_uploads_in_memory
from app.core.logs import configure_logging
from app.core.metrics import Metrics
from app.core.middleware import Lifecycle, RequestContext
from app.core.openapi import install_openapi
from app.core.workers import ProcessBackend, ThreadBackend
from facecore.analyzer import FaceAnalyzer

log = logging.getLogger("app")


def _build_engine(settings: Settings, analyzer: FaceAnalyzer, given: bool, metrics) -> Engine:  # noqa: ANN001
    workers = settings.worker_count
    if given or settings.worker_mode == "thread":
        backend: ThreadBackend | ProcessBackend = ThreadBackend(
            analyzer, workers, settings.worker_threads, settings.preload
        )
    else:
        backend = ProcessBackend(
            settings.analyzer,
            workers,
            settings.worker_threads,
            settings.preload,
            # A worker still busy this long after its request's time limit is stuck: replace it.
            hard_timeout=settings.request_timeout_s + 30.0,
            logs=(settings.log_format, settings.log_level),
        )
    return Engine(
        backend,
        queue_size=settings.queue_size,
        queue_wait_s=settings.queue_wait_s,
        batch_max=settings.batch_max,
        batch_wait_s=settings.batch_wait_ms / 1000.0,
        retry_after_s=settings.retry_after_s,
        metrics=metrics,
    )


def _drain_on_sigterm(lifecycle: Lifecycle, timeout: float) -> Callable[[], None]:
    """On SIGTERM: stop taking ``/v1`` requests (503), let the ones in flight finish, then hand
    the signal to the handler that was there (uvicorn's, which stops the server). Returns a
    function that puts the old handler back. Does nothing off the main thread (TestClient)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def hand_over(sig: int, frame) -> None:  # noqa: ANN001
        if callable(previous):
            previous(sig, frame)
        else:  # no server handler: the default action
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    async def drain(sig: int, frame) -> None:  # noqa: ANN001
        idle = await lifecycle.wait_idle(timeout)
        if idle:
            log.info("drained; stopping")
        else:
            log.warning(
                "%d requests still in flight after %g s; stopping", lifecycle.in_flight, timeout
            )
        hand_over(sig, frame)

    def on_term(sig: int, frame) -> None:  # noqa: ANN001
        if lifecycle.draining:  # a second SIGTERM: stop now
            hand_over(sig, frame)
            return
        lifecycle.draining = True
        log.info("SIGTERM: draining (%d requests in flight)", lifecycle.in_flight)
        loop.call_soon_threadsafe(lambda: loop.create_task(drain(sig, frame)))

    signal.signal(signal.SIGTERM, on_term)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_term:
            signal.signal(signal.SIGTERM, previous)

    return restore


def create_app(settings: Settings | None = None, analyzer: FaceAnalyzer | None = None) -> FastAPI:
    """Build the app. ``analyzer`` may be given (tests); otherwise it is built from settings.

    A given analyzer runs in threads of this process (``worker_mode=thread``); otherwise the
    workers are ``settings.worker_mode``.
    """
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    for name in unknown_variables():
        log.warning(
            "%s is not a facecore setting and is ignored (analysis settings are "
            "FACECORE_ANALYZER__<FIELD>, e.g. FACECORE_ANALYZER__LIMITS__MAX_BYTES; see README)",
            name,
        )
    if not settings.keys:
        log.warning("FACECORE_API_KEYS is not set: every /v1 route is open to anyone")
    keep_uploads_in_memory()
    metrics = Metrics()
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.analyzer = analyzer or FaceAnalyzer(settings.analyzer)
        engine = _build_engine(settings, app.state.analyzer, analyzer is not None, metrics)
        app.state.engine = engine
        await engine.start()
        app.state.loader = getattr(engine.backend, "loader", None)
        # Code that runs CPU work with ``run_in_threadpool`` (not through the engine; no image
        # route does) gets at most one thread per worker, not anyio's default of 40.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_count
        restore = _drain_on_sigterm(lifecycle, settings.shutdown_timeout_s)
        try:
            yield
        finally:
            restore()
            await engine.stop()

    app = FastAPI(
        title="facecore",
        version=facecore.__version__,
        summary="Face detection, landmarks, descriptors and attractiveness, offline on a CPU.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.lifecycle = lifecycle
    install_error_handlers(app)
    install_openapi(app, settings)
    routers = [
        m.router for m in (health, analyze, faces, score, age, compare, beautify, stages, web)
    ]
    for router in routers:
        app.include_router(router)
    # add_middleware puts each one outside the ones added before it.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.request_limit,
        body_timeout_s=settings.body_timeout_s,
        metrics=metrics,
    )
    # Inside the key check (a wrong key is a 401 whatever the load), before the body is read.
    app.add_middleware(
        Admission,
        state=app.state,
        routes=queued_routes(r for router in routers for r in router.routes),
        metrics=metrics,
        pacer=RefusalPacer(settings.refusal_rate, settings.refusal_wait_s),
    )
    app.add_middleware(ApiKeyAuth, keys=settings.keys, metrics=metrics)
    if settings.origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["*"],
            max_age=600,
        )
    app.add_middleware(
        RequestContext,
        metrics=metrics,
        lifecycle=lifecycle,
        timeout_s=settings.request_timeout_s,
        retry_after_s=settings.retry_after_s,
    )
    return app


app = create_app()
