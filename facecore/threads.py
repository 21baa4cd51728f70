"""Thread counts of the numeric libraries: limited per process, or chosen per call.

* :func:`limit_threads`: a process that runs next to others on the same cores (a batch worker,
  a service worker) sets torch, the BLAS/OpenMP pools (through threadpoolctl) and OpenCV to a
  few threads each, so that processes x threads never oversubscribes the machine.
* :func:`call_threads`: one library call (:meth:`facecore.analyzer.FaceAnalyzer.analyze`) runs
  with torch's intra-op thread count of the *calling thread* set for the call and restored
  afterwards. ``"auto"`` (:data:`AUTO`) chooses the count from how busy the machine is now.

Why ``auto``: torch runs its intra-op work on OpenMP, whose threads wait for each other at
every barrier. When another process keeps one of two cores busy, one of the two threads is
descheduled for a time slice at a time and the whole call waits: measured on 2 cores, the
default 2 threads took a median 47.0 ms and a p90 194.7 ms per 350x350 photo against 28.4 /
29.2 ms idle; 1 thread took 31.7 / 33.8 ms busy and 31.2 / 31.9 ms idle. So a call uses the
threads it has (torch's default: the cores) while the cores are free, and fewer while other
processes use them.

How ``auto`` decides (:class:`CpuMonitor`, :func:`choose_threads`), per call, from one read of
``/proc/stat`` and this process's CPU time (about 45 us in all on 2 CPUs here):

* the CPU time the *other* processes used: the busy jiffies of the CPUs this process may run on
  (its affinity) minus this process's own CPU time, over the window since the newest earlier
  sample at least :data:`MIN_WINDOW` s old (jiffies are 10 ms: a shorter window is noise);
* where there is no sample between :data:`MIN_WINDOW` and :data:`MAX_WINDOW` s old (the first
  calls, or the first after a pause), the number of runnable tasks now (``procs_running``)
  minus this process's calls in flight;
* the free cores, shared among this process's calls in flight, give the threads: at most the
  calling thread's current count and the usable cores (affinity, cgroup CPU quota), at least 1.
  :data:`SLACK` core of others' use is tolerated before a thread is dropped.

Without ``/proc/stat`` (not Linux) ``auto`` leaves the count as it is. ``auto`` never raises the
count above the calling thread's: a user's ``torch.set_num_threads(1)``, ``OMP_NUM_THREADS`` and
the service's and batch runner's worker settings stay the ceiling.

Safety with other threads: torch with OpenMP keeps the count per thread, so another thread's
count does not change. One exception: torch also keeps a process-wide default that
``torch.set_num_threads`` sets, and a thread that runs its *first* torch operation while a call
has its count lowered starts with that count (checked here with torch 2.14). OpenCV's and
OpenBLAS's thread counts are process-wide, so no call changes them (see the README).

This module implements no paper.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTO",
    "MAX_WINDOW",
    "MIN_WINDOW",
    "SLACK",
    "CpuMonitor",
    "CpuSample",
    "StatReading",
    "call_threads",
    "check_threads",
    "choose_threads",
    "cpu_quota",
    "limit_threads",
    "parse_proc_stat",
    "usable_cores",
]

#: The ``threads`` setting that chooses per call from the machine's load.
AUTO = "auto"
#: Seconds: the shortest window over which the others' CPU use is measured.
MIN_WINDOW = 0.2
#: Seconds: an older window is stale; the runnable-task count is used instead.
MAX_WINDOW = 2.0
#: Cores of the others' use tolerated before a thread is dropped.
SLACK = 0.25


def limit_threads(n: int) -> Any:
    """Limit torch, BLAS/OpenMP (threadpoolctl) and OpenCV to ``n`` threads in this process.

    Returns a callable that restores the previous settings.
    """
    from threadpoolctl import threadpool_limits

    # Load every library with a thread pool first (threadpoolctl limits the loaded ones only).
    for name in ("numpy", "scipy.linalg", "sklearn.utils", "torch", "cv2"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    limits = threadpool_limits(n)
    restore = [limits.restore_original_limits]
    try:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(n)
        restore.append(lambda: torch.set_num_threads(before))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        import cv2

        cv_before = cv2.getNumThreads()
        cv2.setNumThreads(n)
        restore.append(lambda: cv2.setNumThreads(cv_before))
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass

    def undo() -> None:
        for fn in reversed(restore):
            fn()

    return undo


def check_threads(value: Any) -> int | str:
    """A ``threads`` setting: ``"auto"`` or a positive int (a numeric string is accepted).

    Raises
    ------
    ValueError
        Anything else.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"threads must be 'auto' or a positive integer, got {value!r}")


# -- reading the machine -------------------------------------------------------------------------
@dataclass(frozen=True)
class StatReading:
    """What one ``/proc/stat`` gives: busy jiffies of the CPUs read, their number, and the
    runnable tasks of the whole machine (``procs_running``, -1 if absent) over ``cpus_total``
    CPUs."""

    busy: int
    cpus: int
    procs_running: int
    cpus_total: int


def parse_proc_stat(text: str, cpus: frozenset[int] | None = None) -> StatReading | None:
    """Busy jiffies of the CPUs ``cpus`` (None: all) from ``/proc/stat``'s text.

    Busy is user + nice + system + irq + softirq + steal (guest time is inside user and nice;
    idle and iowait are free). Returns None when the text has no CPU line.
    """
    total: list[int] | None = None
    per_cpu: dict[int, int] = {}
    running = -1
    for line in text.splitlines():
        if line.startswith("cpu"):
            name, *fields = line.split()
            values = [int(v) for v in fields[:8]] + [0] * (8 - len(fields[:8]))
            user, nice, system, _idle, _iowait, irq, softirq, steal = values
            busy = user + nice + system + irq + softirq + steal
            if name == "cpu":
                total = [busy]
            elif name[3:].isdigit():
                per_cpu[int(name[3:])] = busy
        elif line.startswith("procs_running"):
            running = int(line.split()[1])
    if total is None and not per_cpu:
        return None
    n_total = len(per_cpu) or os.cpu_count() or 1
    if cpus is None or (per_cpu and set(per_cpu) <= cpus):
        busy_all = total[0] if total is not None else sum(per_cpu.values())
        return StatReading(busy_all, n_total, running, n_total)
    mine = [per_cpu[c] for c in cpus if c in per_cpu]
    if not mine:
        return None
    return StatReading(sum(mine), len(mine), running, n_total)


def cpu_quota(root: str = "/sys/fs/cgroup", cgroups: str = "/proc/self/cgroup") -> float | None:
    """Cores this process's cgroups may use: the smallest CPU quota of its cgroup and their
    ancestors (``cpu.max`` of cgroup v2, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of v1), or
    None when there is none.

    Parameters
    ----------
    root : str
        Where the cgroup file systems are mounted.
    cgroups : str
        This process's cgroup membership (``/proc/self/cgroup``: ``id:controllers:path``).
    """

    def read(path: str) -> str | None:
        try:
            with open(path, encoding="ascii") as fh:
                return fh.read().strip()
        except OSError:
            return None

    def upward(base: str, rel: str) -> list[str]:
        """``base/rel``, its parents, up to ``base`` (in a container ``rel`` may not exist)."""
        parts = [p for p in rel.split("/") if p]
        return [os.path.join(base, *parts[:i]) for i in range(len(parts), -1, -1)]

    v2_rel, cpu_rel = "/", "/"
    for line in (read(cgroups) or "").splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            v2_rel = path or "/"
        elif "cpu" in controllers.split(","):
            cpu_rel = path or "/"
    found = []
    for folder in upward(root, v2_rel):
        quota, _, period = (read(os.path.join(folder, "cpu.max")) or "max").partition(" ")
        if quota != "max" and period:
            found.append(int(quota) / int(period))
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for folder in upward(os.path.join(root, controller), cpu_rel):
            quota = read(os.path.join(folder, "cpu.cfs_quota_us"))
            period = read(os.path.join(folder, "cpu.cfs_period_us"))
            if quota is not None and period is not None and int(quota) > 0:
                found.append(int(quota) / int(period))
    return min(found) if found else None


@functools.lru_cache(maxsize=1)
def _own_quota() -> float | None:
    try:
        return cpu_quota()
    except (ValueError, OSError):  # an unexpected format: no quota known
        return None


def _affinity() -> frozenset[int] | None:
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return None


def usable_cores(affinity: frozenset[int] | None = None, quota: float | None = None) -> int:
    """Cores this process may use: its CPU affinity (default: read now), capped by a cgroup
    quota in cores (default: this process's, read once; ``math.inf`` for none)."""
    if affinity is None:
        affinity = _affinity()
    cores = len(affinity) if affinity else (os.cpu_count() or 1)
    quota = _own_quota() if quota is None else quota
    if quota is not None and quota < cores:
        cores = math.floor(quota)
    return max(1, cores)


def _read_proc_stat() -> str | None:
    try:
        fd = os.open("/proc/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class CpuSample:
    """One reading: monotonic seconds, busy jiffies of the CPUs in view, this process's CPU
    seconds."""

    time: float
    busy: int
    own: float


class CpuMonitor:
    """The cores other processes leave free, from successive ``/proc/stat`` readings.

    Parameters
    ----------
    read_stat : callable, optional
        Returns ``/proc/stat``'s text, or None where it is missing (injected by the tests).
    clock, own_cpu : callable, optional
        Monotonic seconds; this process's CPU seconds (all its threads).
    affinity : callable, optional
        The CPUs this process may run on (None: all).
    ticks : int, optional
        Jiffies per second of ``/proc/stat`` (``SC_CLK_TCK``).
    min_window, max_window : float
        Seconds: the window over which the others' CPU time is averaged (default
        :data:`MIN_WINDOW`, :data:`MAX_WINDOW`); outside it, the runnable tasks are counted.
    """

    def __init__(
        self,
        read_stat: Callable[[], str | None] = _read_proc_stat,
        clock: Callable[[], float] = time.monotonic,
        own_cpu: Callable[[], float] = time.process_time,
        affinity: Callable[[], frozenset[int] | None] = _affinity,
        ticks: int | None = None,
        min_window: float = MIN_WINDOW,
        max_window: float = MAX_WINDOW,
    ) -> None:
        self.read_stat = read_stat
        self.clock = clock
        self.own_cpu = own_cpu
        self.affinity = affinity
        self.ticks = ticks or _clock_ticks()
        self.min_window, self.max_window = min_window, max_window
        self._samples: deque[CpuSample] = deque()
        self._lock = threading.Lock()

    def free_cores(self, in_flight: int = 1) -> float | None:
        """Cores not used by other processes now (None: unknown).

        ``in_flight`` is this process's calls running now, this one included (they count as
        runnable tasks of this process in the instantaneous estimate)."""
        text = self.read_stat()
        if text is None:
            return None
        reading = parse_proc_stat(text, self.affinity())
        if reading is None:
            return None
        now = CpuSample(self.clock(), reading.busy, self.own_cpu())
        with self._lock:
            samples = self._samples
            # Keep as the oldest sample the newest one at least min_window old.
            while len(samples) >= 2 and samples[1].time <= now.time - self.min_window:
                samples.popleft()
            ref = samples[0] if samples else None
            if not samples or now.time - samples[-1].time >= self.min_window / 4:
                samples.append(now)
        if ref is not None and self.min_window <= now.time - ref.time <= self.max_window:
            window = now.time - ref.time
            others = ((now.busy - ref.busy) / self.ticks - (now.own - ref.own)) / window
            return reading.cpus - max(0.0, others)
        if reading.procs_running < 0:
            return None
        others_now = max(0, reading.procs_running - in_flight)
        return float(reading.cpus_total - others_now)


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):  # not POSIX
        return 100


def choose_threads(current: int, free: float | None, usable: int, in_flight: int = 1) -> int:
    """Threads for one call.

    Parameters
    ----------
    current : int
        The calling thread's count now (the ceiling).
    free : float or None
        Cores other processes leave free (None: unknown, keep ``current``).
    usable : int
        Cores this process may use (:func:`usable_cores`).
    in_flight : int
        This process's calls running now, this one included: they share the free cores.
    """
    if free is None:
        return current
    share = math.floor((free + SLACK) / max(1, in_flight))
    return max(1, min(current, usable, share))


# -- one call ------------------------------------------------------------------------------------
_monitor = CpuMonitor()
_in_flight = 0
_in_flight_lock = threading.Lock()


@contextlib.contextmanager
def call_threads(setting: int | str) -> Iterator[int | None]:
    """Run the body with torch's intra-op threads of the calling thread set to ``setting``.

    ``setting`` is a positive int (torch is imported if it is not yet), or ``"auto"`` (chosen
    from the load, see the module's docstring). The count is restored when the body ends,
    however it ends, and only where it was changed. Yields the count the body runs with, or
    None for ``"auto"`` while torch is not imported yet (nothing is set: the body imports torch,
    if it needs it, with its defaults).
    """
    global _in_flight
    setting = check_threads(setting)
    torch: Any = sys.modules.get("torch") if setting == AUTO else importlib.import_module("torch")
    with _in_flight_lock:
        _in_flight += 1
        in_flight = _in_flight
    try:
        n: int | None = None
        current = 0
        if torch is not None:
            current = torch.get_num_threads()
            if isinstance(setting, int):
                n = setting
            else:
                free = _monitor.free_cores(in_flight)
                n = choose_threads(current, free, usable_cores(), in_flight)
        if n is None or n == current:
            yield n
            return
        torch.set_num_threads(n)
        try:
            yield n
        finally:
            torch.set_num_threads(current)
    finally:
        with _in_flight_lock:
            _in_flight -= 1
