"""app.core.workers: the backends run a task with their own analyzer (a job carries none); a
worker process that dies is replaced, one that cannot build its analyzer is reported."""

import asyncio
import os
import signal

import pytest

from app.core.pipeline import Analysis
from app.core.tasks import Task
from app.core.workers import ProcessBackend, ThreadBackend, WorkerLost
from facecore.analyzer import AnalyzerConfig


def analyze_task(png: bytes, stages: tuple[str, ...] = ()) -> Task:
    return Task("analyze", [png], {"stages": stages, "options": {}}, [None])


def test_thread_workers_run_their_own_analyzer(fake_analyzer, png):
    async def run():
        backend = ThreadBackend(fake_analyzer, workers=1, threads=1, preload=False)
        await backend.start()
        await backend.wait_ready(0)
        try:
            return await backend.run(0, analyze_task(png, ("landmarks",)))
        finally:
            await backend.stop()

    (res,) = asyncio.run(run()).results
    assert isinstance(res, Analysis) and len(res.faces) == 2
    assert fake_analyzer.detected == [(64, 96, 3)]  # the backend's analyzer ran the task
    assert fake_analyzer.calls()["landmarks"] == 1


def test_a_dead_worker_process_is_replaced(png):
    """Killed, its task is a :class:`WorkerLost` (a 503 ``worker_lost``); a new process takes
    its place and runs the next task."""
    config = AnalyzerConfig(detector="hog", stages=())

    async def run():
        backend = ProcessBackend(config, workers=1, threads=1, preload=False, hard_timeout=60)
        await backend.start()
        try:
            await backend.wait_ready(0)
            assert backend.ready and backend.states == {"ready": 1}
            first = await backend.run(0, analyze_task(png))
            (pid,) = backend.pids
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(WorkerLost):
                await backend.run(0, analyze_task(png))
            await backend.wait_ready(0)
            again = await backend.run(0, analyze_task(png))
            return first, again, pid, backend.pids
        finally:
            await backend.stop()

    first, again, pid, pids = asyncio.run(run())
    assert first.results == again.results == [Analysis(width=96, height=64, faces=[])]
    assert len(pids) == 1 and pids[0] != pid


def test_a_worker_that_cannot_build_its_analyzer_is_reported():
    config = AnalyzerConfig(detector="hog", stages=("no_such_stage",))

    async def run():
        backend = ProcessBackend(config, workers=1, threads=1, preload=False, hard_timeout=60)
        await backend.start()
        try:
            await backend.wait_ready(0)
            return backend.ready, backend.states, backend.load_error
        finally:
            await backend.stop()

    ready, states, error = asyncio.run(run())
    assert not ready and states == {"failed": 1}
    assert "no_such_stage" in error


def test_a_ready_worker_is_not_waited_for():
    """The dispatcher asks before every task: once the worker has loaded (or failed), the answer
    comes at once, without the I/O threads (shut here: using them would raise)."""
    config = AnalyzerConfig(detector="hog", stages=())
    backend = ProcessBackend(config, workers=2, threads=1, preload=False, hard_timeout=60)
    backend._io.shutdown()
    backend._workers[0].state = "ready"
    backend._workers[1].state = "failed"
    asyncio.run(backend.wait_ready(0))
    asyncio.run(backend.wait_ready(1))
    backend._workers[0].state = "loading"  # still loading: it waits for the worker, in a thread
    with pytest.raises(RuntimeError, match="shutdown"):
        asyncio.run(backend.wait_ready(0))
