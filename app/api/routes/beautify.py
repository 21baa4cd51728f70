"""``POST /v1/beautify`` and ``POST /v1/average``: beautification routes that return an image.

Thin views of :func:`facecore.beauty.beautify` and :func:`facecore.beauty.average_faces`
through the service's analyzer (same image limits, detector and models as every other route),
run in the thread pool. The image comes back as PNG or JPEG (``?format=`` wins over the
``Accept`` header; PNG by default); the numbers come back in ``X-Facecore-*`` headers.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.deps import IMAGE_ROUTE, AnalyzerDep, ImageBytes
from app.core.errors import ApiError, status_for
from facecore.beauty.average import AVERAGE_SIZE, average_of_aligned
from facecore.beauty.pipeline import DEFAULT_SMOOTH, DEFAULT_WARP, beautify
from facecore.errors import FacecoreError, ModelFileError

__all__ = ["MAX_AVERAGE_FILES", "router"]

router = APIRouter(prefix="/v1", tags=["beautification"])

#: At most this many files in one ``/v1/average`` request.
MAX_AVERAGE_FILES = 16

_MEDIA = {"png": "image/png", "jpeg": "image/jpeg"}
_IMAGE_CONTENT = {"image/png": {}, "image/jpeg": {}}
_HEADERS_DOC = {
    "X-Facecore-Score-Before": "attractiveness of the face before (1-5, SCUT-FBP5500's scale)",
    "X-Facecore-Score-After": "attractiveness after (absent if the face was not found again)",
    "X-Facecore-Landmark-Shift": "mean landmark displacement of the warp, pixels",
    "X-Facecore-Landmark-Shift-Max": "largest landmark displacement, pixels",
    "X-Facecore-Identity-Distance": "dlib descriptor distance before/after (< 0.6: same person)",
    "X-Facecore-Face-Box": "the face changed: x1,y1,x2,y2 pixels",
}


def _responses(description: str, headers: dict[str, str]) -> dict[int | str, dict[str, Any]]:
    docs = {k: {"description": v, "schema": {"type": "string"}} for k, v in headers.items()}
    ok = {"description": description, "content": _IMAGE_CONTENT, "headers": docs}
    return {200: ok, **IMAGE_ROUTE["responses"]}


FormatQuery = Query(None, description="png or jpeg; default: from the Accept header, else png")


def choose_format(fmt: str | None, accept: str | None) -> Literal["png", "jpeg"]:
    """``?format=`` if given, else the ``Accept`` type (png or jpeg) with the highest q, else
    png."""
    if fmt is not None:
        return fmt  # type: ignore[return-value]
    best, best_q = "png", -1.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        kind = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg"}.get(media.lower())
        if kind is None:
            continue
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if q > 0.0 and q > best_q:  # ties: the first listed wins
            best, best_q = kind, q
    return best  # type: ignore[return-value]


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    """PNG (compression 3) or JPEG (quality 92) bytes of an RGB uint8 image."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    else:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - encoding a valid uint8 image does not fail
        raise RuntimeError(f"could not encode the image as {fmt}")
    return buf.tobytes()


@router.post(
    "/beautify",
    response_class=Response,
    responses=_responses("the beautified image", _HEADERS_DOC),
    openapi_extra=IMAGE_ROUTE["openapi_extra"],
)
async def beautify_image(
    request: Request,
    analyzer: AnalyzerDep,
    data: ImageBytes,
    warp: float = Query(DEFAULT_WARP, ge=0.0, le=1.0, description="Shape strength, 0-1"),
    smooth: float = Query(DEFAULT_SMOOTH, ge=0.0, le=1.0, description="Skin smoothing, 0-1"),
    format: Literal["png", "jpeg"] | None = FormatQuery,
) -> Response:
    """Beautify the largest face: its landmarks move towards the average of the 10 most similar
    better-rated SCUT-FBP5500 faces (moving-least-squares warp; the background stays), and its
    skin is smoothed. No face is a 422 ``no_face``. The reference set and the scorer are for
    non-commercial research use only."""
    fmt = choose_format(format, request.headers.get("accept"))
    result = await run_in_threadpool(beautify, data, warp, smooth, analyzer)
    headers = {
        "X-Facecore-Score-Before": f"{result.score_before:.4f}",
        "X-Facecore-Landmark-Shift": f"{result.landmark_shift_mean:.3f}",
        "X-Facecore-Landmark-Shift-Max": f"{result.landmark_shift_max:.3f}",
        "X-Facecore-Face-Box": ",".join(f"{v:g}" for v in result.box.as_tuple()),
    }
    if result.score_after is not None:
        headers["X-Facecore-Score-After"] = f"{result.score_after:.4f}"
    if result.identity_distance is not None:
        headers["X-Facecore-Identity-Distance"] = f"{result.identity_distance:.4f}"
    body = await run_in_threadpool(encode_image, result.image, fmt)
    return Response(content=body, media_type=_MEDIA[fmt], headers=headers)


def _landmarks_of(analyzer: Any, data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        rgb, faces = analyzer.analyze_image(data, stages=("landmarks",))
    except ModelFileError:
        raise
    except FacecoreError as e:  # name the file in the message, keep the status and code
        raise ApiError(status_for(e), e.code, f"{name}: {e}") from None
    if not faces:
        raise ApiError(422, "no_face", f"no face found in {name}")
    return rgb, np.asarray(faces[0].landmarks)


_AVERAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_AVERAGE_FILES,
                        }
                    },
                    "required": ["files"],
                }
            }
        },
    }
}


@router.post(
    "/average",
    response_class=Response,
    responses=_responses("the average face", {"X-Facecore-Faces": "number of faces averaged"}),
    openapi_extra=_AVERAGE_BODY,
)
async def average(
    request: Request,
    analyzer: AnalyzerDep,
    size: int = Query(AVERAGE_SIZE, ge=32, le=1024, description="Side of the output, pixels"),
    format: Literal["png", "jpeg"] | None = FormatQuery,
) -> Response:
    """The average face of up to 16 photos (multipart field ``files``, repeated): the largest
    face of each is warped onto the mean shape (Delaunay mesh, piecewise affine) and the pixels
    are averaged. Each file is decoded with the service's image limits; a file without a face
    is a 422 ``no_face`` that names it."""
    fmt = choose_format(format, request.headers.get("accept"))
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"content type {ctype or '(none)'!r} is not accepted; send multipart/form-data with "
            "one 'files' field per image",
        )
    try:
        form = await request.form(max_files=MAX_AVERAGE_FILES, max_fields=8)
    except StarletteHTTPException as e:
        if e.status_code != 400:  # e.g. 413 from the body size limit
            raise
        if "too many files" in str(e.detail).lower():
            msg = f"at most {MAX_AVERAGE_FILES} files per request"
        else:
            msg = f"malformed multipart body: {e.detail}"
        raise ApiError(422, "invalid_request", msg) from None
    uploads = [u for u in form.getlist("files") if not isinstance(u, str)]
    if not uploads:
        raise ApiError(422, "missing_file", "multipart body has no file field named 'files'")
    try:
        named = [(u.filename or f"file {i + 1}", await u.read()) for i, u in enumerate(uploads)]
    finally:
        for u in uploads:
            await u.close()
    rgbs, marks = [], []
    for name, data in named:
        rgb, lm = await run_in_threadpool(_landmarks_of, analyzer, data, name)
        rgbs.append(rgb)
        marks.append(lm)
    image = await run_in_threadpool(average_of_aligned, rgbs, marks, size)
    body = await run_in_threadpool(encode_image, image, fmt)
    return Response(
        content=body, media_type=_MEDIA[fmt], headers={"X-Facecore-Faces": str(len(rgbs))}
    )
