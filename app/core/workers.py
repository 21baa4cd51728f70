"""The workers behind the queue: threads of this process, or worker processes it supervises.

:class:`app.core.engine.Engine` hands each batch of jobs to a worker as one
:class:`~app.core.tasks.Task`; a backend runs it with the worker's own analyzer
(:func:`app.core.tasks.run_task`). The job carries no analyzer: the worker has its own. Two
backends (setting ``worker_mode``):

* :class:`ProcessBackend` (``process``, the default): one process per worker (``multiprocessing``
  spawn), each with its own :class:`~facecore.analyzer.FaceAnalyzer` built from the settings and
  its own models. dlib's HOG detector and much of the feature code hold Python's GIL, so threads
  of one process cannot use two cores (measured here: 2 threads gave 1.0-1.15x one thread;
  2 processes ~2x on an idle machine). A worker that dies is restarted; one that runs far past
  the time limit is killed and restarted; either way its images get a 503 ``worker_lost``.
  Workers ignore SIGINT/SIGTERM (the server drains them) and exit when the server closes their
  pipe.
* :class:`ThreadBackend` (``thread``): threads of this process over one analyzer (the app's, or
  the one given to :func:`app.main.create_app`, e.g. a test's fake; a given analyzer forces this
  mode).

Every worker limits torch, BLAS, OpenMP and OpenCV to ``worker_threads`` threads (default 1):
``workers x worker_threads`` should not exceed the cores. Measured here, torch on 2 threads while
the other core is busy made a 25 ms trunk call take up to 800 ms, and OpenBLAS on 2 threads per
worker halved the pipeline's throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.core.pipeline import BatchOutcome, Failure
from app.core.tasks import Task, run_task
from facecore.threads import limit_threads

__all__ = [
    "MALLOC_VARIABLES",
    "THREAD_VARIABLES",
    "ProcessBackend",
    "ThreadBackend",
    "WorkerLost",
]

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

    async def run(self, slot: int, task: Task) -> BatchOutcome:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, run_task, self.analyzer, task)

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
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            outcome = run_task(analyzer, task)
        except Exception:  # a task keeps errors per item; this is a bug in it
            wlog.exception("worker task failed")
            n = len(task.items)
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

    def call(self, task: Task, timeout: float) -> BatchOutcome:
        try:
            self.conn.send(task)
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
        """Return once worker ``slot`` has loaded its models (or failed to): at once when it
        has, without a trip through the I/O threads (the dispatcher asks before every task)."""
        worker = self._workers[slot]
        if worker.state != "loading":
            return
        await asyncio.get_running_loop().run_in_executor(self._io, worker.wait_ready)

    async def run(self, slot: int, task: Task) -> BatchOutcome:
        w = self._workers[slot]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, w.call, task, self.hard_timeout)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(None, w.stop) for w in self._workers), return_exceptions=True
        )
        self._io.shutdown(wait=False, cancel_futures=True)
