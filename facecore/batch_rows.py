"""One image's batch rows, and a chunk of images analysed together: what the local workers of
:mod:`facecore.batch` and the Ray actors of :mod:`facecore.ray_engine` both run.

This module implements no paper.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from facecore.errors import FacecoreError, ModelFileError

__all__ = ["CHUNK", "analyze_chunk", "rows_for"]

log = logging.getLogger("facecore.batch")

#: Images one call of the analysis takes: the trunk and the heads that read its maps run once
#: over all their faces (:func:`facecore.multi.analyze_many`).
CHUNK = 8


def rows_for(path: str, result: Any) -> list[dict[str, str]]:
    """The CSV rows of one image's :class:`facecore.multi.ImageResult`."""
    from facecore.serialize import FaceOut, face_row

    e = result.error
    if isinstance(e, ModelFileError):
        raise e
    if isinstance(e, FileNotFoundError):
        return [{"path": path, "n_faces": "0", "error": "file_not_found: no such file"}]
    if isinstance(e, FacecoreError):
        return [{"path": path, "n_faces": "0", "error": f"{e.code}: {e}"}]
    if isinstance(e, OSError):
        return [{"path": path, "n_faces": "0", "error": f"unreadable_file: {e.strerror or e}"}]
    if e is not None:  # a bug for this one image must not stop the run; it is logged
        log.error("analysis of %s failed", path, exc_info=e)
        return [{"path": path, "n_faces": "0", "error": f"analysis_failed: {e}"}]
    if not result.faces:
        return [{"path": path, "n_faces": "0", "error": "no_face: no face found"}]
    n = len(result.faces)
    return [
        face_row(path, i, n, FaceOut.from_face(f, points=False)) for i, f in enumerate(result.faces)
    ]


def analyze_chunk(paths: Sequence[str], analyzer: Any) -> list[Any]:
    """:func:`facecore.multi.analyze_many` over ``paths``, each image decoded in a background
    thread while the ones before it are detected."""
    from concurrent.futures import ThreadPoolExecutor

    from facecore.multi import analyze_many

    with ThreadPoolExecutor(1, thread_name_prefix="decode") as io_pool:
        decoded = [io_pool.submit(analyzer.decode, p) for p in paths]
        return analyze_many(analyzer, paths, decoded=decoded)
