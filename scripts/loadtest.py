"""Load test of the HTTP service: N concurrent clients for T seconds against a local server.

Starts the service with uvicorn on a free loopback port (its own process, the settings from the
environment plus ``--workers``/``--batch-max``), waits for ``/readyz``, then:

1. warms up with N clients for ``--warmup`` seconds, and reads the server's memory (resident set
   of the server process and its worker processes);
2. runs one client alone for half of ``--solo`` seconds, N clients for ``--duration`` seconds,
   then one client again for the other half (one client's throughput is the mean of both, so
   that on a shared machine both see about the same background load);

and reports throughput, latency percentiles (p50/p95/p99), errors (any status but 200, or a
connection error), the server's memory after warm-up and at the end of the N-client run, and
the CPU the server used (cores busy, CPU ms per request: on a machine shared with other work,
this tells a server that cannot use both cores from one that is not given them). Each client
loops over real photos: ``tests/fixtures`` and, when present, a sample of
``../shared/data/scut-fbp5500/images``.

    .venv/bin/python scripts/loadtest.py --clients 8 --duration 120 --out loadtest.json

Exit status 1 if a target is missed (``--check``: zero errors, memory growth under 5% after
warm-up, p95 under 1 s, N-client throughput at least 1.6x one client's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SCUT = ROOT.parent / "shared" / "data" / "scut-fbp5500" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photos(n_scut: int, seed: int = 0) -> list[tuple[str, bytes]]:
    paths = sorted(FIXTURES.glob("*.jpg")) + sorted((FIXTURES / "dlib_faces").glob("*.jpg"))
    if SCUT.is_dir():
        scut = sorted(SCUT.glob("*.jpg"))
        paths += random.Random(seed).sample(scut, min(n_scut, len(scut)))
    return [(p.name, p.read_bytes()) for p in paths]


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


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and every descendant."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def phase(server: Server, url: str, n: int, seconds: float, images, seed: int) -> dict:
    """``run_clients`` plus the server's CPU use meanwhile (cores busy, CPU ms per request)."""
    c0 = cpu_s(server.proc.pid)
    out = run_clients(url, n, seconds, images, seed)
    used = cpu_s(server.proc.pid) - c0
    out["server_cores_used"] = round(used / out["seconds"], 2)
    out["server_cpu_ms_per_request"] = round(1e3 * used / max(out["ok"], 1), 1)
    return out


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.log_path = Path(tempfile.gettempdir()) / "facecore-loadtest-server.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        # Its own session, as a deployed server is: with the kernel's autogroup scheduling the
        # server then does not share one CPU group with the clients that load it.
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )

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


def run_clients(url: str, n: int, seconds: float, images, seed: int) -> dict:
    """``n`` clients, each sending one image after another for ``seconds``."""
    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        order = list(images)
        rng.shuffle(order)
        session = requests.Session()
        i = 0
        while time.monotonic() < stop_at:
            name, data = order[i % len(order)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = session.post(url, files={"file": (name, data, "image/jpeg")}, timeout=60)
                why = None if r.status_code == 200 else f"{r.status_code} {r.text[:120]}"
            except requests.RequestException as e:
                why = type(e).__name__
            dt = time.perf_counter() - t0
            with lock:
                if why is None:
                    lat.append(dt)
                else:
                    errors[why] = errors.get(why, 0) + 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    lat.sort()

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 4) if lat else None

    return {
        "clients": n,
        "seconds": round(wall, 1),
        "ok": len(lat),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "throughput_rps": round(len(lat) / wall, 2),
        "p50_s": pct(0.50),
        "p95_s": pct(0.95),
        "p99_s": pct(0.99),
        "max_s": round(lat[-1], 4) if lat else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds with N clients")
    ap.add_argument(
        "--solo", type=float, default=40.0, help="seconds with one client (half before, half after)"
    )
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--route", default="/v1/analyze")
    ap.add_argument("--scut", type=int, default=200, help="SCUT-FBP5500 photos to use")
    ap.add_argument("--workers", type=int, default=None, help="FACECORE_WORKERS for the server")
    ap.add_argument("--batch-max", type=int, default=None, help="FACECORE_BATCH_MAX")
    ap.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)

    env = {**os.environ, "FACECORE_LOG_LEVEL": "WARNING"}
    if args.workers is not None:
        env["FACECORE_WORKERS"] = str(args.workers)
    if args.batch_max is not None:
        env["FACECORE_BATCH_MAX"] = str(args.batch_max)
    images = photos(args.scut)
    server = Server(env)
    try:
        ready_s = server.wait_ready()
        url = server.url + args.route
        print(f"server ready in {ready_s:.1f} s; {len(images)} photos; {args.route}", flush=True)
        run_clients(url, args.clients, args.warmup, images, seed=1)
        rss_warm = rss_kib(server.proc.pid)
        # One client before and after the N-client run (the machine may be shared: both see
        # about the same background load).
        solo_a = phase(server, url, 1, args.solo / 2, images, seed=2)
        print("1 client:", json.dumps(solo_a), flush=True)
        many = phase(server, url, args.clients, args.duration, images, seed=3)
        print(f"{args.clients} clients:", json.dumps(many), flush=True)
        rss_end = rss_kib(server.proc.pid)
        solo_b = phase(server, url, 1, args.solo / 2, images, seed=4)
        print("1 client:", json.dumps(solo_b), flush=True)
        metrics = requests.get(server.url + "/metrics", timeout=10).text
    finally:
        server.stop()
    growth = (rss_end - rss_warm) / rss_warm
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
        "load_average": os.getloadavg(),
        "solo": solo,
        "concurrent": many,
        "speedup": round(many["throughput_rps"] / max(solo["throughput_rps"], 1e-9), 2),
        "rss_mib_after_warmup": round(rss_warm / 1024, 1),
        "rss_mib_end": round(rss_end / 1024, 1),
        "rss_growth": round(growth, 4),
        "batch_images": [
            ln
            for ln in metrics.splitlines()
            if ln.startswith("facecore_batch_images_") and ("_sum" in ln or "_count" in ln)
        ],
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    missed = []
    if many["errors"] or solo["errors"]:
        missed.append("errors")
    if growth >= 0.05:
        missed.append("memory growth >= 5%")
    if many["p95_s"] is None or many["p95_s"] >= 1.0:
        missed.append("p95 >= 1 s")
    if report["speedup"] < 1.6:
        missed.append("throughput < 1.6x one client")
    if missed:
        print("targets missed:", ", ".join(missed))
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
