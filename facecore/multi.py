"""The one stage loop: one image or several, decoded, detected and run through the stages.

:func:`analyze_many` decodes each image with the analyzer's limits, detects with its
``max_faces`` cap and runs the stages of :meth:`~facecore.analyzer.FaceAnalyzer.stage_order`
through the analyzer's public methods only; :func:`run_stages` runs the stages on faces already
detected. :meth:`FaceAnalyzer.analyze <facecore.analyzer.FaceAnalyzer.analyze>` and
:meth:`~facecore.analyzer.FaceAnalyzer.run_stages` are these with one image; the batch runner
(:mod:`facecore.batch`) and the service's workers (``app.core.pipeline``) call them with several.

* **Errors stay with their image.** An image that cannot be decoded, or on which a stage fails,
  gets its exception in its slot; the other images go on (the analyzer raises it for one image).
* **Each stage batches as it declares** (:func:`facecore.stages.stage_batching`). A ``"faces"``
  stage is called once with the faces of every image: when it has a ``spec`` (the trunk), each
  face's aligned chip is first cut from its own image (cached on the face,
  :func:`facecore.align.face_crop`). An ``"image"`` stage runs image by image. If a grouped call
  fails, its images are run one at a time to find the one at fault.

This module implements no paper.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecore.stages import stage_batching
from facecore.types import DecodedImage, Face

__all__ = ["ImageResult", "analyze_many", "run_stages"]

log = logging.getLogger(__name__)

#: ``on_step(step, seconds, n_faces)``: called after each timed step ("decode", "detect", or a
#: stage's name); ``n_faces`` is the number of faces the call ran on (0 for decode and detect).
StepHook = Callable[[str, float, int], None]


@dataclass(frozen=True)
class ImageResult:
    """One image's outcome: the decoded image's size and its faces, or the exception."""

    width: int = 0
    height: int = 0
    faces: tuple[Face, ...] = ()
    error: BaseException | None = None


def analyze_many(
    analyzer: Any,
    images: Sequence[Any],
    stages: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    decoded: Sequence[np.ndarray | BaseException | None] | None = None,
    on_step: StepHook | None = None,
    group: bool = True,
) -> list[ImageResult]:
    """Analyse ``images`` with ``analyzer``; one :class:`ImageResult` per image, in order.

    Parameters
    ----------
    analyzer : FaceAnalyzer
    images : sequence
        Anything :meth:`FaceAnalyzer.load_image` takes (paths, bytes, arrays).
    stages, options
        As for :meth:`FaceAnalyzer.analyze`. An invalid choice raises (it concerns every image).
    decoded : sequence, optional
        Images already decoded by ``analyzer.decode`` (a :class:`~facecore.types.DecodedImage`)
        or ``analyzer.load_image`` (an array), the exception decoding raised, or a
        :class:`~concurrent.futures.Future` of any of these (decoding in another thread), in
        the order of ``images``; ``None`` entries are decoded here. Detection runs on the
        reduced copy of a large image, the stages on its full-resolution pixels.
    on_step : callable, optional
        Timing hook, see :data:`StepHook`.
    group : bool, default True
        False: every stage image by image, whatever its ``batching``.
    """
    options = options or {}
    order = analyzer.stage_order(stages, options)
    timed = _timer(on_step)
    rgbs: list[np.ndarray | None] = []
    faces: list[list[Face]] = []
    errors: dict[int, BaseException] = {}
    for i, image in enumerate(images):
        pre = None if decoded is None else decoded[i]
        try:
            if isinstance(pre, Future):
                pre = pre.result()  # raises what decoding raised
            if isinstance(pre, BaseException):
                raise pre
            if pre is None:
                pre = timed("decode", 0, analyzer.decode, image)
            found = timed("detect", 0, analyzer.detect_loaded, pre)
            rgb = pre.pixels if isinstance(pre, DecodedImage) else pre
        except Exception as e:  # one bad image fails alone
            errors[i] = e
            rgb, found = None, []
        rgbs.append(rgb)
        faces.append(found)
    return _run(analyzer, order, options, rgbs, faces, errors, timed, group)


def run_stages(
    analyzer: Any,
    images: Sequence[np.ndarray],
    faces: Sequence[Sequence[Face]],
    stages: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    on_step: StepHook | None = None,
    group: bool = True,
) -> list[ImageResult]:
    """Run ``stages`` on faces already detected in decoded images; one result per image.

    Parameters
    ----------
    analyzer : FaceAnalyzer
    images : sequence of ndarray
        RGB images as :meth:`FaceAnalyzer.load_image` returns them.
    faces : sequence of sequences of Face
        The faces of each image (an image without faces runs no stage).
    stages, options, on_step, group
        As for :func:`analyze_many`.
    """
    options = options or {}
    order = analyzer.stage_order(stages, options)
    if len(images) != len(faces):
        raise ValueError(f"{len(images)} images but {len(faces)} lists of faces")
    return _run(
        analyzer, order, options, list(images), [list(f) for f in faces], {}, _timer(on_step), group
    )


def _timer(on_step: StepHook | None) -> Callable[..., Any]:
    """``timed(step, n_faces, fn, *args)``: ``fn(*args)``, reported to ``on_step``."""

    def timed(name: str, n: int, fn: Any, *args: Any) -> Any:
        if on_step is None:
            return fn(*args)
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            on_step(name, time.perf_counter() - t0, n)

    return timed


def _run(
    analyzer: Any,
    order: Sequence[str],
    options: Mapping[str, Mapping[str, Any]],
    rgbs: list[np.ndarray | None],
    faces: list[list[Face]],
    errors: dict[int, BaseException],
    timed: Callable[..., Any],
    group: bool,
) -> list[ImageResult]:
    """The stage loop: every stage of ``order`` over the faces of the images without an error."""
    for name in order:
        stage = analyzer.stage(name, options.get(name))
        live = [i for i in range(len(rgbs)) if i not in errors and faces[i]]
        if not live:
            break
        if group and len(live) > 1 and stage_batching(stage) == "faces":
            try:
                out = timed(
                    name,
                    sum(len(faces[i]) for i in live),
                    _grouped,
                    stage,
                    [rgbs[i] for i in live],
                    [faces[i] for i in live],
                )
                start = 0
                for i in live:
                    n = len(faces[i])
                    faces[i] = out[start : start + n]
                    start += n
                continue
            except Exception:  # find out which image it was: run them one by one below
                log.debug("grouped %s failed; its images one at a time", name, exc_info=True)
        for i in live:
            try:
                faces[i] = timed(name, len(faces[i]), stage, rgbs[i], faces[i])
            except Exception as e:
                errors[i] = e

    results = []
    for i, rgb in enumerate(rgbs):
        if i in errors:
            results.append(ImageResult(error=errors[i]))
        else:
            assert rgb is not None
            results.append(ImageResult(rgb.shape[1], rgb.shape[0], tuple(faces[i])))
    return results


def _grouped(stage: Any, rgbs: list[Any], groups: list[list[Face]]) -> list[Face]:
    """One call of a ``"faces"`` stage on the faces of several images (chips cut first)."""
    from facecore.align import face_crops

    spec = getattr(stage, "spec", None)
    if spec is not None:
        for rgb, group in zip(rgbs, groups, strict=True):
            face_crops(rgb, group, spec)  # each chip from its own image, cached on the face
    out = stage(rgbs[0], [f for group in groups for f in group])
    if len(out) != sum(len(g) for g in groups):
        raise RuntimeError(f"stage {stage.name!r} returned {len(out)} faces for a group")
    return out
