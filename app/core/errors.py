"""Every error the service returns is JSON ``{"error": {"code": ..., "message": ...}}``.

Bad input is always a 4xx: 401 no or a wrong API key, 408 a body that did not arrive in time,
413 too large, 415 unsupported format or content type, 422 undecodable or invalid; a model that
cannot be loaded, a full queue or a server shutting down is a 503 (with ``Retry-After`` where
trying again helps), a request over its time limit a 504. A 500 means a bug: it is logged, and the
answer shows nothing of its cause.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facecore.errors import (
    FacecoreError,
    ImageTooLargeError,
    ImageTooSmallError,
    ModelFileError,
    UndecodableImageError,
    UnsupportedImageError,
)

log = logging.getLogger("app")

STATUS_BY_ERROR: tuple[tuple[type[FacecoreError], int], ...] = (
    (ImageTooLargeError, 413),
    (UnsupportedImageError, 415),
    (UndecodableImageError, 422),
    (ImageTooSmallError, 422),
    (ModelFileError, 503),
)

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "not_ready",
    504: "timeout",
}


class ApiError(Exception):
    """An error with an explicit status, code and message, raised by routes."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(code, message), headers=headers)


def status_for(exc: FacecoreError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 422


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(FacecoreError)
    async def _facecore_error(_: Request, exc: FacecoreError) -> JSONResponse:
        return error_response(status_for(exc), exc.code, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODE_BY_STATUS.get(exc.status_code, f"http_{exc.status_code}")
        # Keep the exception's headers: a 405 carries ``Allow`` (RFC 9110), a 408 ``Connection``.
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; see the service log")
