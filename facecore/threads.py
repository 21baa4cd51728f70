"""Thread pools of the numeric libraries, limited per process.

A process that runs next to others on the same cores (a batch worker, a service worker) sets
torch, the BLAS/OpenMP pools (through threadpoolctl) and OpenCV to a few threads each, so that
processes x threads never oversubscribes the machine.

This module implements no paper.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["limit_threads"]


def limit_threads(n: int) -> Any:
    """Limit torch, BLAS/OpenMP (threadpoolctl) and OpenCV to ``n`` threads in this process.

    Returns a callable that restores the previous settings.
    """
    import importlib

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
