"""What the routes share: the analyzer and the engine from app state, the images of a request,
the error and body docs, and running an analysis on the workers."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.engine import Engine
from app.core.errors import ApiError
from app.core.pipeline import Analysis, Failure
from app.schemas import ErrorResponse, ImageInfo, ImageRequest, ImagesRequest
from facecore.analyzer import FaceAnalyzer, StageOptions
from facecore.errors import FacecoreError
from facecore.io import SUPPORTED_FORMATS
from facecore.stages import parse_model_choices
from facecore.types import Face

__all__ = [
    "AnalyzerDep",
    "EngineDep",
    "IMAGE_ROUTE",
    "ImageBytes",
    "Images",
    "Upload",
    "analyze_bytes",
    "analyze_images",
    "batch_item",
    "check_stages",
    "get_analyzer",
    "get_engine",
    "image_bytes",
    "images_upload",
    "model_options",
    "multi_image_route",
]

#: Non-file fields a multipart body may have (more is a 422).
MAX_FORM_FIELDS = 8


# Dependencies are ``async``: FastAPI runs a plain ``def`` one in the thread pool, which the app
# bounds to the CPU count (for routes that run CPU work there); these must never wait for it.
async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_analyzer(request: Request) -> FaceAnalyzer:
    state = request.app.state
    err = state.engine.load_error
    if err is not None:
        raise ApiError(503, "model_unavailable", f"models could not be loaded: {err}")
    return state.analyzer


AnalyzerDep = Annotated[FaceAnalyzer, Depends(get_analyzer)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def _decode_base64(text: str) -> bytes:
    """Decode what :data:`BASE64_PATTERN` describes (and nothing else)."""
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


def _unsupported(ctype: str, what: str) -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        f"content type {ctype or '(none)'!r} is not accepted; send multipart/form-data with {what}"
        f" or application/json with {'image_base64' if 'file' in what else what}",
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


async def read_upload(request: Request, max_images: int, multi: bool) -> Upload:
    """The images of a request: multipart field ``file`` (repeatable when ``multi``) or
    ``files``, or JSON ``{"image_base64": ...}`` / ``{"images_base64": [...]}``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
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
            for u in form.getlist("file") + form.getlist("files"):
                if isinstance(u, UploadFile):
                    await u.close()
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
                if "image_base64" in payload:
                    raise ApiError(
                        422, "invalid_request", "send image_base64 or images_base64, not both"
                    )
                try:
                    many = ImagesRequest.model_validate(payload)
                except ValidationError as e:
                    raise ApiError(422, "invalid_request", _validation_message(e)) from None
                if len(many.images_base64) > max_images:
                    raise ApiError(
                        422, "too_many_images", f"at most {max_images} images per request"
                    )
                # Not base64 is a malformed request (the schema says so), not one image's error.
                out: list[tuple[str | None, bytes | ApiError]] = []
                for i, text in enumerate(many.images_base64):
                    try:
                        out.append((None, _decode_base64(text)))
                    except ApiError:
                        msg = f"images_base64[{i}] is not valid base64"
                        raise ApiError(422, "invalid_base64", msg) from None
                return Upload(images=out, batch=True)
        try:
            if multi:
                one = ImageRequest.model_validate(payload)
            else:
                one = ImageRequest.model_validate_json(raw)
        except ValidationError as e:
            raise ApiError(422, "invalid_request", _validation_message(e)) from None
        return Upload(images=[(None, _decode_base64(one.image_base64))], batch=False)
    if multi:
        raise _unsupported(ctype, "'file' or 'files' fields")
    raise _unsupported(ctype, "a 'file' field")


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


ImageBytes = Annotated[bytes, Depends(image_bytes)]
Images = Annotated[Upload, Depends(images_upload)]

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


def batch_item(cls: Any, index: int, filename: str | None, res: Any, response: Any) -> Any:
    """The entry of image ``index`` in a several-image answer: its result or its error."""
    name = filename[:255] if filename else None
    if isinstance(res, Failure):
        return cls(
            index=index,
            filename=name,
            status=res.status,
            error={"code": res.code, "message": res.message},
        )
    return cls(index=index, filename=name, status=200, result=response(res))


def model_options(pairs: Sequence[str], default_head: str | None = None) -> dict[str, Any]:
    """``model`` query values -> stage options: ``HEAD=NAME``, or a bare ``NAME`` for the route's
    own head."""
    try:
        return parse_model_choices(pairs, default_head)
    except ValueError as e:
        raise ApiError(422, "invalid_request", f"model: {e}") from None


def check_stages(
    analyzer: FaceAnalyzer, stages: Sequence[str] | None, options: StageOptions | None
) -> tuple[str, ...]:
    """The run order of ``stages``; an unknown stage, model or option is a 422 before any image
    is queued."""
    try:
        order = analyzer.stage_order(stages, options)
        for head in options or {}:
            if head not in order:
                analyzer.stage(head)  # a model for a stage that does not exist: unknown_stage
    except FacecoreError:
        raise
    except ValueError as e:  # an option the stage does not take, e.g. ?model=landmarks=x
        raise ApiError(422, "invalid_request", str(e)) from None
    return order


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


async def analyze_images(
    request: Request,
    analyzer: FaceAnalyzer,
    images: Sequence[bytes | ApiError],
    stages: Sequence[str] | None,
    options: StageOptions | None = None,
) -> tuple[tuple[str, ...], list[Analysis | Failure]]:
    """Run the analyzer on several images on the workers (one result or failure per image)."""
    order = check_stages(analyzer, stages, options)
    good = [i for i, d in enumerate(images) if not isinstance(d, ApiError)]
    engine: Engine = request.app.state.engine
    done = await engine.analyze(
        analyzer, [images[i] for i in good], stages, options, _request_id(request)
    )
    results: list[Analysis | Failure] = []
    by_index = dict(zip(good, done, strict=True))
    for i, d in enumerate(images):
        if isinstance(d, ApiError):
            results.append(Failure(d.status, d.code, d.message))
        else:
            results.append(by_index[i])
    return order, results


async def analyze_bytes(
    request: Request,
    analyzer: FaceAnalyzer,
    data: bytes,
    stages: Sequence[str] | None,
    options: StageOptions | None = None,
) -> tuple[ImageInfo, tuple[str, ...], list[Face]]:
    """Run the analyzer on one uploaded image on the workers.

    Returns the image size, the stages that ran (in order) and the faces; an image that fails
    raises the :class:`ApiError` its failure deserves.
    """
    order, (result,) = await analyze_images(request, analyzer, [data], stages, options)
    if isinstance(result, Failure):
        raise ApiError(result.status, result.code, result.message)
    return ImageInfo(width=result.width, height=result.height), order, result.faces


def face_warnings(request: Request, faces: Sequence[Face]) -> list[Any]:
    """The ``warnings`` of a response holding ``faces``: what the stages put on them."""
    from facecore.serialize import WarningOut

    return WarningOut.for_faces(faces)


def with_warnings(analyzer: FaceAnalyzer, stages: tuple[str, ...]) -> tuple[str, ...]:
    """``stages`` plus every registered stage of ``analyzer`` that puts warnings on faces (its
    ``warns`` attribute); a stage that cannot be built here is left out (no warnings, not an
    error)."""
    from facecore.stages import list_stages

    extra = []
    for info in list_stages():
        if info.name in stages:
            continue
        try:
            stage = analyzer.stage(info.name)
        except Exception:  # not configured here, e.g. its model is not in the manifest
            continue
        if getattr(stage, "warns", False):
            extra.append(info.name)
    return (*stages, *extra)


async def head_view(
    request: Request,
    analyzer: FaceAnalyzer,
    upload: Any,
    head: str,
    model: str | None,
    response_cls: Any,
    item_cls: Any,
    batch_cls: Any,
) -> Any:
    """One head's view of ``/v1/analyze`` (``/v1/score``, ``/v1/age``): run the stages the head
    needs on every uploaded image and answer with that head's prediction per face.

    ``response_cls`` takes ``image``, ``model``, ``scale``, ``faces`` and, if it has the field,
    ``unit``; several
    images give ``batch_cls(results=[item_cls(...), ...])``, one entry per image.
    """
    from app.schemas import FaceOut

    options = model_options([model], head) if model else None
    _, results = await analyze_images(
        request, analyzer, [d for _, d in upload.images], with_warnings(analyzer, (head,)), options
    )
    stage = analyzer.stage(head, (options or {}).get(head))
    (output,) = [o for o in stage.provides if o.name == head]

    extra = {"unit": output.unit or None} if "unit" in response_cls.model_fields else {}

    def response(res: Analysis) -> Any:
        return response_cls(
            image=ImageInfo(width=res.width, height=res.height),
            model=stage.model_name,
            scale=output.scale,
            **extra,
            faces=[FaceOut.from_face(f, points=False, predictions=(head,)) for f in res.faces],
            warnings=face_warnings(request, res.faces),
        )

    if not upload.batch:
        (res,) = results
        if isinstance(res, Failure):
            raise ApiError(res.status, res.code, res.message)
        return response(res)
    return batch_cls(
        results=[
            batch_item(item_cls, i, name, res, response)
            for i, ((name, _), res) in enumerate(zip(upload.images, results, strict=True))
        ]
    )
