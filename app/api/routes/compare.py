"""``POST /v1/compare``: which of two photos' faces the raters behind a model would rate higher.

Multipart fields ``first`` and ``second``, one image each. The largest face of each is scored by
an attractiveness model that predicts a rating distribution; ``probability_first_higher`` is the
probability that a rating drawn from the first face's distribution beats one drawn from the
second's, ties counted half (:func:`facecore.ldl.distributions.probability_higher`; the
preference model of Ren & Geng, "Sense Beauty by Label Distribution Learning", IJCAI 2017).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from app.api.deps import (
    IMAGE_ROUTE,
    AnalyzerDep,
    analyze_images,
    face_warnings,
    model_options,
    with_warnings,
)
from app.core.errors import ApiError
from app.core.pipeline import Failure
from app.schemas import CompareResponse, FaceOut, ImageInfo
from facecore.ldl.distributions import probability_higher

router = APIRouter(prefix="/v1", tags=["attractiveness"])

HEAD = "attractiveness"
FIELDS = ("first", "second")
_BINARY = {"type": "string", "format": "binary"}


async def _two_images(request: Request) -> list[bytes]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"content type {ctype or '(none)'!r} is not accepted; send multipart/form-data "
            "with the fields 'first' and 'second'",
        )
    from starlette.exceptions import HTTPException as StarletteHTTPException

    try:
        form = await request.form(max_files=2, max_fields=8)
    except StarletteHTTPException as e:
        if e.status_code != 400:
            raise
        raise ApiError(
            422, "invalid_request", f"send one image in 'first' and one in 'second' ({e.detail})"
        ) from None
    try:
        out = []
        for name in FIELDS:
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
        for name in FIELDS:
            for u in form.getlist(name):
                if isinstance(u, UploadFile):
                    await u.close()


@router.post(
    "/compare",
    response_model=CompareResponse,
    responses=IMAGE_ROUTE["responses"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": list(FIELDS),
                        "properties": {name: _BINARY for name in FIELDS},
                    }
                }
            },
        }
    },
)
async def compare(
    request: Request,
    analyzer: AnalyzerDep,
    model: str | None = Query(
        None,
        description="Attractiveness model with a distribution (manifest name); default: the "
        "service's attractiveness model",
    ),
) -> Any:
    """Compare the largest face of two photos: the probability that the first is rated
    higher, from the two predicted rating distributions, and each face with its prediction."""
    options = model_options([model], HEAD) if model else None
    images = await _two_images(request)
    stage = analyzer.stage(HEAD, (options or {}).get(HEAD))
    (output,) = [o for o in stage.provides if o.name == HEAD]
    if not output.distribution:
        raise ApiError(
            422,
            "model_without_distribution",
            f"model {stage.model_name!r} predicts a single score, not a distribution; "
            "choose a distribution model with ?model=",
        )
    _, results = await analyze_images(
        request, analyzer, images, with_warnings(analyzer, (HEAD,)), options
    )
    faces = []
    for name, res in zip(FIELDS, results, strict=True):
        if isinstance(res, Failure):
            raise ApiError(res.status, res.code, f"{name}: {res.message}")
        if not res.faces:
            raise ApiError(422, "no_face", f"{name}: no face found in the image")
        faces.append((res, res.faces[0]))
    (r1, f1), (r2, f2) = faces
    p1, p2 = f1.predictions[HEAD], f2.predictions[HEAD]
    return CompareResponse(
        model=stage.model_name,
        probability_first_higher=probability_higher(p1.probabilities, p2.probabilities),
        first=_side(request, r1, f1),
        second=_side(request, r2, f2),
    )


def _side(request: Request, res: Any, face: Any) -> dict[str, Any]:
    return {
        "image": ImageInfo(width=res.width, height=res.height),
        "face": FaceOut.from_face(face, points=False, predictions=(HEAD,)),
        "warnings": face_warnings(request, [face]),
    }
