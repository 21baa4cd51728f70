"""``POST /v1/beautify`` and ``POST /v1/average``: beautification routes that return an image.

Thin views of :func:`facecore.beauty.beautify` and :func:`facecore.beauty.average_faces`, run by
the same workers as every other image route (jobs of kind ``beautify`` and ``average``,
:mod:`app.core.tasks`), with the same image limits, detector and models. The image comes back as
PNG or JPEG (``?format=`` wins over the ``Accept`` header; PNG by default); the numbers come back
in ``X-Facecore-*`` headers.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import ImageBytes, ServiceDep
from app.api.openapi_bodies import IMAGE_ROUTE, files_body
from app.api.uploads import read_named_files
from app.core.tasks import Rendered
from facecore.beauty.average import AVERAGE_SIZE
from facecore.beauty.pipeline import DEFAULT_SMOOTH, DEFAULT_WARP

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


def _image(rendered: Rendered, fmt: str) -> Response:
    return Response(content=rendered.content, media_type=_MEDIA[fmt], headers=rendered.headers)


@router.post(
    "/beautify",
    response_class=Response,
    responses=_responses("the beautified image", _HEADERS_DOC),
    openapi_extra=IMAGE_ROUTE["openapi_extra"],
)
async def beautify_image(
    request: Request,
    service: ServiceDep,
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
    return _image(await service.beautify(data, warp, smooth, fmt), fmt)


@router.post(
    "/average",
    response_class=Response,
    responses=_responses("the average face", {"X-Facecore-Faces": "number of faces averaged"}),
    openapi_extra=files_body("files", MAX_AVERAGE_FILES),
)
async def average(
    request: Request,
    service: ServiceDep,
    size: int = Query(AVERAGE_SIZE, ge=32, le=1024, description="Side of the output, pixels"),
    format: Literal["png", "jpeg"] | None = FormatQuery,
) -> Response:
    """The average face of up to 16 photos (multipart field ``files``, repeated): the largest
    face of each is warped onto the mean shape (Delaunay mesh, piecewise affine) and the pixels
    are averaged. Each file is decoded with the service's image limits; a file without a face
    is a 422 ``no_face`` that names it."""
    fmt = choose_format(format, request.headers.get("accept"))
    # Read here, after the query is checked (a bad query is a 422 whatever the body).
    named = await read_named_files(request, "files", MAX_AVERAGE_FILES)
    return _image(await service.average(named, size, fmt), fmt)
