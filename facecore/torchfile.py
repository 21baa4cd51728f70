"""Model files written with ``torch.save``: one tagged document, written atomically, read back
with a clear error.

The trained heads (:class:`facecore.heads.distribution.TopDistributionModel`,
:class:`facecore.quality.model.QualityModel`) store a dict with a ``format`` tag, their weights in
float16 (:func:`half_state`) and their settings; :func:`save_doc` writes it through a temporary
file and :func:`os.replace`, so a reader never sees half a file, and :func:`load_doc` refuses a
file that is unreadable or carries another tag (:class:`~facecore.errors.ModelCorruptError`).

This module implements no paper.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from facecore.atomic import atomic_path
from facecore.errors import ModelCorruptError

__all__ = ["half_state", "load_doc", "save_doc"]


def half_state(module: Any) -> dict[str, Any]:
    """``module``'s state dict as float16 CPU tensors (for storage)."""
    import torch

    return {k: v.detach().to(torch.float16).cpu() for k, v in module.state_dict().items()}


def save_doc(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``doc`` with ``torch.save`` atomically; returns the path.

    Saved through an open file, not a path: ``torch.save`` names the zip archive's records after
    a path's file name, which here would be the random temporary name, so the same document
    would give files of another sha256 each time."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(doc, f)
    return path


def load_doc(path: str | os.PathLike[str], file_format: str, what: str) -> dict[str, Any]:
    """The document of a file written by :func:`save_doc` whose ``format`` is ``file_format``.

    Raises
    ------
    ModelCorruptError
        The file cannot be read, or is not a ``file_format`` document (``what`` names it).
    """
    import torch

    path = Path(path)
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelCorruptError(f"cannot read {what} {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != file_format:
        raise ModelCorruptError(f"{path} is not a {file_format} model file")
    return doc
