"""The pipeline a worker runs on a batch of images: each stage once over every image.

:func:`run_batch` does what :meth:`facecore.analyzer.FaceAnalyzer.analyze_image` does for one
image (decode with the analyzer's limits, detect with its ``max_faces`` cap, the stages in
:meth:`~facecore.analyzer.FaceAnalyzer.stage_order`), for several images that asked for the same
stages and options, through the analyzer's public methods only, so the numbers are the library's.
Two things differ:

* **Errors stay with their image.** A bad image (or a stage failing on it) gives a
  :class:`Failure` with the status and code the service answers for it; the other images go on.
* **One trunk forward for the whole batch.** The ``trunk`` stage runs all the faces it is given
  in one batch; here each face's aligned chip is first cut from its own image (cached on the face,
  :func:`facecore.align.face_crop`), then the stage is called once with the faces of every image.
  ``tests/app/core/test_worker_pipeline.py`` checks that the results equal the per-image ones.

Each step is timed (``decode``, ``detect``, each stage by name) for ``facecore_stage_seconds``.
Returned faces lose their in-memory ``features`` and crops (not serialised, and about 100 kB a
face that would otherwise be pickled back from a worker process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.errors import status_for
from app.core.logs import request_id
from facecore.errors import FacecoreError
from facecore.types import Face

__all__ = ["Analysis", "BatchOutcome", "Failure", "run_batch"]

log = logging.getLogger("app.pipeline")

INTERNAL_MESSAGE = "internal error; see the service log"


@dataclass(frozen=True)
class Analysis:
    """One image's result: its size and faces (largest first)."""

    width: int
    height: int
    faces: list[Face]


@dataclass(frozen=True)
class Failure:
    """One image's error: the HTTP status and code the service answers for it."""

    status: int
    code: str
    message: str


@dataclass
class BatchOutcome:
    results: list[Analysis | Failure]
    #: seconds of each call of each step, by step name
    timings: dict[str, list[float]] = field(default_factory=dict)
    #: faces per trunk forward
    trunk_batches: list[int] = field(default_factory=list)


def _failure(exc: BaseException, rid: str | None) -> Failure:
    if isinstance(exc, FacecoreError):
        return Failure(status_for(exc), exc.code, str(exc))
    token = request_id.set(rid)
    try:
        log.error("analysis failed", exc_info=exc)
    finally:
        request_id.reset(token)
    return Failure(500, "internal_error", INTERNAL_MESSAGE)


def _is_trunk(stage: Any) -> bool:
    from facecore.trunk import TrunkStage

    return isinstance(stage, TrunkStage)


def run_batch(
    analyzer: Any,
    images: Sequence[bytes],
    stages: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    request_ids: Sequence[str | None] | None = None,
    batch_trunk: bool = True,
) -> BatchOutcome:
    """Analyse ``images`` (encoded bytes) with ``analyzer``; one result per image, in order."""
    options = options or {}
    rids = list(request_ids) if request_ids is not None else [None] * len(images)
    outcome = BatchOutcome(results=[])
    times = outcome.timings

    def timed(name: str, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            times.setdefault(name, []).append(time.perf_counter() - t0)

    rgbs: list[np.ndarray | None] = []
    faces: list[list[Face] | None] = []
    failures: dict[int, Failure] = {}
    for i, data in enumerate(images):
        try:
            rgb = timed("decode", analyzer.load_image, data)
            found = timed("detect", analyzer.detect_loaded, rgb)
        except Exception as e:  # one bad image fails alone
            failures[i] = _failure(e, rids[i])
            rgb, found = None, None
        rgbs.append(rgb)
        faces.append(found)

    try:
        order = analyzer.stage_order(stages, options)
    except Exception as e:  # validated before queueing; a failure here fails every image
        f = _failure(e, rids[0] if rids else None)
        return BatchOutcome(results=[f] * len(images))

    for name in order:
        stage = analyzer.stage(name, options.get(name))
        live = [i for i in range(len(images)) if i not in failures and faces[i]]
        if not live:
            break
        if batch_trunk and len(live) > 1 and _is_trunk(stage):
            try:
                _trunk_once(
                    stage,
                    [rgbs[i] for i in live],
                    [faces[i] for i in live],
                    live,
                    faces,
                    timed,
                    outcome.trunk_batches,
                )
                continue
            except Exception:  # find out which image it was: run them one by one below
                log.debug("batched trunk failed; running its images one at a time", exc_info=True)
        for i in live:
            try:
                faces[i] = timed(name, stage, rgbs[i], faces[i])
                if _is_trunk(stage):
                    outcome.trunk_batches.append(len(faces[i]))
            except Exception as e:
                failures[i] = _failure(e, rids[i])

    for i in range(len(images)):
        if i in failures:
            outcome.results.append(failures[i])
        else:
            rgb = rgbs[i]
            assert rgb is not None
            kept = [f.evolve(features={}, crops={}) for f in faces[i] or []]
            outcome.results.append(Analysis(width=rgb.shape[1], height=rgb.shape[0], faces=kept))
    return outcome


def _trunk_once(stage, rgbs, groups, live, faces, timed, trunk_batches) -> None:  # noqa: ANN001
    from facecore.align import face_crops

    def run() -> list[Face]:
        for rgb, group in zip(rgbs, groups, strict=True):
            face_crops(rgb, group, stage.spec)  # each chip from its own image, cached on the face
        everything = [f for group in groups for f in group]
        return stage(rgbs[0], everything)  # every chip is cached: one forward over all faces

    out = timed(stage.name, run)
    trunk_batches.append(len(out))
    start = 0
    for i, group in zip(live, groups, strict=True):
        faces[i] = out[start : start + len(group)]
        start += len(group)
