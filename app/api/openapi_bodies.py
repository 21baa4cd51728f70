"""What the image routes document: their request bodies and their error answers.

FastAPI cannot see the bodies :mod:`app.api.uploads` reads (the routes read the request
themselves, so that one route takes multipart or JSON), so each route passes its body's schema as
``openapi_extra``: :data:`IMAGE_ROUTE` (one image), :func:`multi_image_route` (one or several;
the several-image arrays are marked with :data:`MAX_IMAGES_MARK`, which
:func:`app.core.openapi.install_openapi` turns into the ``max_images`` setting),
:func:`files_body` (a repeated multipart field) and :func:`fields_body` (one image per field).
:data:`BASE64_PATTERN` is exactly what :func:`app.api.uploads.decode_base64` accepts.

This module implements no paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.schemas import ErrorResponse
from facecore.io import SUPPORTED_FORMATS

__all__ = [
    "BASE64_PATTERN",
    "IMAGE_MEDIA_TYPES",
    "IMAGE_ROUTE",
    "MAX_IMAGES_MARK",
    "fields_body",
    "files_body",
    "multi_image_route",
]

_ERROR_DOC = {"model": ErrorResponse}
_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {**_ERROR_DOC, "description": "image or request too large"},
    415: {**_ERROR_DOC, "description": "unsupported image format or content type"},
    422: {
        **_ERROR_DOC,
        "description": "undecodable image, invalid request, unknown stage or model",
    },
    503: {**_ERROR_DOC, "description": "models not available, server busy or shutting down"},
}

#: Media types of an image part (the format is read from the bytes, never from these).
IMAGE_MEDIA_TYPES = ", ".join(
    [*(f"image/{f}" for f in sorted(SUPPORTED_FORMATS)), "application/octet-stream"]
)
#: Exactly what the service decodes: standard base64 (RFC 4648 section 4, padded), optionally as a
#: data: URL, with white space anywhere (MIME base64 wraps lines); not empty.
_B64 = r"[A-Za-z0-9+/]\s*"
BASE64_PATTERN = (
    r"^\s*(data:[^,]*,)?\s*"
    rf"(?:(?:{_B64}){{4}})*(?:(?:{_B64}){{4}}|(?:{_B64}){{2}}=\s*=|(?:{_B64}){{3}}=)\s*$"
)
_BINARY = {"type": "string", "format": "binary"}
_BASE64 = {
    "type": "string",
    "pattern": BASE64_PATTERN,
    "contentEncoding": "base64",
    "contentMediaType": "image/*",
    "description": "An image file (JPEG, PNG, WebP, BMP, TIFF or GIF), base64-encoded",
}


def _body_doc(max_images: str | None) -> dict[str, Any]:
    file_doc = {
        **_BINARY,
        "description": "An image file (JPEG, PNG, WebP, BMP, TIFF or GIF; read from its bytes)",
    }
    if max_images is None:
        multipart = {
            "schema": {"type": "object", "properties": {"file": file_doc}, "required": ["file"]},
            "encoding": {"file": {"contentType": IMAGE_MEDIA_TYPES}},
        }
        js = {
            "schema": {
                "type": "object",
                "properties": {"image_base64": _BASE64},
                "required": ["image_base64"],
            }
        }
    else:
        files = {
            "type": "array",
            "items": _BINARY,
            "minItems": 1,
            max_images: True,
            "description": "Several images (at most the max_images setting); the answer is one "
            "result per image",
        }
        multipart = {
            "schema": {
                "type": "object",
                "properties": {"file": file_doc, "files": files},
                "anyOf": [{"required": ["file"]}, {"required": ["files"]}],
            },
            "encoding": {
                "file": {"contentType": IMAGE_MEDIA_TYPES},
                "files": {"contentType": IMAGE_MEDIA_TYPES},
            },
        }
        js = {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {"image_base64": _BASE64},
                        "required": ["image_base64"],
                        "not": {"required": ["images_base64"]},
                    },
                    {
                        "type": "object",
                        "properties": {
                            "images_base64": {
                                "type": "array",
                                "items": _BASE64,
                                "minItems": 1,
                                max_images: True,
                            }
                        },
                        "required": ["images_base64"],
                        "not": {"required": ["image_base64"]},
                    },
                ]
            }
        }
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": multipart, "application/json": js},
        }
    }


#: Keyword arguments of every route that takes one image: error responses and the body's docs.
IMAGE_ROUTE: dict[str, Any] = {"responses": _ERRORS, "openapi_extra": _body_doc(None)}


#: Marks the arrays whose ``maxItems`` is the ``max_images`` setting (filled in by
#: :func:`app.core.openapi.install_openapi` for the app's settings).
MAX_IMAGES_MARK = "x-facecore-max-images"


def multi_image_route() -> dict[str, Any]:
    """``openapi_extra`` of a route that takes one or several images."""
    return _body_doc(MAX_IMAGES_MARK)


def _multipart(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": schema}}}


def files_body(field: str, max_files: int) -> dict[str, Any]:
    """``openapi_extra`` of a route that takes up to ``max_files`` images in the repeated
    multipart ``field``."""
    files = {"type": "array", "items": _BINARY, "maxItems": max_files}
    return _multipart(
        {"schema": {"type": "object", "properties": {field: files}, "required": [field]}}
    )


def fields_body(fields: Sequence[str]) -> dict[str, Any]:
    """``openapi_extra`` of a route that takes one image in each multipart field of
    ``fields``."""
    return _multipart(
        {
            "schema": {
                "type": "object",
                "required": list(fields),
                "properties": {name: _BINARY for name in fields},
            }
        }
    )
