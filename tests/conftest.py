"""Shared test fixtures and session guards.

Fixtures: photo paths, the shared data folder (``shared``, ``data_root``), the golden scores of the
fixture photos, one loaded analyzer per session, and one-thread settings that are restored
afterwards (``torch_single_thread`` for a module, ``single_threaded`` for a CPU-heavy test).

Guards for the whole session:

* **Shared data in CI.** Data tests skip when ``../shared/data`` is absent, except under
  ``CI=true``, where a missing folder fails the run at start-up (and any test that asks for a
  missing path fails), so a misplaced folder can never give a green run.
* **No network.** ``socket.connect`` to anything but a loopback address (or a Unix socket) raises
  :class:`NetworkBlockedError`: nothing is downloaded at run time, and a test that tries fails
  loudly. Every blocked attempt is also recorded and fails the session at its end, even if the
  code under test swallowed the error.
* **Torch's thread count.** A test module that changes ``torch.get_num_threads()`` at import, or a
  test that changes it without restoring it, is an error: use the ``torch_single_thread``
  fixture instead.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"
#: The folders of ../shared/data the tests use (its README lists them).
SHARED_FOLDERS = ("scut-fbp5500", "mebeauty", "utkface", "fixtures")
#: Scores of the shipped attractiveness model on the fixture photos (one place for them all).
GOLDEN_SCORES_FILE = FIXTURES / "golden_scores.json"


def in_ci() -> bool:
    """Whether this run is CI's (environment variable ``CI`` set to true)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing_message(paths: list[Path]) -> str:
    if not SHARED_DATA.is_dir():
        paths = [SHARED_DATA]
    where = ", ".join(str(p) for p in paths)
    return (
        f"shared test data is missing: {where} not found (the tests look for ../shared/data "
        f"beside the repository: {SHARED_DATA}). Under CI=true the data tests need it and fail "
        "instead of skipping; put the data there (../shared/data/README.md says what it holds)."
    )


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data: skips the test when it is absent, fails it under ``CI=true``."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        if in_ci():
            pytest.fail(_missing_message([p]), pytrace=False)
        pytest.skip(f"{p} is not available (needs ../shared/data)")
    return p


# -- session start: shared data, torch threads -------------------------------------------------
def pytest_sessionstart(session: pytest.Session) -> None:
    if in_ci():
        missing = [SHARED_DATA / f for f in SHARED_FOLDERS if not (SHARED_DATA / f).is_dir()]
        if missing:
            pytest.exit(_missing_message(missing), returncode=pytest.ExitCode.USAGE_ERROR)


_TORCH_THREADS: list[int] = []  # torch's thread count before any test module was imported


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A test module must not change torch's thread count when it is imported."""
    if not isinstance(collector, pytest.Module):
        return (yield)
    if not _TORCH_THREADS:
        _TORCH_THREADS.append(_torch_threads())
    report = yield
    now = _torch_threads()
    if now != _TORCH_THREADS[0] and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.path}: importing it changed torch.get_num_threads() from "
            f"{_TORCH_THREADS[0]} to {now} for every later test; use the torch_single_thread "
            "fixture (pytestmark = pytest.mark.usefixtures('torch_single_thread')) instead"
        )
        import torch

        torch.set_num_threads(_TORCH_THREADS[0])
    return report


@pytest.fixture(autouse=True)
def _torch_threads_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that changes torch's thread count must restore it (checked after each test)."""
    before = _torch_threads() if "torch" in sys.modules else None
    yield
    if before is not None and _torch_threads() != before:
        now = _torch_threads()
        sys.modules["torch"].set_num_threads(before)
        pytest.fail(
            f"{request.node.nodeid} left torch.get_num_threads() at {now} (was {before}); "
            "use the torch_single_thread fixture",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def torch_single_thread() -> Iterator[None]:
    """One torch thread for a module of tiny networks (faster, deterministic), then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def single_threaded() -> Iterator[None]:
    """torch, BLAS and OpenMP on one thread for one test, then restored.

    For CPU-heavy tests (training runs): on a busy 2-core machine, two BLAS/OpenMP threads that
    wait for each other by spinning made the tiny training run 3-7x slower than one thread.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


# -- no network --------------------------------------------------------------------------------
class NetworkBlockedError(RuntimeError):
    """A test tried to reach the network (a RuntimeError, so that ``except OSError`` in the code
    under test cannot mistake it for a flaky connection and fall back silently)."""


BLOCKED_CONNECTIONS: list[str] = []


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path (str or bytes)
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:  # a host name other than localhost
        return False
    return ip.is_loopback or ip.is_unspecified  # 0.0.0.0 / :: reach this machine


def _guarded(original: Callable) -> Callable:
    def connect(self: socket.socket, address: object, *args: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            what = f"{original.__name__}({address!r})"
            BLOCKED_CONNECTIONS.append(what)
            raise NetworkBlockedError(
                f"test tried to reach the network: socket.{what}; nothing may be downloaded "
                "at run time (only loopback connections are allowed in tests)"
            )
        return original(self, address, *args)

    connect.__name__ = original.__name__
    return connect


@pytest.fixture(scope="session", autouse=True)
def _no_network() -> Iterator[list[str]]:
    """Block non-loopback connections for the whole session (see the module docstring)."""
    names = ("connect", "connect_ex")
    own = {n: socket.socket.__dict__.get(n) for n in names}  # None: inherited from _socket
    for n in names:
        setattr(socket.socket, n, _guarded(getattr(socket.socket, n)))
    yield BLOCKED_CONNECTIONS
    for n in names:
        if own[n] is None:
            delattr(socket.socket, n)
        else:
            setattr(socket.socket, n, own[n])


@pytest.fixture
def blocked_connections() -> Iterator[list[str]]:
    """The blocked attempts, for a test that makes some on purpose (they are forgotten after)."""
    n = len(BLOCKED_CONNECTIONS)
    yield BLOCKED_CONNECTIONS
    del BLOCKED_CONNECTIONS[n:]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if BLOCKED_CONNECTIONS:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_sep("!", "network access was attempted (and blocked)", red=True)
            for what in BLOCKED_CONNECTIONS:
                tr.write_line(f"  socket.{what}")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shared() -> Callable[..., Path]:
    """:func:`shared_data` for tests: ``shared("scut-fbp5500")`` (skip, or fail under CI)."""
    return shared_data


@pytest.fixture(scope="session")
def data_root() -> Path:
    """``../shared/data`` (skips the test when absent, fails it under ``CI=true``)."""
    return shared_data()


@pytest.fixture(scope="session")
def golden_scores() -> dict[str, list[float]]:
    """Fixture photo (relative to tests/fixtures) -> the shipped model's scores, largest face
    first; measured, see tests/attractiveness/test_golden.py."""
    table = json.loads(GOLDEN_SCORES_FILE.read_text(encoding="utf-8"))
    return {k: [f["score"] for f in v] for k, v in table.items() if not k.startswith("_")}


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def one_face_photo() -> Path:
    return FIXTURES / "obama.jpg"


@pytest.fixture(scope="session")
def two_face_photo() -> Path:
    return FIXTURES / "two_people.jpg"


@pytest.fixture(scope="session")
def no_face_photo() -> Path:
    return FIXTURES / "dlib_dog.jpg"


@pytest.fixture(scope="session")
def png_bomb() -> bytes:
    """A ~100-byte valid PNG whose header claims 40000 x 40000 RGB pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def analyzer():
    """A fully loaded default analyzer, shared by the whole session."""
    from facecore.analyzer import FaceAnalyzer

    return FaceAnalyzer().load()
