"""The images of a request: multipart parts or JSON base64, with their limits and errors.

Every image route reads its body here. :func:`read_upload` reads the one- or several-image
bodies (multipart field ``file``, repeatable, or ``files``; JSON ``{"image_base64": ...}`` or
``{"images_base64": [...]}``), :func:`read_named_files` the repeated ``files`` field of
``/v1/average`` and :func:`read_fields` the one-image-per-field body of ``/v1/compare``. A body
that is not what the route takes is a 415 (content type) or a 422 (``missing_file``,
``too_many_images``, ``invalid_base64``, ``invalid_request``), never a 500; what the body
describes is documented by :mod:`app.api.openapi_bodies`.

This module implements no paper.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import ApiError
from app.schemas import ImageRequest, ImagesRequest

__all__ = [
    "MAX_FORM_FIELDS",
    "Upload",
    "decode_base64",
    "read_fields",
    "read_named_files",
    "read_upload",
]

#: Non-file fields a multipart body may have (more is a 422).
MAX_FORM_FIELDS = 8


@dataclass
class Upload:
    """The images of a request, in the order sent.

    ``images`` holds each image's file name (multipart) and its bytes, or the
    :class:`ApiError` that its part alone deserves (bad base64); ``batch`` is whether the
    request asked for the several-image answer (``files``, a repeated ``file``, or
    ``images_base64``).
    """

    images: list[tuple[str | None, bytes | ApiError]]
    batch: bool


def decode_base64(text: str) -> bytes:
    """Decode what :data:`app.api.openapi_bodies.BASE64_PATTERN` describes (and nothing else).

    Raises
    ------
    ApiError
        422 ``invalid_base64``.
    """
    bad = ApiError(422, "invalid_base64", "image_base64 is not valid base64")
    text = text.strip()
    if text.startswith("data:"):
        _, comma, text = text.partition(",")
        if not comma:
            raise bad
    # Line breaks are part of MIME base64 (``base64`` wraps at 76 columns unless told -w0).
    text = "".join(text.split())
    if not text or len(text) % 4:
        raise bad
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad from None


def _validation_message(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in er['loc']) or 'body'}: {er['msg']}" for er in e.errors()
    )


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unsupported(ctype: str, what: str) -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        f"content type {ctype or '(none)'!r} is not accepted; send multipart/form-data with {what}"
        f" or application/json with {'image_base64' if 'file' in what else what}",
    )


def _multipart_only(ctype: str, what: str) -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        f"content type {ctype or '(none)'!r} is not accepted; send multipart/form-data {what}",
    )


async def _read_form(request: Request, max_files: int, multi: bool) -> Any:
    try:
        return await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS)
    except StarletteHTTPException as e:
        if e.status_code != 400:  # e.g. 413 from the body size limit, 408 from its time limit
            raise
        detail = str(e.detail)
        if "too many files" in detail.lower():
            if not multi:
                raise ApiError(422, "invalid_request", "send one file (field 'file')") from None
            raise ApiError(
                422, "too_many_images", f"at most {max_files} images per request"
            ) from None
        raise ApiError(422, "invalid_request", f"malformed multipart body: {detail}") from None


async def _close(form: Any, fields: Sequence[str]) -> None:
    for name in fields:
        for u in form.getlist(name):
            if isinstance(u, UploadFile):
                await u.close()


async def read_upload(request: Request, max_images: int, multi: bool) -> Upload:
    """The images of a request: multipart field ``file`` (repeatable when ``multi``) or
    ``files``, or JSON ``{"image_base64": ...}`` / ``{"images_base64": [...]}``."""
    ctype = _content_type(request)
    if ctype == "multipart/form-data":
        form = await _read_form(request, max_images if multi else 2, multi)
        single = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
        several = [u for u in form.getlist("files") if isinstance(u, UploadFile)] if multi else []
        uploads = single + several
        try:
            if not uploads:
                want = "'file' (or 'files')" if multi else "'file'"
                raise ApiError(
                    422, "missing_file", f"multipart body has no file field named {want}"
                )
            if not multi and len(uploads) > 1:
                raise ApiError(422, "invalid_request", "send one file (field 'file')")
            images = [(u.filename, await u.read()) for u in uploads]
        finally:
            await _close(form, ("file", "files"))
        return Upload(images=images, batch=bool(several) or len(single) > 1)
    if ctype == "application/json":
        raw = await request.body()
        payload: Any = None
        if multi:
            try:
                payload = json.loads(raw)
            except ValueError as e:  # UnicodeDecodeError included
                raise ApiError(422, "invalid_request", f"body is not JSON: {e}") from None
            if isinstance(payload, dict) and "images_base64" in payload:
                return _base64_images(payload, max_images)
        try:
            if multi:
                one = ImageRequest.model_validate(payload)
            else:
                one = ImageRequest.model_validate_json(raw)
        except ValidationError as e:
            raise ApiError(422, "invalid_request", _validation_message(e)) from None
        return Upload(images=[(None, decode_base64(one.image_base64))], batch=False)
    if multi:
        raise _unsupported(ctype, "'file' or 'files' fields")
    raise _unsupported(ctype, "a 'file' field")


def _base64_images(payload: dict[str, Any], max_images: int) -> Upload:
    if "image_base64" in payload:
        raise ApiError(422, "invalid_request", "send image_base64 or images_base64, not both")
    try:
        many = ImagesRequest.model_validate(payload)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", _validation_message(e)) from None
    if len(many.images_base64) > max_images:
        raise ApiError(422, "too_many_images", f"at most {max_images} images per request")
    # Not base64 is a malformed request (the schema says so), not one image's error.
    out: list[tuple[str | None, bytes | ApiError]] = []
    for i, text in enumerate(many.images_base64):
        try:
            out.append((None, decode_base64(text)))
        except ApiError:
            raise ApiError(
                422, "invalid_base64", f"images_base64[{i}] is not valid base64"
            ) from None
    return Upload(images=out, batch=True)


async def read_named_files(request: Request, field: str, max_files: int) -> list[tuple[str, bytes]]:
    """The files of the repeated multipart ``field`` (at least one, at most ``max_files``),
    each with its file name (``file N`` when it has none)."""
    ctype = _content_type(request)
    if ctype != "multipart/form-data":
        raise _multipart_only(ctype, f"with one {field!r} field per image")
    try:
        form = await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS)
    except StarletteHTTPException as e:
        if e.status_code != 400:  # e.g. 413 from the body size limit
            raise
        if "too many files" in str(e.detail).lower():
            msg = f"at most {max_files} files per request"
        else:
            msg = f"malformed multipart body: {e.detail}"
        raise ApiError(422, "invalid_request", msg) from None
    uploads = [u for u in form.getlist(field) if not isinstance(u, str)]
    if not uploads:
        raise ApiError(422, "missing_file", f"multipart body has no file field named {field!r}")
    try:
        return [(u.filename or f"file {i + 1}", await u.read()) for i, u in enumerate(uploads)]
    finally:
        for u in uploads:
            await u.close()


async def read_fields(request: Request, fields: Sequence[str]) -> list[bytes]:
    """One image from each multipart field of ``fields``, in their order."""
    ctype = _content_type(request)
    if ctype != "multipart/form-data":
        names = " and ".join(repr(f) for f in fields)
        raise _multipart_only(ctype, f"with the fields {names}")
    try:
        form = await request.form(max_files=len(fields), max_fields=MAX_FORM_FIELDS)
    except StarletteHTTPException as e:
        if e.status_code != 400:
            raise
        each = " and one ".join(f"in {f!r}" for f in fields)
        raise ApiError(422, "invalid_request", f"send one image {each} ({e.detail})") from None
    try:
        out = []
        for name in fields:
            parts = [u for u in form.getlist(name) if isinstance(u, UploadFile)]
            if len(parts) != 1:
                raise ApiError(
                    422,
                    "missing_file",
                    f"multipart body needs exactly one file field named {name!r}, got {len(parts)}",
                )
            out.append(await parts[0].read())
        return out
    finally:
        await _close(form, fields)
