"""Load tests of the HTTP service against a local server: scaling, overload and soak.

Each mode starts the service on a free loopback port (its own process and session, the settings
from the environment), waits for ``/readyz``, drives it with clients that post real photos to
``/v1/analyze`` (``--route``) and stops it. The clients are one asyncio loop in this process, each
with one keep-alive HTTP/1.1 connection and its multipart bodies built once, so that the load
generator takes little of the CPU it shares with the server. Latency is from the first byte
written to the last byte of the answer read.

**Scaling** (the default; ``make loadtest``): ``uvicorn app.main:app`` without access log;
warm-up with N clients (``--warmup``), one client alone for half of ``--solo`` seconds, N clients
for ``--duration`` seconds, one client again for the other half (one client's throughput is the
mean of both, so that on a shared machine both see about the same background load). It reports
throughput, latency percentiles (p50/p95/p99 of the 200s), errors (any status but 200, or a
connection error), the server's memory after warm-up and at the end of the N-client run and the
CPU the server used (cores busy, CPU ms per request). Each client loops over ``tests/fixtures``
and a sample of ``--scut`` SCUT-FBP5500 photos. ``--check``: exit 1 unless zero errors, memory
growth under 5% after warm-up, p95 under 1 s, N-client throughput at least 1.6x one client's.

    .venv/bin/python scripts/loadtest.py --clients 8 --duration 120 --out loadtest.json --check

**Overload** (``--overload``; ``make overload``): ``facecore serve`` with its defaults (access
log included). Each client posts ``--photos`` (20) SCUT-FBP5500 photos in turn. After a warm-up
(``--warmup``, not reported), two phases of ``--seconds`` (40) each:

1. *calm*: ``--calm-clients`` (8) well-behaved clients: after a 503 each waits its
   ``Retry-After``;
2. *storm*: ``--storm-clients`` (64) clients that ignore ``Retry-After`` and send the next
   request as soon as an answer arrives.

For each phase it reports the answers, their count by status, the successful requests a second
(200s over the phase's wall time), p50/p99 of all answers (200s and refusals together) and of
the 200s, the CPU of the server's front process (the event loop) and of its workers, this
process's CPU, and the server's resident memory and open file descriptors (the server process
and its descendants together) before and after. After the storm it polls ``/readyz`` (up to
30 s) and ``/healthz``. ``--check-overload``: exit 1 unless the storm's successful requests a
second are at least 0.85x the calm phase's, the storm's p99 of all answers is at most 1 s, no
answer in either phase has a status but 200 or 503 (a connection error counts as one), and
``/readyz`` answers 200 afterwards.

    .venv/bin/python scripts/loadtest.py --overload --seconds 40 --out overload.json \\
        --check-overload

**Soak** (``--soak``; ``make soak``): ``facecore serve`` with its defaults, a warm-up
(``--warmup``), then ``--soak-clients`` (8) well-behaved clients for ``--seconds`` (default
1800), sampling the server's resident memory and open file descriptors every
``--sample-every`` (10) seconds. It fails (exit 1) when an answer has a status but 200 or 503
(or a connection error), when ``/readyz`` does not answer 200 afterwards, when there are fewer
than 8 samples, or when the samples grow between the first and the last quarter of the run:
the median resident memory of the last quarter's samples is more than 5% (``--rss-tolerance``)
above the first quarter's median, or the median count of open descriptors of the last quarter
is more than 8 (``--fd-tolerance``) above the first quarter's (a leak of one descriptor per
thousand requests, about 95 over 30 minutes, shows; the clients' eight connections coming and
going do not). Medians, so that one sample taken mid-reconnection or mid-collection does not
decide.

    .venv/bin/python scripts/loadtest.py --soak --seconds 1800 --out soak.json

Every mode writes its report as JSON (``--out``) and prints a table; the server's log goes to a
file in the temporary folder (its path is in the report).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DATA = ROOT.parent / "shared" / "data"

#: Overload targets: the storm's goodput against the calm phase's, the storm's p99 of all answers.
GOODPUT_RATIO_MIN = 0.85
STORM_P99_MAX_S = 1.0
#: The statuses a loaded server may answer.
ALLOWED_STATUSES = frozenset({"200", "503"})
#: Soak tolerances between the first and last quarter of the samples (see the docstring).
RSS_TOLERANCE = 0.05
FD_TOLERANCE = 8
MIN_SOAK_SAMPLES = 8

BOUNDARY = "facecore-loadtest-7d1c"


# ----------------------------------------------------------------------------------------------
# Photos and requests
# ----------------------------------------------------------------------------------------------


def photos(n_scut: int, seed: int = 0, data: Path = DATA) -> list[tuple[str, bytes]]:
    """The test fixtures' photos and a sample of ``n_scut`` SCUT-FBP5500 photos (if present)."""
    paths = sorted(FIXTURES.glob("*.jpg")) + sorted((FIXTURES / "dlib_faces").glob("*.jpg"))
    scut = data / "scut-fbp5500" / "images"
    if scut.is_dir():
        found = sorted(scut.glob("*.jpg"))
        paths += random.Random(seed).sample(found, min(n_scut, len(found)))
    return [(p.name, p.read_bytes()) for p in paths]


def scut_photos(n: int, data: Path = DATA, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` SCUT-FBP5500 photos (a seeded sample, the same every run)."""
    folder = data / "scut-fbp5500" / "images"
    found = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if len(found) < n:
        raise SystemExit(f"{folder}: {len(found)} photos, {n} needed (see --data)")
    return [(p.name, p.read_bytes()) for p in random.Random(seed).sample(found, n)]


def encode_request(host: str, route: str, name: str, data: bytes) -> bytes:
    """One ``POST route`` with ``data`` as the multipart ``file`` part, as bytes on the wire."""
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        f"POST {route} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


# ----------------------------------------------------------------------------------------------
# Clients
# ----------------------------------------------------------------------------------------------


@dataclass
class Answers:
    """What the clients of one phase got: a status (or ``error:<kind>``) and a latency each."""

    statuses: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, status: str, latency: float) -> None:
        self.statuses.append(status)
        self.latencies.append(latency)

    def latencies_of(self, status: str | None = None) -> list[float]:
        """Latencies of the answers with ``status``; None: of every HTTP answer (a connection
        error is none)."""
        pairs = zip(self.statuses, self.latencies, strict=True)
        if status is None:
            return [t for s, t in pairs if not s.startswith("error:")]
        return [t for s, t in pairs if s == status]


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Read one HTTP/1.1 response; its status and (lower-cased) headers. The body is read and
    dropped (by ``Content-Length`` or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers


async def _client(
    host: str,
    port: int,
    bodies: Sequence[bytes],
    stop_at: float,
    honour_retry_after: bool,
    out: Answers,
    timeout: float,
) -> None:
    """One client: one request after another on one keep-alive connection until ``stop_at``;
    a new connection after a connection error or ``Connection: close``."""
    writer = None
    i = 0
    try:
        while time.monotonic() < stop_at:
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(body)
                status, headers = await asyncio.wait_for(_read_answer(reader), timeout)
            except (
                OSError,
                ValueError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ) as e:
                out.add(f"error:{type(e).__name__}", time.perf_counter() - t0)
                writer = _close(writer)
                await asyncio.sleep(0.05)
                continue
            except TimeoutError:
                out.add("error:timeout", time.perf_counter() - t0)
                writer = _close(writer)
                continue
            out.add(str(status), time.perf_counter() - t0)
            if headers.get("connection", "").lower() == "close":
                writer = _close(writer)
            if status == 503 and honour_retry_after:
                wait = float(headers.get("retry-after", "1") or 1)
                await asyncio.sleep(min(wait, max(0.0, stop_at - time.monotonic())))
    finally:
        _close(writer)


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()


async def drive(
    url: str,
    clients: int,
    seconds: float,
    images: Sequence[tuple[str, bytes]],
    *,
    honour_retry_after: bool = True,
    seed: int = 0,
    timeout: float = 60.0,
    every: float | None = None,
    tick: Callable[[], None] | None = None,
) -> Answers:
    """``clients`` clients posting ``images`` to ``url`` for ``seconds``, each in its own
    shuffled order; ``tick()`` is called every ``every`` seconds meanwhile (the soak's samples).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests_ = [encode_request(parts.netloc, parts.path, n, d) for n, d in images]
    out = Answers()
    t0 = time.monotonic()
    stop_at = t0 + seconds
    tasks = []
    for k in range(clients):
        order = list(requests_)
        random.Random(seed * 1000 + k).shuffle(order)
        tasks.append(
            asyncio.create_task(
                _client(host, port, order, stop_at, honour_retry_after, out, timeout)
            )
        )
    if tick is not None and every:
        next_at = t0
        while time.monotonic() < stop_at:
            tick()
            next_at += every
            await asyncio.sleep(max(0.0, min(next_at, stop_at) - time.monotonic()))
    await asyncio.gather(*tasks)
    out.seconds = time.monotonic() - t0
    return out


# ----------------------------------------------------------------------------------------------
# The server's processes
# ----------------------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and every descendant, KiB."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid`` and every descendant."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{p}/fd"))
    return total


def cpu_s(pid: int, children: bool = True) -> float:
    """CPU seconds (user + system) used so far by ``pid`` (and every descendant)."""
    ticks = 0
    for p in _tree(pid) if children else [pid]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def snapshot(pid: int) -> dict:
    """The server's resident memory (MiB), open descriptors and process count now."""
    return {
        "rss_mib": round(rss_kib(pid) / 1024, 1),
        "fds": open_fds(pid),
        "processes": len(_tree(pid)),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``command`` with ``{port}`` filled in, run in its own session (as a deployed server is:
    with the kernel's autogroup scheduling it then does not share one CPU group with the
    clients that load it), output to a log file."""

    def __init__(self, command: Sequence[str], env: dict[str, str], name: str = "server") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [part.format(port=self.port) for part in command]
        self.log_path = Path(tempfile.gettempdir()) / f"facecore-loadtest-{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 300.0) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise SystemExit("server not ready in time")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


#: ``facecore serve`` with its defaults (the overload and soak modes): the console script
#: installed next to this interpreter.
SERVE = [
    str(Path(sys.executable).with_name("facecore")),
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
]
#: uvicorn without access log (the scaling mode).
UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "app.main:app",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--no-access-log",
    "--log-level",
    "warning",
]


def after_ready(base_url: str, timeout: float = 30.0) -> dict:
    """Whether ``/readyz`` answers 200 within ``timeout`` seconds, and ``/healthz``'s status."""
    t0 = time.monotonic()
    ready, status = False, None
    while time.monotonic() - t0 < timeout:
        try:
            status = requests.get(base_url + "/readyz", timeout=5).status_code
            if status == 200:
                ready = True
                break
        except requests.RequestException as e:
            status = type(e).__name__
        time.sleep(0.5)
    try:
        health: int | str = requests.get(base_url + "/healthz", timeout=5).status_code
    except requests.RequestException as e:
        health = type(e).__name__
    return {
        "ready": ready,
        "readyz_status": status,
        "seconds_to_ready": round(time.monotonic() - t0, 2) if ready else None,
        "healthz_status": health,
    }


# ----------------------------------------------------------------------------------------------
# Reports and rules
# ----------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-quantile of ``values`` (0 < q <= 1): the smallest value with at
    least ``q`` of the values at or below it; None if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(1e3 * value, 1)


def summarize(answers: Answers) -> dict:
    """One phase's figures: answers (HTTP responses; connection errors are counted apart),
    counts by status, successful requests a second (200s over the wall time), p50/p99 of all
    answers and of the 200s, in ms."""
    counts = Counter(answers.statuses)
    answered, ok = answers.latencies_of(), answers.latencies_of("200")
    seconds = answers.seconds
    return {
        "seconds": round(seconds, 2),
        "answers": len(answered),
        "status_counts": dict(sorted(counts.items())),
        "ok": counts.get("200", 0),
        "ok_per_s": round(counts.get("200", 0) / seconds, 2) if seconds > 0 else 0.0,
        "answers_per_s": round(len(answered) / seconds, 2) if seconds > 0 else 0.0,
        "p50_ms": _ms(percentile(answered, 0.50)),
        "p99_ms": _ms(percentile(answered, 0.99)),
        "ok_p50_ms": _ms(percentile(ok, 0.50)),
        "ok_p99_ms": _ms(percentile(ok, 0.99)),
    }


def overload_failures(report: dict) -> list[str]:
    """The overload targets that ``report`` (``calm``, ``storm``, ``after``) misses."""
    calm, storm = report["calm"], report["storm"]
    missed = []
    for name, phase_ in (("calm", calm), ("storm", storm)):
        bad = {s: n for s, n in phase_["status_counts"].items() if s not in ALLOWED_STATUSES}
        if bad:
            missed.append(f"{name}: statuses other than 200 and 503: {bad}")
    if calm["ok_per_s"] <= 0:
        missed.append("calm: no successful request")
    elif storm["ok_per_s"] < GOODPUT_RATIO_MIN * calm["ok_per_s"]:
        missed.append(
            f"storm goodput {storm['ok_per_s']}/s < {GOODPUT_RATIO_MIN} x calm {calm['ok_per_s']}/s"
        )
    if storm["p99_ms"] is None or storm["p99_ms"] > 1e3 * STORM_P99_MAX_S:
        missed.append(f"storm p99 of all answers {storm['p99_ms']} ms > {STORM_P99_MAX_S} s")
    if not report["after"]["ready"]:
        missed.append(f"/readyz not 200 afterwards ({report['after']['readyz_status']})")
    return missed


def growth(samples: Sequence[dict], key: str) -> dict:
    """Median of ``key`` over the first and the last quarter of ``samples`` (at least one
    sample each)."""
    q = max(1, len(samples) // 4)
    first = statistics.median(s[key] for s in samples[:q])
    last = statistics.median(s[key] for s in samples[-q:])
    return {"first_quarter": first, "last_quarter": last, "change": round(last - first, 2)}


def soak_failures(
    report: dict, rss_tolerance: float = RSS_TOLERANCE, fd_tolerance: int = FD_TOLERANCE
) -> list[str]:
    """What the soak ``report`` (``phase``, ``samples``, ``after``) fails on (see the module
    docstring for the rule)."""
    missed = []
    bad = {s: n for s, n in report["phase"]["status_counts"].items() if s not in ALLOWED_STATUSES}
    if bad:
        missed.append(f"statuses other than 200 and 503: {bad}")
    samples = report["samples"]
    if len(samples) < MIN_SOAK_SAMPLES:
        missed.append(f"{len(samples)} samples, at least {MIN_SOAK_SAMPLES} needed")
    else:
        rss, fds = growth(samples, "rss_mib"), growth(samples, "fds")
        if rss["last_quarter"] > (1 + rss_tolerance) * rss["first_quarter"]:
            missed.append(
                f"memory grew {rss['first_quarter']} -> {rss['last_quarter']} MiB "
                f"(> {rss_tolerance:.0%})"
            )
        if fds["last_quarter"] > fds["first_quarter"] + fd_tolerance:
            missed.append(
                f"open descriptors grew {fds['first_quarter']} -> {fds['last_quarter']} "
                f"(> +{fd_tolerance})"
            )
    if not report["after"]["ready"]:
        missed.append(f"/readyz not 200 afterwards ({report['after']['readyz_status']})")
    return missed


def table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """``rows`` as a plain-text table of ``columns`` (one header line, right-aligned)."""
    cells = [[str(c) for c in columns]] + [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells
    )


def _cell(value: object) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return "-" if value is None else str(value)


# ----------------------------------------------------------------------------------------------
# Modes
# ----------------------------------------------------------------------------------------------


def measure_phase(
    server_pid: int,
    url: str,
    clients: int,
    seconds: float,
    images: Sequence[tuple[str, bytes]],
    *,
    honour_retry_after: bool,
    seed: int,
) -> dict:
    """One phase: :func:`summarize` plus the server's memory and descriptors before and after,
    and the CPU of its front process, of its workers and of this process meanwhile."""
    before = snapshot(server_pid)
    front0, all0, mine0 = cpu_s(server_pid, False), cpu_s(server_pid), time.process_time()
    answers = asyncio.run(
        drive(url, clients, seconds, images, honour_retry_after=honour_retry_after, seed=seed)
    )
    front = cpu_s(server_pid, False) - front0
    workers = cpu_s(server_pid) - all0 - front
    mine = time.process_time() - mine0
    out = {"clients": clients, "honour_retry_after": honour_retry_after, **summarize(answers)}
    wall = max(answers.seconds, 1e-9)
    out.update(
        front_cores=round(front / wall, 2),
        workers_cores=round(workers / wall, 2),
        client_cores=round(mine / wall, 2),
        front_cpu_ms_per_answer=round(1e3 * front / max(out["answers"], 1), 3),
        before=before,
        after=snapshot(server_pid),
    )
    return out


def overload(
    server_pid: int,
    base_url: str,
    images: Sequence[tuple[str, bytes]],
    *,
    seconds: float,
    warmup: float,
    calm_clients: int = 8,
    storm_clients: int = 64,
    route: str = "/v1/analyze",
) -> dict:
    """Warm-up, the calm phase, the storm, then ``/readyz``; the report of ``--overload``."""
    url = base_url + route
    if warmup > 0:
        asyncio.run(drive(url, calm_clients, warmup, images, seed=1))
    calm = measure_phase(
        server_pid, url, calm_clients, seconds, images, honour_retry_after=True, seed=2
    )
    storm = measure_phase(
        server_pid, url, storm_clients, seconds, images, honour_retry_after=False, seed=3
    )
    report = {"route": route, "photos": len(images), "calm": calm, "storm": storm}
    report["after"] = after_ready(base_url)
    report["after"]["server"] = snapshot(server_pid)
    report["goodput_ratio"] = round(storm["ok_per_s"] / calm["ok_per_s"], 3) if calm["ok"] else 0
    report["missed"] = overload_failures(report)
    return report


def soak(
    server_pid: int,
    base_url: str,
    images: Sequence[tuple[str, bytes]],
    *,
    seconds: float,
    warmup: float,
    clients: int = 8,
    every: float = 10.0,
    route: str = "/v1/analyze",
    rss_tolerance: float = RSS_TOLERANCE,
    fd_tolerance: int = FD_TOLERANCE,
) -> dict:
    """Warm-up, ``clients`` well-behaved clients for ``seconds`` with a sample of the server's
    memory and descriptors every ``every`` seconds, then ``/readyz``; the report of ``--soak``.
    """
    url = base_url + route
    if warmup > 0:
        asyncio.run(drive(url, clients, warmup, images, seed=1))
    samples: list[dict] = []
    t0 = time.monotonic()

    def sample() -> None:
        samples.append({"t_s": round(time.monotonic() - t0, 1), **snapshot(server_pid)})

    answers = asyncio.run(drive(url, clients, seconds, images, seed=2, every=every, tick=sample))
    sample()
    report = {
        "route": route,
        "photos": len(images),
        "clients": clients,
        "phase": summarize(answers),
        "samples": samples,
        "rss_mib": growth(samples, "rss_mib"),
        "fds": growth(samples, "fds"),
        "rss_tolerance": rss_tolerance,
        "fd_tolerance": fd_tolerance,
        "after": after_ready(base_url),
    }
    report["missed"] = soak_failures(report, rss_tolerance, fd_tolerance)
    return report


def scaling(server: Server, args: argparse.Namespace) -> dict:
    """The scaling run (the default mode); its report."""
    images = photos(args.scut, data=args.data)
    url = server.url + args.route

    def one(n: int, seconds: float, seed: int) -> dict:
        c0 = cpu_s(server.pid)
        answers = asyncio.run(drive(url, n, seconds, images, seed=seed))
        used = cpu_s(server.pid) - c0
        s = summarize(answers)
        ok = answers.latencies_of("200")
        errors = {k: v for k, v in s["status_counts"].items() if k != "200"}
        return {
            "clients": n,
            "seconds": s["seconds"],
            "ok": s["ok"],
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "throughput_rps": s["ok_per_s"],
            "p50_s": _s(percentile(ok, 0.50)),
            "p95_s": _s(percentile(ok, 0.95)),
            "p99_s": _s(percentile(ok, 0.99)),
            "max_s": _s(max(ok) if ok else None),
            "server_cores_used": round(used / max(answers.seconds, 1e-9), 2),
            "server_cpu_ms_per_request": round(1e3 * used / max(s["ok"], 1), 1),
        }

    print(f"{len(images)} photos; {args.route}", flush=True)
    asyncio.run(drive(url, args.clients, args.warmup, images, seed=1))
    rss_warm = rss_kib(server.pid)
    # One client before and after the N-client run (the machine may be shared: both see about
    # the same background load).
    solo_a = one(1, args.solo / 2, 2)
    many = one(args.clients, args.duration, 3)
    rss_end = rss_kib(server.pid)
    solo_b = one(1, args.solo / 2, 4)
    metrics = requests.get(server.url + "/metrics", timeout=10).text
    print(table([solo_a, many, solo_b], SCALING_COLUMNS))
    growth_ = (rss_end - rss_warm) / rss_warm
    solo = {
        "clients": 1,
        "ok": solo_a["ok"] + solo_b["ok"],
        "errors": solo_a["errors"] + solo_b["errors"],
        "throughput_rps": round(
            (solo_a["ok"] + solo_b["ok"]) / (solo_a["seconds"] + solo_b["seconds"]), 2
        ),
        "before": solo_a,
        "after": solo_b,
    }
    report = {
        "route": args.route,
        "photos": len(images),
        "solo": solo,
        "concurrent": many,
        "speedup": round(many["throughput_rps"] / max(solo["throughput_rps"], 1e-9), 2),
        "rss_mib_after_warmup": round(rss_warm / 1024, 1),
        "rss_mib_end": round(rss_end / 1024, 1),
        "rss_growth": round(growth_, 4),
        "batch_images": [
            ln
            for ln in metrics.splitlines()
            if ln.startswith("facecore_batch_images_") and ("_sum" in ln or "_count" in ln)
        ],
    }
    missed = []
    if many["errors"] or solo["errors"]:
        missed.append("errors")
    if growth_ >= 0.05:
        missed.append("memory growth >= 5%")
    if many["p95_s"] is None or many["p95_s"] >= 1.0:
        missed.append("p95 >= 1 s")
    if report["speedup"] < 1.6:
        missed.append("throughput < 1.6x one client")
    report["missed"] = missed
    return report


def _s(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


SCALING_COLUMNS = ("clients", "seconds", "ok", "errors", "throughput_rps", "p50_s", "p95_s")
SCALING_COLUMNS += ("p99_s", "server_cores_used", "server_cpu_ms_per_request")
PHASE_COLUMNS = ("phase", "clients", "seconds", "answers", "status_counts", "ok_per_s", "p50_ms")
PHASE_COLUMNS += ("p99_ms", "ok_p99_ms", "front_cores", "workers_cores", "client_cores")
PHASE_COLUMNS += ("rss_mib", "fds")


def phase_rows(report: dict) -> list[dict]:
    """The overload report's phases as table rows (memory and descriptors before -> after)."""
    rows = []
    for name in ("calm", "storm"):
        p = report[name]
        rows.append(
            {
                **p,
                "phase": name,
                "rss_mib": f"{p['before']['rss_mib']}->{p['after']['rss_mib']}",
                "fds": f"{p['before']['fds']}->{p['after']['fds']}",
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--overload", action="store_true", help="calm then storm (see the doc)")
    mode.add_argument("--soak", action="store_true", help="8 clients for a long time")
    ap.add_argument("--route", default="/v1/analyze")
    ap.add_argument("--data", type=Path, default=DATA, help="folder with scut-fbp5500/")
    ap.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    ap.add_argument("--warmup", type=float, default=None, help="seconds (15 scaling, 5 others)")
    scale = ap.add_argument_group("scaling")
    scale.add_argument("--clients", type=int, default=8)
    scale.add_argument("--duration", type=float, default=120.0, help="seconds with N clients")
    scale.add_argument(
        "--solo", type=float, default=40.0, help="seconds with one client (half before, half after)"
    )
    scale.add_argument("--scut", type=int, default=200, help="SCUT-FBP5500 photos to use")
    scale.add_argument("--workers", type=int, default=None, help="FACECORE_WORKERS for the server")
    scale.add_argument("--batch-max", type=int, default=None, help="FACECORE_BATCH_MAX")
    scale.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    over = ap.add_argument_group("overload and soak")
    over.add_argument("--seconds", type=float, default=None, help="per phase (40; soak 1800)")
    over.add_argument("--photos", type=int, default=20, help="SCUT-FBP5500 photos to post")
    over.add_argument("--calm-clients", type=int, default=8)
    over.add_argument("--storm-clients", type=int, default=64)
    over.add_argument("--soak-clients", type=int, default=8)
    over.add_argument("--sample-every", type=float, default=10.0, help="soak: seconds")
    over.add_argument("--rss-tolerance", type=float, default=RSS_TOLERANCE)
    over.add_argument("--fd-tolerance", type=int, default=FD_TOLERANCE)
    over.add_argument(
        "--check-overload", action="store_true", help="exit 1 if an overload target is missed"
    )
    args = ap.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else (5.0 if args.overload or args.soak else 15)
    args.warmup = warmup

    env = dict(os.environ)
    if args.overload or args.soak:
        command, name = SERVE, "overload" if args.overload else "soak"
        images = scut_photos(args.photos, args.data)
    else:
        command, name = UVICORN, "scaling"
        env["FACECORE_LOG_LEVEL"] = "WARNING"
        if args.workers is not None:
            env["FACECORE_WORKERS"] = str(args.workers)
        if args.batch_max is not None:
            env["FACECORE_BATCH_MAX"] = str(args.batch_max)
    server = Server(command, env, name)
    try:
        ready_s = server.wait_ready()
        print(f"server ready in {ready_s:.1f} s (log: {server.log_path})", flush=True)
        if args.overload:
            report = overload(
                server.pid,
                server.url,
                images,
                seconds=args.seconds or 40.0,
                warmup=warmup,
                calm_clients=args.calm_clients,
                storm_clients=args.storm_clients,
                route=args.route,
            )
            print(table(phase_rows(report), PHASE_COLUMNS))
            print(f"goodput ratio storm/calm: {report['goodput_ratio']}; after: {report['after']}")
        elif args.soak:
            report = soak(
                server.pid,
                server.url,
                images,
                seconds=args.seconds or 1800.0,
                warmup=warmup,
                clients=args.soak_clients,
                every=args.sample_every,
                route=args.route,
                rss_tolerance=args.rss_tolerance,
                fd_tolerance=args.fd_tolerance,
            )
            print(table(report["samples"], ("t_s", "rss_mib", "fds", "processes")))
            print(table([report["phase"]], ("seconds", "answers", "status_counts", "ok_per_s")))
            print(f"rss {report['rss_mib']}; fds {report['fds']}; after: {report['after']}")
        else:
            report = scaling(server, args)
    finally:
        server.stop()
    report = {
        "mode": name,
        "load_average": os.getloadavg(),
        # The service's settings from the environment (never a key's value).
        "settings": {
            k: ("<set>" if "KEY" in k else v) for k, v in env.items() if k.startswith("FACECORE_")
        },
        "server_log": str(server.log_path),
        **report,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if report["missed"]:
        print("targets missed:", "; ".join(report["missed"]))
    else:
        print("all targets met")
    check = args.check_overload if args.overload else (args.soak or args.check)
    return 1 if (check and report["missed"]) else 0


if __name__ == "__main__":
    sys.exit(main())
