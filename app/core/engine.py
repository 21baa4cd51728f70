"""Where the analysis runs: a bounded queue in front of a fixed set of workers.

Requests never run CPU work on the event loop. Each image a request sends becomes a job in one
queue (at most ``queue_size`` waiting: a request that does not fit is a 503 ``overloaded`` with
``Retry-After``). One dispatcher task per worker takes jobs from the queue, several at a time when
several are waiting (``batch_max``; they must ask for the same stages and options), and hands them
to its worker as one task, :func:`app.core.pipeline.run_batch` (one trunk forward over the faces
of every image of the task). A request waits for its jobs; if it is cancelled (its time limit,
the client gone) its waiting jobs are dropped.

Two kinds of worker (setting ``worker_mode``):

* ``process`` (the default): one process per worker (``multiprocessing`` spawn), each with its
  own :class:`~facecore.analyzer.FaceAnalyzer` built from the settings and its own models. dlib's
  HOG detector and much of the feature code hold Python's GIL, so threads of one process cannot
  use two cores (measured here: 2 threads gave 1.0-1.15x one thread; 2 processes ~2x on an idle
  machine). A worker that dies is restarted; one that runs far past the time limit is killed and
  restarted; either way its images get a 503 ``worker_lost``. Workers ignore SIGINT/SIGTERM (the
  server drains them) and exit when the server closes their pipe.
* ``thread``: threads of this process over one analyzer (the app's, or a test's fake through
  ``dependency_overrides``; an analyzer given to :func:`app.main.create_app` forces this mode).

Every worker limits torch, BLAS, OpenMP and OpenCV to ``worker_threads`` threads (default 1):
``workers x worker_threads`` should not exceed the cores. Measured here, torch on 2 threads while
the other core is busy made a 25 ms trunk call take up to 800 ms, and OpenBLAS on 2 threads per
worker halved the pipeline's throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import ApiError
from app.core.metrics import Metrics
from app.core.pipeline import Analysis, BatchOutcome, Failure, run_batch
from facecore.threads import limit_threads

__all__ = ["Engine", "ProcessBackend", "ThreadBackend", "limit_threads"]

log = logging.getLogger("app.engine")

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: glibc malloc settings of the worker processes. By default glibc raises its mmap threshold
#: after the first large block is freed, so the images and arrays of later requests (MBs each)
#: come from the heap, which fragments and grows: measured here, a worker grew from 950 to
#: 1130 MB in 100 s under 8 clients; with a fixed threshold large blocks are mmapped and given
#: back on free, and it stays at ~980 MB.
MALLOC_VARIABLES = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


class WorkerLost(Exception):
    """The worker process died or was killed while it had the task."""


# -- backends ------------------------------------------------------------------------------------


class ThreadBackend:
    """``workers`` threads of this process; models load in a background thread (``preload``)."""

    kind = "thread"

    def __init__(self, analyzer: Any, workers: int, threads: int, preload: bool) -> None:
        self.analyzer = analyzer
        self.slots = workers
        self.threads = threads
        self.preload = preload
        self.loader: threading.Thread | None = None
        self.load_error: BaseException | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._loaded: asyncio.Event | None = None
        self._undo_threads: Any = None

    @property
    def ready(self) -> bool:
        return self.load_error is None and self.analyzer.ready

    @property
    def states(self) -> dict[str, int]:
        state = "failed" if self.load_error else ("ready" if self.analyzer.ready else "loading")
        return {state: self.slots}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # OpenMP's thread count (torch's, too) is per thread: each worker thread sets its own;
        # this sets the process-wide ones (OpenBLAS) and is undone at stop.
        self._undo_threads = limit_threads(self.threads)
        self._pool = ThreadPoolExecutor(
            self.slots,
            thread_name_prefix="facecore-worker",
            initializer=limit_threads,
            initargs=(self.threads,),
        )
        self._loaded = asyncio.Event()
        if self.preload and not self.analyzer.ready:

            def load() -> None:
                try:
                    self.analyzer.load()
                    log.info("models loaded; ready")
                except Exception as e:  # reported by /readyz and every request as a 503
                    log.exception("model loading failed")
                    self.load_error = e
                finally:
                    loop.call_soon_threadsafe(self._loaded.set)

            self.loader = threading.Thread(target=load, name="facecore-model-load", daemon=True)
            self.loader.start()
        else:
            self._loaded.set()  # loaded, or loaded lazily by the first request

    async def wait_ready(self, slot: int) -> None:
        assert self._loaded is not None
        await self._loaded.wait()

    async def run(self, slot: int, analyzer: Any, payload: tuple) -> BatchOutcome:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, run_batch, analyzer, *payload)

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._undo_threads is not None:
            self._undo_threads()


def _worker_main(conn: Any, config: Any, threads: int, preload: bool, logs: tuple) -> None:
    """A worker process: build the analyzer, say ready, then run tasks until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server drains and stops its workers
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_threads(threads)
    from app.core.logs import configure_logging
    from facecore.analyzer import FaceAnalyzer

    configure_logging(*logs)
    wlog = logging.getLogger("app.worker")
    try:
        analyzer = FaceAnalyzer(config)
        if preload:
            analyzer.load()
    except Exception as e:
        wlog.exception("worker %d: model loading failed", os.getpid())
        conn.send(("failed", str(e)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            payload = conn.recv()
        except (EOFError, OSError):
            return
        if payload is None:
            return
        try:
            outcome = run_batch(analyzer, *payload)
        except Exception:  # run_batch keeps errors per image; this is a bug in it
            wlog.exception("worker task failed")
            n = len(payload[0])
            outcome = BatchOutcome([Failure(500, "internal_error", "internal error")] * n)
        conn.send(outcome)


class _Worker:
    """One worker process and its pipe; used by one dispatcher at a time (calls block)."""

    def __init__(self, index: int, args: tuple) -> None:
        self.index = index
        self.args = args
        self.proc: Any = None
        self.conn: Any = None
        self.state = "loading"
        self.error: str | None = None

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_worker_main,
            args=(child, *self.args),
            name=f"facecore-worker-{self.index}",
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.conn = parent
        self.state = "loading"

    def wait_ready(self) -> None:
        """Block until the worker has loaded its models (or failed to)."""
        if self.state != "loading":
            return
        try:
            kind, detail = self.conn.recv()
        except (EOFError, OSError):
            kind, detail = "failed", "worker process exited while loading models"
        if kind == "ready":
            self.state = "ready"
            log.info("worker %d (pid %s) ready", self.index, detail)
        else:
            self.state, self.error = "failed", detail

    def call(self, payload: tuple, timeout: float) -> BatchOutcome:
        try:
            self.conn.send(payload)
            if not self.conn.poll(timeout):
                self.restart(f"no answer within {timeout:.0f} s")
                raise WorkerLost(f"worker did not answer within {timeout:.0f} s")
            return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as e:
            self.restart(f"pipe closed ({type(e).__name__})")
            raise WorkerLost("worker process died") from None

    def restart(self, why: str) -> None:
        log.error("worker %d (pid %s) lost: %s; restarting it", self.index, self.proc.pid, why)
        self.kill()
        self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()

    def stop(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(timeout)
        self.kill()


class ProcessBackend:
    """``workers`` processes, each with its own analyzer built from ``config``."""

    kind = "process"

    def __init__(
        self,
        config: Any,
        workers: int,
        threads: int,
        preload: bool,
        hard_timeout: float,
        logs: tuple = ("json", "INFO"),
    ) -> None:
        self.slots = workers
        self.threads = threads
        self.hard_timeout = hard_timeout
        self.loader = None
        self._workers = [_Worker(i, (config, threads, preload, logs)) for i in range(workers)]
        self._io = ThreadPoolExecutor(workers, thread_name_prefix="facecore-worker-io")

    @property
    def ready(self) -> bool:
        return all(w.state == "ready" for w in self._workers)

    @property
    def load_error(self) -> str | None:
        errors = [w.error for w in self._workers if w.state == "failed"]
        return errors[0] if errors else None

    @property
    def states(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self._workers:
            out[w.state] = out.get(w.state, 0) + 1
        return out

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.proc is not None]

    async def start(self) -> None:
        # The children inherit these before numpy/torch load there (BLAS reads them at load,
        # glibc at start).
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, str(self.threads))
        for name, value in MALLOC_VARIABLES.items():
            os.environ.setdefault(name, value)
        for w in self._workers:
            w.start()

    async def wait_ready(self, slot: int) -> None:
        await asyncio.get_running_loop().run_in_executor(self._io, self._workers[slot].wait_ready)

    async def run(self, slot: int, analyzer: Any, payload: tuple) -> BatchOutcome:
        w = self._workers[slot]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, w.call, payload, self.hard_timeout)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(None, w.stop) for w in self._workers), return_exceptions=True
        )
        self._io.shutdown(wait=False, cancel_futures=True)


# -- the queue -----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    data: bytes
    analyzer: Any
    stages: tuple[str, ...] | None
    options: dict[str, dict[str, Any]]
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
        retry_after_s: int = 1,
        metrics: Metrics | None = None,
    ) -> None:
        self.backend = backend
        self.queue_size = queue_size
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
        analyzer: Any,
        images: Sequence[bytes],
        stages: Sequence[str] | None,
        options: Mapping[str, Mapping[str, Any]] | None,
        request_id: str | None = None,
    ) -> list[Analysis | Failure]:
        """Results of ``images`` in order (each an :class:`Analysis` or a :class:`Failure`).

        Raises
        ------
        ApiError
            503 ``overloaded`` (with ``Retry-After``) when the queue cannot take the images,
            503 ``shutting_down`` once the server is stopping.
        """
        if self.closing:
            raise ApiError(
                503,
                "shutting_down",
                "the server is shutting down",
                {"Retry-After": str(self.retry_after_s)},
            )
        n = len(images)
        if self._pending and len(self._pending) + n > self.queue_size:
            self.metrics.rejected.labels("overloaded").inc()
            raise ApiError(
                503,
                "overloaded",
                f"the server is busy ({len(self._pending)} images waiting); try again shortly",
                {"Retry-After": str(self.retry_after_s)},
            )
        loop = asyncio.get_running_loop()
        stages_t = None if stages is None else tuple(stages)
        opts = {k: dict(v) for k, v in (options or {}).items()}
        key = (
            id(analyzer),
            stages_t,
            repr(sorted((k, sorted(v.items())) for k, v in opts.items())),
        )
        jobs = [
            _Job(d, analyzer, stages_t, opts, key, request_id, loop.create_future()) for d in images
        ]
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
            payload = (
                [j.data for j in batch],
                first.stages,
                first.options,
                [j.request_id for j in batch],
            )
            self.in_flight += len(batch)
            self.update_gauges()
            t0 = time.perf_counter()
            try:
                outcome = await self.backend.run(slot, first.analyzer, payload)
                results = outcome.results
                self.metrics.observe_stages(outcome.timings)
                for n in outcome.trunk_batches:
                    self.metrics.trunk_faces.observe(n)
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

    def _finish(self, batch: list[_Job], results: Sequence[Analysis | Failure]) -> None:
        for job, res in zip(batch, results, strict=True):
            outcome = "ok" if isinstance(res, Analysis) else res.code
            self.metrics.images.labels(outcome).inc()
            if not job.future.done():
                job.future.set_result(res)
