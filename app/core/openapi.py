"""The OpenAPI document, with what the cross-cutting parts add to every route.

FastAPI documents each route's own answers; the middlewares answer on every ``/v1`` route too,
so :func:`install_openapi` adds those answers to each ``/v1`` operation (present and future
routes alike): 401 when API keys are set (with the security schemes ``ApiKeyHeader`` and
``BearerAuth``), 408/413 for a route with a body, 503 (busy, shutting down, models not loaded,
with ``Retry-After``) and 504 (time limit). FastAPI's own 422 schema (``HTTPValidationError``)
is replaced by the JSON error every 422 really is; and the several-image arrays get the
``max_images`` setting as ``maxItems``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.openapi_bodies import MAX_IMAGES_MARK
from app.core.auth import is_protected
from app.core.config import Settings

__all__ = ["install_openapi"]

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again (busy or shutting down)",
        "required": False,
        "schema": {"type": "integer"},
    }
}


def _error(description: str, headers: dict | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_REF}},
    }
    if headers:
        out["headers"] = headers
    return out


def _fill_max_images(node: Any, max_images: int) -> None:
    if isinstance(node, dict):
        if node.pop(MAX_IMAGES_MARK, None):
            node["maxItems"] = max_images
        for v in node.values():
            _fill_max_images(v, max_images)
    elif isinstance(node, list):
        for v in node:
            _fill_max_images(v, max_images)


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    _fill_max_images(schema, settings.max_images)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    keys = bool(settings.keys)
    if keys:
        components["securitySchemes"] = {
            "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "BearerAuth": {"type": "http", "scheme": "bearer"},
        }
    for path, ops in schema.get("paths", {}).items():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            bad = responses.get("422", {}).get("content", {}).get("application/json", {})
            if bad.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                responses["422"] = _error("invalid request")
            if not is_protected(path):
                continue
            if keys:
                op["security"] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
                responses.setdefault("401", _error("no API key, or a wrong one"))
            if "requestBody" in op:
                responses.setdefault("408", _error("the body did not arrive within the time limit"))
                responses.setdefault("413", _error("request too large"))
            responses.setdefault(
                "503", _error("server busy, shutting down, or models not available", _RETRY_AFTER)
            )
            if "headers" not in responses["503"]:
                responses["503"]["headers"] = _RETRY_AFTER
            responses.setdefault("504", _error("the request took longer than its time limit"))
    if not any("HTTPValidationError" in str(ops) for ops in schema.get("paths", {}).values()):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return schema


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
