"""The pipeline a worker runs on a batch of images: each stage once over every image.

:func:`run_batch` runs :func:`facecore.multi.analyze_many` (the trunk, and every head that reads
only the trunk's maps, once over the faces of every image that asked for the same stages and
options) and turns each image's outcome into what the service answers: an :class:`Analysis`, or
a :class:`Failure` with the status and code of its error (the other images go on).
``tests/app/core/test_worker_pipeline.py`` checks that the results equal the per-image ones.

Each step is timed (``decode``, ``detect``, each stage by name) for ``facecore_stage_seconds``.
Returned faces lose their in-memory ``features`` and crops (not serialised, and about 100 kB a
face that would otherwise be pickled back from a worker process).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import status_for
from app.core.logs import request_id
from facecore.errors import FacecoreError
from facecore.types import Face

__all__ = ["Analysis", "BatchOutcome", "Failure", "failure_of", "run_batch"]

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
    """What a worker answers for a task: one result per item, with the timings of its steps."""

    #: per item: an :class:`Analysis`, an image (:class:`app.core.tasks.Rendered`) or a Failure
    results: list[Any]
    #: seconds of each call of each step, by step name
    timings: dict[str, list[float]] = field(default_factory=dict)
    #: faces per trunk forward
    trunk_batches: list[int] = field(default_factory=list)


def failure_of(exc: BaseException, rid: str | None) -> Failure:
    """The failure an item's error deserves: a library error's status and code, else a logged
    500 (logged with the item's request id)."""
    if isinstance(exc, FacecoreError):
        return Failure(status_for(exc), exc.code, str(exc))
    token = request_id.set(rid)
    try:
        log.error("analysis failed", exc_info=exc)
    finally:
        request_id.reset(token)
    return Failure(500, "internal_error", INTERNAL_MESSAGE)


def run_batch(
    analyzer: Any,
    images: Sequence[bytes],
    stages: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    request_ids: Sequence[str | None] | None = None,
    batch_trunk: bool = True,
) -> BatchOutcome:
    """Analyse ``images`` (encoded bytes) with ``analyzer``; one result per image, in order
    (:func:`facecore.multi.analyze_many`; ``batch_trunk=False`` runs image by image)."""
    from facecore.multi import analyze_many

    rids = list(request_ids) if request_ids is not None else [None] * len(images)
    outcome = BatchOutcome(results=[])

    def on_step(name: str, seconds: float, n_faces: int) -> None:
        outcome.timings.setdefault(name, []).append(seconds)
        if name == "trunk":
            outcome.trunk_batches.append(n_faces)

    try:
        done = analyze_many(analyzer, images, stages, options, on_step=on_step, group=batch_trunk)
    except Exception as e:  # validated before queueing; a failure here fails every image
        f = failure_of(e, rids[0] if rids else None)
        return BatchOutcome(results=[f] * len(images))
    for res, rid in zip(done, rids, strict=True):
        if res.error is not None:
            outcome.results.append(failure_of(res.error, rid))
        else:
            kept = [f.evolve(features={}, crops={}) for f in res.faces]
            outcome.results.append(Analysis(width=res.width, height=res.height, faces=kept))
    return outcome
