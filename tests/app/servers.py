"""App factories and helpers for the tests that run a real uvicorn server (``test_server.py``).

``slow_app``: the service over an analyzer that detects no face and takes ``SLOW_DELAY`` seconds
(default 2) per image, in thread workers, models "loaded" (no model file is read).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from app.core.config import Settings
from app.main import create_app
from facecore.analyzer import FaceAnalyzer

ROOT = Path(__file__).resolve().parents[2]


class SlowAnalyzer(FaceAnalyzer):
    def __init__(self, delay: float) -> None:
        super().__init__(stages=())
        self.delay = delay

    def detect_loaded(self, rgb):  # noqa: ANN001, ANN201
        time.sleep(self.delay)
        return []

    def load(self):  # noqa: ANN201
        return self

    @property
    def ready(self) -> bool:
        return True


def slow_app():  # noqa: ANN201
    delay = float(os.environ.get("SLOW_DELAY", "2"))
    return create_app(Settings(worker_mode="thread", preload=False), analyzer=SlowAnalyzer(delay))


def audited_app():  # noqa: ANN201
    """The service from the environment's settings, in a process that appends every file it
    opens in a ``models`` folder to the file named by ``FACECORE_TEST_OPENED`` (one path a line):
    what this process (not its worker processes) read of the models."""
    out = Path(os.environ["FACECORE_TEST_OPENED"])

    def hook(event: str, args: tuple) -> None:
        if event != "open" or not isinstance(args[0], str | Path):
            return
        path = Path(args[0])
        if path.parent.name == "models":
            with out.open("a") as fh:  # not in a models folder: no recursion
                fh.write(f"{path}\n")

    sys.addaudithook(hook)
    return create_app()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m uvicorn <target>`` on a free loopback port, stdout+stderr to ``log``."""

    def __init__(self, target: str, env: dict[str, str], log: Path, factory: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--app-dir",
            str(ROOT),
        ]
        if factory:
            cmd.append("--factory")
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'app'}", **env}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)

    def wait(self, path: str = "/readyz", timeout: float = 240.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
