"""Request dependencies: the analyzer from app state, and the image bytes of a request."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request
from pydantic import ValidationError

from app.core.errors import ApiError
from app.schemas import ImageRequest
from facecore.analyzer import FaceAnalyzer


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
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_base64", "image_base64 is not valid base64") from None


async def image_bytes(request: Request) -> bytes:
    """The uploaded image: multipart field ``file``, or JSON ``{"image_base64": ...}``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=8)
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
