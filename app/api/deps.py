"""Dependency providers of the routes: the app's analyzer, engine and analysis service, and the
images of a request, as ``Annotated`` aliases.

A route declares what it needs (``service: ServiceDep, upload: Images``) and calls the service
once; reading the body is :mod:`app.api.uploads`, the work is
:class:`app.services.analysis.AnalysisService`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.api.uploads import Upload, read_upload
from app.core.engine import Engine
from app.core.errors import ApiError
from app.services.analysis import AnalysisService
from facecore.analyzer import FaceAnalyzer

__all__ = [
    "AnalyzerDep",
    "EngineDep",
    "ImageBytes",
    "Images",
    "ServiceDep",
    "get_analyzer",
    "get_engine",
    "get_service",
    "image_bytes",
    "images_upload",
    "queued_routes",
]


# Dependencies are ``async``: FastAPI runs a plain ``def`` one in the thread pool, which the app
# bounds to the CPU count; these must never wait for it.
async def get_engine(request: Request) -> Engine:
    """The app's engine (the queue of the workers)."""
    return request.app.state.engine


async def get_analyzer(request: Request) -> FaceAnalyzer:
    """The app's analyzer (it checks requests; the workers run theirs); 503 ``model_unavailable``
    once the workers' models failed to load."""
    state = request.app.state
    err = state.engine.load_error
    if err is not None:
        raise ApiError(503, "model_unavailable", f"models could not be loaded: {err}")
    return state.analyzer


AnalyzerDep = Annotated[FaceAnalyzer, Depends(get_analyzer)]
EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_service(
    request: Request, analyzer: AnalyzerDep, engine: EngineDep
) -> AnalysisService:
    """The analysis service for this request."""
    return AnalysisService(analyzer, engine, request.scope.get("state", {}).get("request_id"))


async def image_bytes(request: Request) -> bytes:
    """The uploaded image: multipart field ``file``, or JSON ``{"image_base64": ...}``."""
    upload = await read_upload(request, 1, multi=False)
    data = upload.images[0][1]
    if isinstance(data, ApiError):  # pragma: no cover - single-image decoding raises
        raise data
    return data


async def images_upload(request: Request) -> Upload:
    """One or several images (at most the ``max_images`` setting)."""
    return await read_upload(request, request.app.state.settings.max_images, multi=True)


ServiceDep = Annotated[AnalysisService, Depends(get_service)]
ImageBytes = Annotated[bytes, Depends(image_bytes)]
Images = Annotated[Upload, Depends(images_upload)]


def _needs(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _needs(d, call) for d in dependant.dependencies)


def queued_routes(routes: Iterable[Any]) -> dict[str, APIRoute]:
    """The routes that queue images on the workers (they depend on :func:`get_service`), by
    path: the ones :class:`app.core.admission.Admission` refuses while the queue is full."""
    return {
        r.path: r for r in routes if isinstance(r, APIRoute) and _needs(r.dependant, get_service)
    }
