import threading

import pytest

from facecore.lazy import Lazy, lazy_exports


def test_lazy_builds_once_across_threads():
    calls = []
    gate = threading.Event()

    def build():
        gate.wait(2)
        calls.append(1)
        return object()

    box = Lazy(build)
    got = []
    threads = [threading.Thread(target=lambda: got.append(box.get())) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and box.loaded
    assert all(g is got[0] for g in got)


def test_lazy_retries_after_a_failure():
    attempts = []

    def build():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("file missing")
        return "ok"

    box = Lazy(build)
    with pytest.raises(OSError):
        box.get()
    assert not box.loaded
    assert box.get() == "ok" and len(attempts) == 2


def test_lazy_exports_import_on_first_use():
    getattr_, dir_ = lazy_exports("facecore", {"Box": ".types"}, eager=("x",))
    from facecore.types import Box

    assert getattr_("Box") is Box
    assert dir_() == ["Box", "x"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr_("nope")
