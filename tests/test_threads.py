"""facecore.threads: the per-call thread count (``auto`` from canned /proc/stat readings) and the
per-process limit."""

from __future__ import annotations

import math
import sys
import threading

import pytest
import torch

from facecore import threads
from facecore.threads import (
    AUTO,
    CpuMonitor,
    call_threads,
    check_threads,
    choose_threads,
    cpu_quota,
    parse_proc_stat,
    usable_cores,
)

#: /proc/stat of a 2-CPU machine (the first fields of a real one, trimmed).
STAT = """cpu  {u} 0 {s} 157608 1309 0 386 {st} 0 0
cpu0 {u0} 0 100 80000 600 0 200 10 0 0
cpu1 {u1} 0 200 77608 709 0 186 20 0 0
intr 123456 0 9 0 0
ctxt 99999
procs_running {running}
procs_blocked 0
"""


def stat(busy: int, running: int = 1, u0: int = 1000, u1: int = 2000) -> str:
    """A /proc/stat whose aggregate line has ``busy`` busy jiffies."""
    return STAT.format(u=busy - 300 - 386 - 30, s=300, st=30, u0=u0, u1=u1, running=running)


class Machine:
    """Canned readings: /proc/stat's busy jiffies and this process's CPU seconds, at a time."""

    def __init__(self) -> None:
        self.t, self.busy, self.own, self.running = 100.0, 500_000, 3.0, 1
        self.present = True

    def advance(self, seconds: float, own_cores: float, other_cores: float) -> None:
        """``seconds`` pass with this process on ``own_cores`` and the others on ``other_cores``."""
        self.t += seconds
        self.own += seconds * own_cores
        self.busy += round(100 * seconds * (own_cores + other_cores))

    def monitor(self) -> CpuMonitor:
        return CpuMonitor(
            read_stat=lambda: stat(self.busy, self.running) if self.present else None,
            clock=lambda: self.t,
            own_cpu=lambda: self.own,
            affinity=lambda: frozenset({0, 1}),
            ticks=100,
        )


def test_parse_proc_stat_busy_jiffies_and_runnable_tasks():
    r = parse_proc_stat(stat(383914, running=5))
    # user + nice + system + irq + softirq + steal; idle and iowait are free
    assert r == threads.StatReading(busy=383914, cpus=2, procs_running=5, cpus_total=2)
    assert parse_proc_stat(stat(383914), frozenset({0, 1})).busy == 383914  # all CPUs: aggregate
    only1 = parse_proc_stat(stat(383914, u1=7000), frozenset({1}))
    assert (only1.busy, only1.cpus, only1.cpus_total) == (7000 + 200 + 186 + 20, 1, 2)
    assert parse_proc_stat("cpu  1 2 3 4 5 6 7 8 0 0\n").procs_running == -1
    assert parse_proc_stat("intr 1 2 3\n") is None
    assert parse_proc_stat(stat(10), frozenset({7})) is None  # no line for the CPU


def test_cpu_quota_cgroup_v2_smallest_of_the_process_cgroup_and_its_ancestors(tmp_path):
    member = tmp_path / "cgroup"
    member.write_text("0::/a/b\n")
    assert cpu_quota(str(tmp_path), str(member)) is None  # no cgroup files at all
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(str(tmp_path), str(member)) is None
    (tmp_path / "a" / "b" / "cpu.max").write_text("250000 100000\n")
    assert cpu_quota(str(tmp_path), str(member)) == 2.5
    (tmp_path / "a" / "cpu.max").write_text("150000 100000\n")  # the parent's is smaller
    assert cpu_quota(str(tmp_path), str(member)) == 1.5
    member.write_text("0::/elsewhere\n")  # a container's path that is not mounted: the root's
    (tmp_path / "cpu.max").write_text("300000 100000\n")
    assert cpu_quota(str(tmp_path), str(member)) == 3.0


def test_cpu_quota_cgroup_v1(tmp_path):
    member = tmp_path / "cgroup"
    member.write_text("4:memory:/x\n2:cpu,cpuacct:/x\n0::/\n")
    folder = tmp_path / "cpu,cpuacct" / "x"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("-1\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(str(tmp_path), str(member)) is None
    (folder / "cpu.cfs_quota_us").write_text("300000\n")
    assert cpu_quota(str(tmp_path), str(member)) == 3.0


def test_usable_cores_affinity_capped_by_the_quota():
    four = frozenset({0, 1, 2, 3})
    assert usable_cores(four, quota=math.inf) == 4
    assert usable_cores(four, quota=8.0) == 4
    assert usable_cores(four, quota=2.5) == 2
    assert usable_cores(four, quota=0.5) == 1


def test_choose_threads():
    assert choose_threads(2, 1.96, 2) == 2  # idle: the thread's count
    assert choose_threads(2, 1.0, 2) == 1  # one core busy
    assert choose_threads(2, 1.8, 2) == 2  # within the slack
    assert choose_threads(2, 1.7, 2) == 1
    assert choose_threads(2, -3.0, 2) == 1  # never below 1
    assert choose_threads(1, 2.0, 2) == 1  # never above the thread's count...
    assert choose_threads(8, 8.0, 2) == 2  # ...nor the usable cores
    assert choose_threads(4, 4.0, 4, in_flight=2) == 2  # calls in flight share the cores
    assert choose_threads(2, None, 2) == 2  # unknown load: as it is


def test_monitor_idle_then_one_core_busy():
    m = Machine()
    mon = m.monitor()
    assert mon.free_cores() == 2.0  # first reading: the runnable tasks (this call only)
    for _ in range(10):  # back-to-back 30 ms calls on 2 threads, idle machine
        m.advance(0.03, own_cores=1.6, other_cores=0.03)
        free = mon.free_cores()
    assert free == pytest.approx(1.97, abs=0.05)
    assert choose_threads(2, free, 2) == 2
    for _ in range(20):  # another process spins one core
        m.advance(0.03, own_cores=1.0, other_cores=1.0)
        free = mon.free_cores()
    assert free == pytest.approx(1.0, abs=0.05)
    assert choose_threads(2, free, 2) == 1


def test_monitor_short_window_uses_runnable_tasks():
    m = Machine()
    mon = m.monitor()
    mon.free_cores()
    m.advance(0.05, own_cores=1.0, other_cores=0.0)
    m.running = 2  # this call and a spinning process; jiffies over 50 ms are noise
    assert mon.free_cores() == 1.0
    m.running = 3
    assert mon.free_cores(in_flight=2) == 1.0  # this process's other call is not "others"


def test_monitor_stale_window_uses_runnable_tasks():
    m = Machine()
    mon = m.monitor()
    mon.free_cores()
    m.advance(30.0, own_cores=0.0, other_cores=0.0)  # a pause: the average is stale
    m.running = 2
    assert mon.free_cores() == 1.0


def test_monitor_without_proc_stat_keeps_the_count():
    m = Machine()
    m.present = False
    free = m.monitor().free_cores()
    assert free is None and choose_threads(2, free, 2) == 2
    assert CpuMonitor(read_stat=lambda: "").free_cores() is None


def test_check_threads():
    assert check_threads("auto") == AUTO == check_threads(" Auto ")
    assert check_threads("3") == 3 == check_threads(3)
    for bad in (0, -1, "0", "many", True, 1.5, None):
        with pytest.raises(ValueError, match="threads must be"):
            check_threads(bad)


def test_call_threads_explicit_sets_and_restores_in_the_calling_thread_only():
    before = torch.get_num_threads()
    other: list[int] = []
    ready, inside, release = threading.Event(), threading.Event(), threading.Event()

    def watch() -> None:
        torch.get_num_threads()  # this thread's count is initialised before the call below
        ready.set()
        inside.wait()
        other.append(torch.get_num_threads())
        release.set()

    t = threading.Thread(target=watch)
    t.start()
    ready.wait(10)
    with call_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        inside.set()
        release.wait(10)
    t.join()
    assert other == [before] and torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"), call_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_call_threads_auto_from_the_monitor(monkeypatch):
    m = Machine()
    monkeypatch.setattr(threads, "_monitor", m.monitor())
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    m.running = 2  # a spinning process
    with call_threads(AUTO) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    m.present = False  # no /proc/stat: as it is
    with call_threads(AUTO) as n:
        assert n == before and torch.get_num_threads() == before


def test_call_threads_auto_does_not_import_torch(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")
    with call_threads(AUTO) as n:
        assert n is None
    assert "torch" not in sys.modules
