"""The queue in front of the workers: back-pressure (503 + Retry-After), the per-request time
limit (504), requests batched into one worker task (jobs of one kind and parameters), waiting
for the models, thread limits."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app


def wait_for(cond, timeout=10.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def gate(fake_analyzer, monkeypatch):
    """Detection blocks until ``gate.set()``."""
    event = threading.Event()
    detect = fake_analyzer.detect_loaded

    def blocked(rgb):
        assert event.wait(30)
        return detect(rgb)

    monkeypatch.setattr(fake_analyzer, "detect_loaded", blocked)
    yield event
    event.set()


def make_client(settings, fake_analyzer, **update):
    app = create_app(settings.model_copy(update=update), analyzer=fake_analyzer)
    return TestClient(app)


def post_in_thread(client, results, *args, **kwargs):
    def run():
        results.append(client.post(*args, **kwargs))

    t = threading.Thread(target=run)
    t.start()
    return t


def test_full_queue_is_503_with_retry_after(settings, fake_analyzer, gate, png, assert_error):
    with make_client(settings, fake_analyzer, workers=1, queue_size=2, retry_after_s=3) as c:
        engine = c.app.state.engine
        done: list = []
        threads = [post_in_thread(c, done, "/v1/faces", files={"file": png})]
        wait_for(lambda: engine.in_flight == 1)
        threads += [post_in_thread(c, done, "/v1/faces", files={"file": png}) for _ in range(2)]
        wait_for(lambda: engine.queued == 2)
        r = c.post("/v1/faces", files={"file": png})
        assert_error(r, 503, "overloaded")
        assert r.headers["retry-after"] == "3"
        metrics = c.get("/metrics").text
        assert "facecore_queue_depth 2.0" in metrics
        assert 'facecore_rejected_total{reason="overloaded"} 1.0' in metrics
        gate.set()
        for t in threads:
            t.join(10)
        assert [r.status_code for r in done] == [200, 200, 200]


def test_waiting_requests_share_one_worker_task(settings, fake_analyzer, gate, png):
    with make_client(settings, fake_analyzer, workers=1) as c:
        engine = c.app.state.engine
        done: list = []
        threads = [post_in_thread(c, done, "/v1/analyze", files={"file": png})]
        wait_for(lambda: engine.in_flight == 1)
        threads += [post_in_thread(c, done, "/v1/analyze", files={"file": png}) for _ in range(3)]
        wait_for(lambda: engine.queued == 3)
        gate.set()
        for t in threads:
            t.join(10)
        assert [r.status_code for r in done] == [200] * 4
        text = c.get("/metrics").text
        # Two worker tasks: the first image alone, then the three that waited, together.
        assert "facecore_batch_images_count 2.0" in text
        assert "facecore_batch_images_sum 4.0" in text


def test_time_limit_is_504_and_drops_what_waits(settings, fake_analyzer, gate, png, assert_error):
    with make_client(settings, fake_analyzer, workers=1, request_timeout_s=0.5) as c:
        engine = c.app.state.engine
        done: list = []
        first = post_in_thread(c, done, "/v1/faces", files={"file": png})
        wait_for(lambda: engine.in_flight == 1)
        t0 = time.monotonic()
        r = c.post("/v1/faces", files={"file": png})  # waits in the queue, then times out
        assert 0.4 < time.monotonic() - t0 < 3
        assert_error(r, 504, "timeout")
        first.join(5)
        assert_error(done[0], 504, "timeout")
        gate.set()
        wait_for(lambda: engine.in_flight == 0)
        time.sleep(0.1)
        assert len(fake_analyzer.detected) == 1  # the waiting image was dropped, not analysed
        assert engine.queued == 0
        assert c.post("/v1/faces", files={"file": png}).status_code == 200
        assert 'facecore_rejected_total{reason="timeout"} 2.0' in c.get("/metrics").text


def test_a_request_waits_for_the_models(settings, fake_analyzer, png, monkeypatch):
    """Documented: a request that arrives while the models load waits for them; /readyz is 503
    ``loading`` meanwhile."""
    loaded = threading.Event()
    load = fake_analyzer.load

    def slow_load():
        assert loaded.wait(30)
        return load()

    monkeypatch.setattr(fake_analyzer, "load", slow_load)
    app = create_app(settings.model_copy(update={"preload": True}), analyzer=fake_analyzer)
    with TestClient(app) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json() == {"status": "loading", "detail": None}
        done: list = []
        t = post_in_thread(c, done, "/v1/faces", files={"file": png})
        time.sleep(0.3)
        assert not done and fake_analyzer.detected == []
        loaded.set()
        t.join(10)
        assert done[0].status_code == 200, done[0].text
        assert c.get("/readyz").status_code == 200
        assert "facecore_models_loaded 1.0" in c.get("/metrics").text


def test_worker_threads_are_limited(settings, fake_analyzer, png, monkeypatch):
    """Inside a worker thread, torch and the OpenMP pools (per-thread settings) run on
    ``worker_threads`` threads. (OpenBLAS's count is process-wide, and other code in this test
    process, e.g. scikit-learn's own ``threadpool_limits`` blocks, may set it back; the worker
    processes of production get it from ``OPENBLAS_NUM_THREADS`` before BLAS loads.)"""
    import torch
    from threadpoolctl import threadpool_info

    seen, seen_libs = [], []
    detect = fake_analyzer.detect_loaded

    def record(rgb):
        info = [p for p in threadpool_info() if p["user_api"] == "openmp"]
        seen.append((torch.get_num_threads(), {p["num_threads"] for p in info}))
        seen_libs.append([(p["filepath"], p["num_threads"]) for p in info])
        return detect(rgb)

    monkeypatch.setattr(fake_analyzer, "detect_loaded", record)
    with make_client(settings, fake_analyzer, worker_threads=1) as c:
        assert c.post("/v1/faces", files={"file": png}).status_code == 200
    assert seen == [(1, {1})], seen_libs


def test_thread_pool_is_bounded_by_the_workers(settings, fake_analyzer):
    """Routes that call ``run_in_threadpool`` themselves get one thread per worker at most."""
    import anyio.to_thread
    from fastapi import APIRouter

    app = create_app(settings.model_copy(update={"workers": 3}), analyzer=fake_analyzer)
    router = APIRouter()

    @router.get("/v1/tokens")
    async def tokens():
        return {"total": anyio.to_thread.current_default_thread_limiter().total_tokens}

    app.include_router(router)
    with TestClient(app) as c:
        assert c.get("/v1/tokens").json() == {"total": 3}


class RecordingBackend:
    """One worker that records the tasks it gets; the first waits for ``release``."""

    slots = 1
    ready = True
    load_error = None
    states = {"ready": 1}

    def __init__(self):
        self.tasks = []
        self.release = None

    async def start(self):
        import asyncio

        self.release = asyncio.Event()

    async def wait_ready(self, slot):
        return None

    async def run(self, slot, task):
        from app.core.pipeline import BatchOutcome

        self.tasks.append(task)
        await self.release.wait()
        return BatchOutcome(results=[f"{task.kind}:{item}" for item in task.items])

    async def stop(self):
        return None


def test_jobs_share_a_task_only_with_their_kind_and_parameters():
    """The queue groups waiting jobs of the same kind and parameters; a task names its kind,
    items, parameters and requests, never an analyzer (the worker has its own)."""
    import asyncio
    import dataclasses

    from app.core.engine import Engine

    async def run():
        backend = RecordingBackend()
        engine = Engine(backend, queue_size=10, batch_max=4)
        await engine.start()
        s1 = {"stages": ("age",), "options": {}}
        first = asyncio.create_task(engine.submit("analyze", ["a1"], s1, "r1"))
        while not backend.tasks:
            await asyncio.sleep(0.01)
        rest = [
            asyncio.create_task(engine.submit("analyze", ["a2"], s1, "r2")),
            asyncio.create_task(engine.submit("beautify", ["b"], {"warp": 0.5}, "r3")),
            asyncio.create_task(
                engine.submit("analyze", ["a3"], {"options": {}, "stages": ("age",)})
            ),
            asyncio.create_task(engine.analyze(["a4"], ("quality",), None, "r5")),
        ]
        while engine.queued < 4:
            await asyncio.sleep(0.01)
        backend.release.set()
        answers = await asyncio.gather(first, *rest)
        await engine.stop()
        return backend.tasks, answers

    tasks, answers = asyncio.run(run())
    assert answers == [
        ["analyze:a1"],
        ["analyze:a2"],
        ["beautify:b"],
        ["analyze:a3"],
        ["analyze:a4"],
    ]
    assert [(t.kind, t.items, t.request_ids) for t in tasks] == [
        ("analyze", ["a1"], ["r1"]),
        ("analyze", ["a2", "a3"], ["r2", None]),
        ("beautify", ["b"], ["r3"]),
        ("analyze", ["a4"], ["r5"]),
    ]
    assert tasks[3].params == {"stages": ("quality",), "options": {}}
    assert [f.name for f in dataclasses.fields(tasks[0])] == [
        "kind",
        "items",
        "params",
        "request_ids",
    ]


def test_the_queue_holds_no_more_than_the_workers_clear_in_queue_wait_s():
    """With the workers' seconds per image known, an image is admitted only while the images
    waiting (it included) x seconds per image / workers stay within ``queue_wait_s``; before
    the first batch, or with ``queue_wait_s`` 0, only ``queue_size`` bounds the queue."""
    from app.core.config import Settings
    from app.core.engine import Engine

    assert Settings().queue_wait_s == 0.5
    engine = Engine(None, queue_size=32, batch_max=1, queue_wait_s=0.5)  # not started
    engine._slots = 2
    engine._pending.extend([object()] * 7)
    assert engine.image_s is None and engine.would_accept(25) and not engine.would_accept(26)
    engine.image_s = 0.125  # two workers clear 16 images a second: 8 in 0.5 s
    assert engine.would_accept(1) and not engine.would_accept(2)
    engine._pending.append(object())
    assert engine.full
    engine._pending.clear()  # an empty queue takes a request of any size
    assert engine.would_accept(20)
    engine._pending.append(object())
    engine.queue_wait_s = 0.0  # off: the size alone
    assert engine.would_accept(31) and not engine.would_accept(32)


def test_the_engine_learns_the_workers_seconds_per_image(monkeypatch):
    """The seconds per image are the first batch's, then an exponentially weighted mean
    (weight 0.2 on the newest batch), from the time each batch took its worker."""
    import asyncio

    from app.core import engine as engine_module
    from app.core.pipeline import BatchOutcome

    clock = [0.0]
    monkeypatch.setattr(engine_module.time, "perf_counter", lambda: clock[0])

    class TimedBackend(RecordingBackend):
        async def run(self, slot, task):
            clock[0] += {2: 0.4, 1: 0.7}[len(task.items)]  # seconds of this batch
            return BatchOutcome(results=list(task.items))

    async def run():
        engine = engine_module.Engine(TimedBackend(), queue_size=10, batch_max=2)
        await engine.start()
        learned = []
        await asyncio.gather(*(engine.submit("analyze", [x], {}) for x in "ab"))
        learned.append(engine.image_s)  # one batch of two images, 0.2 s each
        await engine.submit("analyze", ["c"], {})
        learned.append(engine.image_s)
        await engine.stop()
        return learned

    first, second = asyncio.run(run())
    assert first == pytest.approx(0.2)
    assert second == pytest.approx(0.2 + 0.2 * (0.7 - 0.2))
