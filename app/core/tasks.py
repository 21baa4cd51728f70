"""What a worker runs: a :class:`Task`, one kind of job over the items of several requests.

Every image route hands its work to the same engine (:class:`app.core.engine.Engine`) as jobs of
one of three kinds, and a worker runs the jobs the queue grouped (same kind, same parameters) as
one task with its own analyzer (:func:`run_task`); an item's error stays with its item (a
:class:`~app.core.pipeline.Failure`):

* ``analyze``: images through the analyzer's stages (:func:`app.core.pipeline.run_batch`);
* ``beautify``: :func:`facecore.beauty.beautify` of an image, answered as the encoded image and
  its ``X-Facecore-*`` headers (:class:`Rendered`);
* ``average``: :func:`facecore.beauty.average.average_of_aligned` of the largest face of each
  named file of one request (its landmarks from the analyzer's ``landmarks`` stage).

So in process mode the API process loads no model: it only checks requests and queues them.

This module implements no paper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from app.core.errors import status_for
from app.core.pipeline import BatchOutcome, Failure, failure_of, run_batch
from facecore.beauty.average import average_of_aligned
from facecore.beauty.pipeline import beautify
from facecore.errors import FacecoreError, ModelFileError

__all__ = ["KINDS", "Rendered", "Task", "encode_image", "run_task"]

log = logging.getLogger("app.tasks")


@dataclass(frozen=True)
class Task:
    """Jobs of one kind with the same parameters, as one call of a worker.

    Attributes
    ----------
    kind : str
        A key of :data:`KINDS`.
    items : list
        One item per job (an image's bytes; for ``average``, a request's named files).
    params : dict
        The keyword arguments the jobs share (``stages`` and ``options`` of an analysis, ...).
    request_ids : list of str or None
        The request of each item (for the log).
    """

    kind: str
    items: list[Any]
    params: dict[str, Any]
    request_ids: list[str | None]


@dataclass(frozen=True)
class Rendered:
    """An image a worker made: its encoded bytes and the headers of its answer."""

    content: bytes
    headers: dict[str, str]


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


def _each(
    items: Sequence[Any], rids: Sequence[str | None], make: Callable[[Any], Any]
) -> BatchOutcome:
    """``make`` on every item; an item that raises gets the failure its error deserves."""
    results: list[Any] = []
    for item, rid in zip(items, rids, strict=True):
        try:
            results.append(make(item))
        except Exception as e:
            results.append(failure_of(e, rid))
    return BatchOutcome(results=results)


def _beautify(
    analyzer: Any,
    images: Sequence[bytes],
    request_ids: Sequence[str | None],
    *,
    warp: float,
    smooth: float,
    fmt: str,
) -> BatchOutcome:
    def one(data: bytes) -> Rendered:
        result = beautify(data, warp, smooth, analyzer)
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
        return Rendered(encode_image(result.image, fmt), headers)

    return _each(images, request_ids, one)


class _FileFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _landmarks_of(analyzer: Any, data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        rgb, faces = analyzer.analyze_image(data, stages=("landmarks",))
    except ModelFileError:
        raise
    except FacecoreError as e:  # name the file in the message, keep the status and code
        raise _FileFailed(Failure(status_for(e), e.code, f"{name}: {e}")) from None
    if not faces:
        raise _FileFailed(Failure(422, "no_face", f"no face found in {name}"))
    return rgb, np.asarray(faces[0].landmarks)


def _average(
    analyzer: Any,
    requests: Sequence[Sequence[tuple[str, bytes]]],
    request_ids: Sequence[str | None],
    *,
    size: int,
    fmt: str,
) -> BatchOutcome:
    def one(named: Sequence[tuple[str, bytes]]) -> Rendered | Failure:
        rgbs, marks = [], []
        try:
            for name, data in named:
                rgb, lm = _landmarks_of(analyzer, data, name)
                rgbs.append(rgb)
                marks.append(lm)
        except _FileFailed as e:
            return e.failure
        image = average_of_aligned(rgbs, marks, size)
        return Rendered(encode_image(image, fmt), {"X-Facecore-Faces": str(len(rgbs))})

    return _each(requests, request_ids, one)


def _analyze(
    analyzer: Any,
    images: Sequence[bytes],
    request_ids: Sequence[str | None],
    *,
    stages: Sequence[str] | None,
    options: dict[str, dict[str, Any]],
) -> BatchOutcome:
    return run_batch(analyzer, images, stages, options, request_ids)


#: The kinds of job a worker runs: ``kind -> fn(analyzer, items, request_ids, **params)``.
KINDS: dict[str, Callable[..., BatchOutcome]] = {
    "analyze": _analyze,
    "beautify": _beautify,
    "average": _average,
}


def run_task(analyzer: Any, task: Task) -> BatchOutcome:
    """Run ``task`` with ``analyzer``: one result (or :class:`Failure`) per item, in order."""
    return KINDS[task.kind](analyzer, task.items, task.request_ids, **task.params)
