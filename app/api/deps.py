"""What the routes share: the analyzer from app state, the image of a request, the error docs,
and running an analysis off the event loop."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import ApiError
from app.schemas import ErrorResponse, ImageInfo, ImageRequest
from facecore.analyzer import FaceAnalyzer, StageOptions
from facecore.errors import FacecoreError
from facecore.types import Face

__all__ = [
    "AnalyzerDep",
    "IMAGE_ROUTE",
    "ImageBytes",
    "analyze_bytes",
    "get_analyzer",
    "image_bytes",
    "model_options",
]


def get_analyzer(request: Request) -> FaceAnalyzer:
    state = request.app.state
    err = getattr(state, "load_error", None)
    if err is not None:
        raise ApiError(503, "model_unavailable", f"models could not be loaded: {err}")
    return state.analyzer


AnalyzerDep = Annotated[FaceAnalyzer, Depends(get_analyzer)]


def _decode_base64(text: str) -> bytes:
    text = text.strip()
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    # Line breaks are part of MIME base64 (``base64`` wraps at 76 columns unless told -w0).
    text = "".join(text.split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_base64", "image_base64 is not valid base64") from None


async def image_bytes(request: Request) -> bytes:
    """The uploaded image: multipart field ``file``, or JSON ``{"image_base64": ...}``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=8)
        except StarletteHTTPException as e:
            if e.status_code != 400:  # e.g. 413 from the body size limit
                raise
            msg = f"malformed multipart body: {e.detail}"
            raise ApiError(422, "invalid_request", msg) from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "missing_file", "multipart body has no file field named 'file'")
        try:
            return await upload.read()
        finally:
            await upload.close()
    if ctype == "application/json":
        raw = await request.body()
        try:
            payload = ImageRequest.model_validate_json(raw)
        except ValidationError as e:
            msg = "; ".join(
                f"{'.'.join(str(p) for p in er['loc']) or 'body'}: {er['msg']}" for er in e.errors()
            )
            raise ApiError(422, "invalid_request", msg) from None
        return _decode_base64(payload.image_base64)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"content type {ctype or '(none)'!r} is not accepted; send multipart/form-data with a "
        "'file' field or application/json with 'image_base64'",
    )


ImageBytes = Annotated[bytes, Depends(image_bytes)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "image or request too large"},
    415: {"model": ErrorResponse, "description": "unsupported image format or content type"},
    422: {
        "model": ErrorResponse,
        "description": "undecodable image, invalid request, unknown stage or model",
    },
    503: {"model": ErrorResponse, "description": "models not available"},
}

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"image_base64": {"type": "string"}},
                    "required": ["image_base64"],
                }
            },
        },
    }
}

#: Keyword arguments of every route that takes an image: error responses and the body's docs.
IMAGE_ROUTE: dict[str, Any] = {"responses": _ERRORS, "openapi_extra": _BODY_DOC}


def model_options(pairs: Sequence[str], default_head: str | None = None) -> dict[str, Any]:
    """``model`` query values -> stage options: ``HEAD=NAME``, or a bare ``NAME`` for the route's
    own head."""
    options: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        head, sep, name = pair.partition("=")
        if not sep:
            head, name = default_head or "", pair
        if not head or not name:
            raise ApiError(422, "invalid_request", f"model must be HEAD=NAME, got {pair!r}")
        options[head] = {"model": name}
    return options


async def analyze_bytes(
    analyzer: FaceAnalyzer,
    data: bytes,
    stages: Sequence[str] | None,
    options: StageOptions | None = None,
) -> tuple[ImageInfo, tuple[str, ...], list[Face]]:
    """Run the analyzer on an uploaded image in the thread pool.

    Returns the image size, the stages that ran (in order) and the faces.
    """
    # An unknown stage, model or option is a 422 before the image is decoded.
    try:
        order = analyzer.stage_order(stages, options)
        for head in options or {}:
            if head not in order:
                analyzer.stage(head)  # a model for a stage that does not exist: unknown_stage
    except FacecoreError:
        raise
    except ValueError as e:  # an option the stage does not take, e.g. ?model=landmarks=x
        raise ApiError(422, "invalid_request", str(e)) from None
    rgb, faces = await run_in_threadpool(analyzer.analyze_image, data, stages, options)
    return ImageInfo(width=rgb.shape[1], height=rgb.shape[0]), order, faces
