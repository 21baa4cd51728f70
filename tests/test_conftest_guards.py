"""The session guards of tests/conftest.py do what they promise: shared data missing under
``CI=true`` fails (at start-up, and in a test that asks for it), and a test module that changes
torch's thread count at import is a collection error. (The network guard: test_no_network.py.)

The guards are run on a scratch tree holding a copy of the conftest, with no ../shared beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def test_shared_data_skips_locally_and_fails_under_ci(shared, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(BaseException) as ci:  # a skip here must not skip this test
        shared("no-such-folder")
    assert ci.type is pytest.fail.Exception, f"under CI=true: {ci.type.__name__}: {ci.value}"
    assert "shared test data is missing" in str(ci.value) and "no-such-folder" in str(ci.value)
    monkeypatch.delenv("CI")
    with pytest.raises(BaseException) as local:
        shared("no-such-folder")
    assert local.type is pytest.skip.Exception, local.type
    assert "no-such-folder is not available" in str(local.value)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("guards") / "repo"  # no shared/ beside it
    (repo / "tests").mkdir(parents=True)
    shutil.copy(CONFTEST, repo / "tests" / "conftest.py")
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "tests" / "test_data.py").write_text(
        "def test_needs_data(shared):\n    shared('scut-fbp5500')\n"
    )
    (repo / "tests" / "test_threads.py").write_text(
        # one more thread than the count it finds (an inherited OMP_NUM_THREADS=1 would make
        # a fixed 1 no change at all)
        "import torch\ntorch.set_num_threads(torch.get_num_threads() + 1)\n\n"
        "def test_nothing():\n    pass\n"
    )
    return repo


def _pytest(repo: Path, *args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_ci_without_shared_data_fails_at_once(scratch: Path) -> None:
    r = _pytest(scratch, "tests", ci=True)
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "shared test data is missing" in out
    assert str(scratch.parent / "shared" / "data") in out
    assert "collected" not in out  # before any test module is imported


def test_without_ci_data_tests_skip_and_thread_changes_are_collection_errors(
    scratch: Path,
) -> None:
    r = _pytest(scratch, "--continue-on-collection-errors", "tests", ci=False)
    out = r.stdout + r.stderr
    assert r.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "1 skipped" in r.stdout and "needs ../shared/data" in r.stdout
    assert "ERROR collecting tests/test_threads.py" in r.stdout
    assert "importing it changed torch.get_num_threads() from" in r.stdout
    assert "torch_single_thread" in r.stdout
