"""The service's work for one request: check what it asks, queue it on the engine, answer.

A route gets an :class:`AnalysisService` from its dependencies (:data:`app.api.deps.ServiceDep`)
and calls one of its methods once. The service checks the request's stages, models and options
with this process's analyzer (building a stage reads the manifest, never a model file), queues
the work on the workers (:class:`app.core.engine.Engine`: jobs of kind ``analyze``,
``beautify`` or ``average``, :mod:`app.core.tasks`) and builds the answer from what comes back.
The warnings of an answer are the ones the stages put on its faces
(:meth:`facecore.serialize.WarningOut.for_faces`); a view of one head also runs every stage that
makes warnings (:func:`with_warnings`), so that its answer carries them too.

This module implements no paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.api.uploads import Upload
from app.core.engine import Engine
from app.core.errors import ApiError
from app.core.pipeline import Analysis, Failure
from app.core.tasks import Rendered
from app.schemas import (
    AnalyzeBatchResponse,
    AnalyzeItem,
    AnalyzeResponse,
    CompareResponse,
    FaceOut,
    FacesResponse,
    ImageInfo,
)
from facecore.analyzer import FaceAnalyzer, StageOptions
from facecore.errors import FacecoreError
from facecore.ldl.distributions import probability_higher
from facecore.serialize import WarningOut
from facecore.stages import parse_model_choices, parse_stage_list, stage_names

__all__ = ["AnalysisService", "batch_item", "model_options", "with_warnings"]


def model_options(pairs: Sequence[str], default_head: str | None = None) -> dict[str, Any]:
    """``model`` query values -> stage options: ``HEAD=NAME``, or a bare ``NAME`` for the route's
    own head."""
    try:
        return parse_model_choices(pairs, default_head)
    except ValueError as e:
        raise ApiError(422, "invalid_request", f"model: {e}") from None


def with_warnings(analyzer: FaceAnalyzer, stages: tuple[str, ...]) -> tuple[str, ...]:
    """``stages`` plus every registered stage of ``analyzer`` that puts warnings on faces (its
    ``warns`` attribute); a stage that cannot be built here is left out (no warnings, not an
    error)."""
    extra = []
    for name in stage_names():
        if name in stages:
            continue
        try:
            stage = analyzer.stage(name)
        except Exception:  # not configured here, e.g. its model is not in the manifest
            continue
        if getattr(stage, "warns", False):
            extra.append(name)
    return (*stages, *extra)


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


def _raise(res: Any, prefix: str = "") -> None:
    if isinstance(res, Failure):
        raise ApiError(res.status, res.code, f"{prefix}{res.message}")


class AnalysisService:
    """What the image routes do, for one request.

    Parameters
    ----------
    analyzer : FaceAnalyzer
        This process's analyzer: it checks stages and options and describes the heads (it loads
        no model for that); the workers run their own.
    engine : Engine
        The queue of the workers.
    request_id : str, optional
        The request's id (for the workers' log).
    """

    def __init__(self, analyzer: FaceAnalyzer, engine: Engine, request_id: str | None) -> None:
        self.analyzer = analyzer
        self.engine = engine
        self.request_id = request_id

    def check_stages(
        self, stages: Sequence[str] | None, options: StageOptions | None
    ) -> tuple[str, ...]:
        """The run order of ``stages``; an unknown stage, model or option is a 422 before any
        image is queued."""
        try:
            order = self.analyzer.stage_order(stages, options)
            for head in options or {}:
                if head not in order:
                    self.analyzer.stage(head)  # a model for a stage that does not exist
        except FacecoreError:
            raise
        except ValueError as e:  # an option the stage does not take, e.g. ?model=landmarks=x
            raise ApiError(422, "invalid_request", str(e)) from None
        return order

    async def run(
        self,
        images: Sequence[bytes | ApiError],
        stages: Sequence[str] | None,
        options: StageOptions | None = None,
    ) -> tuple[tuple[str, ...], list[Analysis | Failure]]:
        """Analyse several images on the workers (one result or failure per image; an image
        whose part was already refused keeps its error)."""
        order = self.check_stages(stages, options)
        good = [i for i, d in enumerate(images) if not isinstance(d, ApiError)]
        done = await self.engine.analyze(
            [images[i] for i in good], stages, options, self.request_id
        )
        by_index = dict(zip(good, done, strict=True))
        results: list[Analysis | Failure] = []
        for i, d in enumerate(images):
            if isinstance(d, ApiError):
                results.append(Failure(d.status, d.code, d.message))
            else:
                results.append(by_index[i])
        return order, results

    async def analyze(
        self, upload: Upload, stages: str | None, models: Sequence[str], descriptor: bool
    ) -> AnalyzeResponse | AnalyzeBatchResponse:
        """``/v1/analyze``: every face with every prediction of ``stages``."""
        order, results = await self.run(
            [d for _, d in upload.images], parse_stage_list(stages), model_options(models)
        )

        def response(res: Analysis) -> AnalyzeResponse:
            return AnalyzeResponse(
                image=ImageInfo(width=res.width, height=res.height),
                stages=list(order),
                faces=[FaceOut.from_face(f, embedding=descriptor) for f in res.faces],
                warnings=WarningOut.for_faces(res.faces),
            )

        return self._answer(upload, results, response, AnalyzeItem, AnalyzeBatchResponse)

    async def faces(self, data: bytes, descriptor: bool) -> FacesResponse:
        """``/v1/faces``: boxes, detector scores and landmarks (and descriptors)."""
        stages = ("landmarks", "trunk") if descriptor else ("landmarks",)
        _, (res,) = await self.run([data], stages)
        _raise(res)
        return FacesResponse(
            image=ImageInfo(width=res.width, height=res.height),
            faces=[FaceOut.from_face(f, embedding=descriptor, predictions=()) for f in res.faces],
        )

    async def head_view(
        self,
        upload: Upload,
        head: str,
        model: str | None,
        response_cls: Any,
        item_cls: Any,
        batch_cls: Any,
    ) -> Any:
        """One head's view of ``/v1/analyze`` (``/v1/score``, ``/v1/age``): run the stages the
        head needs on every uploaded image and answer with that head's prediction per face.

        ``response_cls`` takes ``image``, ``model``, ``scale``, ``faces``, ``warnings`` and, if
        it has the field, ``unit``; several images give ``batch_cls(results=[item_cls(...),
        ...])``, one entry per image.
        """
        options = model_options([model], head) if model else None
        stages = with_warnings(self.analyzer, (head,))
        _, results = await self.run([d for _, d in upload.images], stages, options)
        stage = self.analyzer.stage(head, (options or {}).get(head))
        (output,) = [o for o in stage.provides if o.name == head]
        extra = {"unit": output.unit or None} if "unit" in response_cls.model_fields else {}

        def response(res: Analysis) -> Any:
            return response_cls(
                image=ImageInfo(width=res.width, height=res.height),
                model=stage.model_name,
                scale=output.scale,
                **extra,
                faces=[FaceOut.from_face(f, points=False, predictions=(head,)) for f in res.faces],
                warnings=WarningOut.for_faces(res.faces),
            )

        return self._answer(upload, results, response, item_cls, batch_cls)

    async def compare(
        self, names: Sequence[str], images: Sequence[bytes], head: str, model: str | None
    ) -> CompareResponse:
        """``/v1/compare``: the probability that the first image's largest face is rated higher
        than the second's by ``head``'s distribution model (errors name the image's field)."""
        options = model_options([model], head) if model else None
        stage = self.analyzer.stage(head, (options or {}).get(head))
        (output,) = [o for o in stage.provides if o.name == head]
        if not output.distribution:
            raise ApiError(
                422,
                "model_without_distribution",
                f"model {stage.model_name!r} predicts a single score, not a distribution; "
                "choose a distribution model with ?model=",
            )
        _, results = await self.run(images, with_warnings(self.analyzer, (head,)), options)
        sides = []
        for name, res in zip(names, results, strict=True):
            _raise(res, f"{name}: ")
            if not res.faces:
                raise ApiError(422, "no_face", f"{name}: no face found in the image")
            face = res.faces[0]
            sides.append(
                {
                    "image": ImageInfo(width=res.width, height=res.height),
                    "face": FaceOut.from_face(face, points=False, predictions=(head,)),
                    "warnings": WarningOut.for_faces([face]),
                }
            )
        (r1, r2) = results
        p1, p2 = r1.faces[0].predictions[head], r2.faces[0].predictions[head]
        return CompareResponse(
            model=stage.model_name,
            probability_first_higher=probability_higher(p1.probabilities, p2.probabilities),
            first=sides[0],
            second=sides[1],
        )

    async def beautify(self, data: bytes, warp: float, smooth: float, fmt: str) -> Rendered:
        """``/v1/beautify``: the beautified image, encoded as ``fmt``, with its headers."""
        params = {"warp": warp, "smooth": smooth, "fmt": fmt}
        (res,) = await self.engine.submit("beautify", [data], params, self.request_id)
        _raise(res)
        return res

    async def average(self, named: list[tuple[str, bytes]], size: int, fmt: str) -> Rendered:
        """``/v1/average``: the average face of the named files, encoded as ``fmt``."""
        params = {"size": size, "fmt": fmt}
        (res,) = await self.engine.submit("average", [named], params, self.request_id)
        _raise(res)
        return res

    @staticmethod
    def _answer(
        upload: Upload, results: list[Analysis | Failure], response: Any, item: Any, batch: Any
    ) -> Any:
        if not upload.batch:
            (res,) = results
            _raise(res)
            return response(res)
        return batch(
            results=[
                batch_item(item, i, name, res, response)
                for i, ((name, _), res) in enumerate(zip(upload.images, results, strict=True))
            ]
        )
