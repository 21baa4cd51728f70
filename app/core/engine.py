"""Where the work of a request waits: a bounded queue in front of a fixed set of workers.

Requests never run CPU work on the event loop. Each item a request sends (an image to analyse or
beautify, the files of an average) becomes a job of its kind (:mod:`app.core.tasks`) in one queue
(at most ``queue_size`` waiting, and no more than the workers clear in ``queue_wait_s`` at the
rate they have been working: a request that does not fit is a 503 ``overloaded`` with ``Retry-
After``; :meth:`Engine.would_accept` tells it before the body is read, so that
:class:`app.core.admission.Admission` refuses it without reading, parsing or decoding it).

Why a bound in seconds as well as in images: an image admitted behind ``q`` others waits about
``q x s / w`` (``s`` a worker's seconds per image, ``w`` the workers) before its own work starts,
so a fixed ``queue_size`` means a longer wait on a slower machine or with slower heads. Measured
with 64 clients that ignore ``Retry-After`` on a 2-core machine where a worker took about 45 ms
an image, a queue of 32 made the p99 of all answers 1,002 ms. ``s`` is the mean worker time per
image of the batches done (an exponentially weighted mean, :data:`IMAGE_S_WEIGHT`); until the
first batch is done only ``queue_size`` applies. One
dispatcher task per worker takes jobs from the queue, several at a time when several are waiting
(``batch_max``; they must be of the same kind with the same parameters, e.g. the same stages and
options), and hands them to its worker as one :class:`~app.core.tasks.Task` (for an analysis,
:func:`app.core.pipeline.run_batch`: one trunk forward over the faces of every image of the task). A
request waits for its jobs; if it is cancelled (its time limit, the client gone) its waiting jobs
are dropped. The workers, threads or supervised processes, are :mod:`app.core.workers`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import ApiError
from app.core.metrics import Metrics
from app.core.pipeline import Analysis, Failure
from app.core.tasks import Task
from app.core.workers import WorkerLost

__all__ = ["Engine"]

log = logging.getLogger("app.engine")

#: Weight of the newest batch in the workers' mean seconds per image.
IMAGE_S_WEIGHT = 0.2


def _canonical(value: Any) -> Any:
    """A value with its mappings as sorted pairs (the same parameters give the same key)."""
    if isinstance(value, Mapping):
        return sorted((k, _canonical(v)) for k, v in value.items())
    return value


@dataclass(eq=False)
class _Job:
    """One item of a request waiting for a worker; jobs with the same ``key`` (kind and
    parameters) may share a task."""

    item: Any
    kind: str
    params: dict[str, Any]
    key: tuple
    request_id: str | None
    future: asyncio.Future = field(repr=False)


class Engine:
    """The job queue and its dispatchers (one per worker of ``backend``)."""

    def __init__(
        self,
        backend: Any,
        *,
        queue_size: int,
        batch_max: int,
        batch_wait_s: float = 0.0,
        queue_wait_s: float = 0.0,
        retry_after_s: int = 1,
        metrics: Metrics | None = None,
    ) -> None:
        self.backend = backend
        self.queue_size = queue_size
        self.queue_wait_s = queue_wait_s
        #: The workers' mean seconds per image (None until a batch is done).
        self.image_s: float | None = None
        self._slots = 1
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.retry_after_s = retry_after_s
        self.metrics = metrics or Metrics()
        self.closing = False
        self._pending: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._idle = 0  # dispatchers waiting for a job
        self.in_flight = 0

    @property
    def ready(self) -> bool:
        return self.backend.ready

    @property
    def load_error(self) -> Any:
        return self.backend.load_error

    @property
    def queued(self) -> int:
        return len(self._pending)

    def would_accept(self, n: int = 1) -> bool:
        """Whether ``n`` more images fit in the queue now (what :meth:`submit` checks): at most
        ``queue_size`` waiting, and (``queue_wait_s`` > 0, once :attr:`image_s` is known) the
        last of them expected to start within ``queue_wait_s``.

        Cheap and safe from any thread: one length read of the queue, no lock (the queue only
        changes on the event loop; a reader elsewhere sees a value at most one change old).
        An empty queue takes a request of any size.
        """
        waiting = len(self._pending)
        if not waiting:
            return True
        if waiting + n > self.queue_size:
            return False
        s = self.image_s
        if self.queue_wait_s <= 0 or s is None:
            return True
        return (waiting + n) * s <= self.queue_wait_s * self._slots

    @property
    def full(self) -> bool:
        """Whether the queue cannot take even one more image."""
        return not self.would_accept(1)

    def overloaded(self) -> ApiError:
        """The 503 ``overloaded`` (with ``Retry-After``) of a request the queue cannot take."""
        return ApiError(
            503,
            "overloaded",
            f"the server is busy ({len(self._pending)} images waiting); try again shortly",
            {"Retry-After": str(self.retry_after_s)},
        )

    def update_gauges(self) -> None:
        m = self.metrics
        m.queue.set(len(self._pending))
        m.in_flight.set(self.in_flight)
        states = self.backend.states
        for state in ("loading", "ready", "failed"):
            m.workers.labels(state).set(states.get(state, 0))
        m.models_loaded.set(1 if self.backend.ready else 0)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        await self.backend.start()
        self._slots = max(1, self.backend.slots)
        self._tasks = [
            asyncio.create_task(self._dispatch(i), name=f"facecore-dispatch-{i}")
            for i in range(self.backend.slots)
        ]
        self.update_gauges()

    async def stop(self) -> None:
        self.closing = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for job in self._pending:
            if not job.future.done():
                job.future.set_result(Failure(503, "shutting_down", "the server is shutting down"))
        self._pending.clear()
        await self.backend.stop()

    async def analyze(
        self,
        images: Sequence[bytes],
        stages: Sequence[str] | None,
        options: Mapping[str, Mapping[str, Any]] | None,
        request_id: str | None = None,
    ) -> list[Analysis | Failure]:
        """Analyses of ``images`` in order (each an :class:`Analysis` or a :class:`Failure`);
        see :meth:`submit`."""
        params = {
            "stages": None if stages is None else tuple(stages),
            "options": {k: dict(v) for k, v in (options or {}).items()},
        }
        return await self.submit("analyze", images, params, request_id)

    async def submit(
        self,
        kind: str,
        items: Sequence[Any],
        params: Mapping[str, Any],
        request_id: str | None = None,
    ) -> list[Any]:
        """Results of jobs of ``kind`` (:data:`app.core.tasks.KINDS`), one per item, in order:
        each what the kind makes, or a :class:`Failure`.

        Raises
        ------
        ApiError
            503 ``overloaded`` (with ``Retry-After``) when the queue cannot take the items,
            503 ``shutting_down`` once the server is stopping.
        """
        if self.closing:
            raise ApiError(
                503,
                "shutting_down",
                "the server is shutting down",
                {"Retry-After": str(self.retry_after_s)},
            )
        if not self.would_accept(len(items)):
            self.metrics.rejected.labels("overloaded").inc()
            raise self.overloaded()
        loop = asyncio.get_running_loop()
        shared = dict(params)
        key = (kind, repr(sorted((k, _canonical(v)) for k, v in shared.items())))
        jobs = [_Job(item, kind, shared, key, request_id, loop.create_future()) for item in items]
        self._pending.extend(jobs)
        self.metrics.queue.set(len(self._pending))
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(j.future for j in jobs)))
        finally:
            for j in jobs:  # cancelled (time limit, client gone): drop what still waits
                if not j.future.done():
                    j.future.cancel()

    def _take(self) -> list[_Job]:
        while self._pending and self._pending[0].future.done():
            self._pending.popleft()  # cancelled while waiting
        if not self._pending:
            return []
        first = self._pending.popleft()
        # Share what waits with the other idle dispatchers: never leave a worker idle to batch.
        share = max(1, math.ceil((len(self._pending) + 1) / max(1, self._idle)))
        want = min(self.batch_max, share)
        batch = [first]
        keep: deque[_Job] = deque()
        while self._pending and len(batch) < want:
            job = self._pending.popleft()
            if job.future.done():
                continue
            (batch if job.key == first.key else keep).append(job)
        keep.extend(self._pending)
        self._pending = keep
        return batch

    async def _next_batch(self) -> list[_Job]:
        assert self._wakeup is not None
        self._idle += 1
        try:
            while True:
                batch = self._take()
                if batch:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            self._idle -= 1
        if self.batch_wait_s > 0 and len(batch) < self.batch_max:
            await asyncio.sleep(self.batch_wait_s)
            while self._pending and len(batch) < self.batch_max:
                job = self._pending[0]
                if job.future.done() or job.key == batch[0].key:
                    self._pending.popleft()
                    if not job.future.done():
                        batch.append(job)
                else:
                    break
        if self._pending:
            self._wakeup.set()  # more work: wake another dispatcher
        return batch

    async def _dispatch(self, slot: int) -> None:
        while True:
            await self.backend.wait_ready(slot)
            self.update_gauges()
            batch = await self._next_batch()
            if self.backend.load_error is not None:
                err = Failure(
                    503, "model_unavailable", f"models could not be loaded: {self.load_error}"
                )
                self._finish(batch, [err] * len(batch))
                continue
            first = batch[0]
            task = Task(
                first.kind, [j.item for j in batch], first.params, [j.request_id for j in batch]
            )
            self.in_flight += len(batch)
            self.update_gauges()
            t0 = time.perf_counter()
            try:
                outcome = await self.backend.run(slot, task)
                results = outcome.results
                self.metrics.observe_stages(outcome.timings)
                for n in outcome.trunk_batches:
                    self.metrics.trunk_faces.observe(n)
                per_image = (time.perf_counter() - t0) / len(batch)
                s = self.image_s
                self.image_s = per_image if s is None else s + IMAGE_S_WEIGHT * (per_image - s)
            except WorkerLost as e:
                results = [Failure(503, "worker_lost", f"{e}; try again")] * len(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker task failed")
                results = [Failure(500, "internal_error", "internal error; see the service log")]
                results *= len(batch)
            finally:
                self.in_flight -= len(batch)
            self.metrics.batch.observe(len(batch))
            log.debug("batch of %d images in %.1f ms", len(batch), 1e3 * (time.perf_counter() - t0))
            self._finish(batch, results)
            self.update_gauges()

    def _finish(self, batch: list[_Job], results: Sequence[Any]) -> None:
        for job, res in zip(batch, results, strict=True):
            outcome = res.code if isinstance(res, Failure) else "ok"
            self.metrics.images.labels(outcome).inc()
            if not job.future.done():
                job.future.set_result(res)
