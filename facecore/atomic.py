"""One way to write a file atomically: into a temporary file beside it, then :func:`os.replace`.

A reader (another process, a resumed run) sees the old file or the new one, never half of one;
a write that fails or is interrupted leaves the old file as it was and removes its temporary
file. Every file facecore writes that something else reads back (model files, the manifest,
caches, checkpoints, batch outputs, cards) goes through :func:`atomic_path`.

This module implements no paper.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path"]


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int = 0o644) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; moved over ``path`` on success.

    Parameters
    ----------
    path : path-like
        The file to (re)write; its folder is created when missing.
    mode : int, default 0o644
        Permission bits of the written file (a temporary file is created 0o600).

    Yields
    ------
    Path
        A new empty file in ``path``'s folder whose name ends with ``path``'s suffix, so that
        writers that append a suffix when it is missing (``numpy.save``, ``numpy.savez``) keep
        the name.

    Examples
    --------
    >>> with atomic_path("out/cache.npz") as tmp:      # doctest: +SKIP
    ...     np.savez(tmp, x=x)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
