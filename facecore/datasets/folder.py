"""Generic loader: a folder of images plus a CSV file of labels.

The CSV has a header with an image column (``image`` or ``path``, relative to ``image_root`` or
absolute) and a numeric target column named by the caller; optional columns can become groups,
splits or extra metadata. This module implements no paper.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facecore.datasets.base import (
    NON_COMMERCIAL,
    FaceDataset,
    check_files_exist,
    read_csv_rows,
)

__all__ = ["IMAGE_COLUMNS", "load_folder"]

logger = logging.getLogger(__name__)

#: Accepted names of the image column, in order of preference.
IMAGE_COLUMNS = ("image", "path")


def load_folder(
    csv_path: str | os.PathLike[str],
    target: str,
    *,
    image_root: str | os.PathLike[str] | None = None,
    name: str | None = None,
    group_column: str | None = None,
    split_column: str | None = None,
    meta_columns: Sequence[str] = (),
    licence: str = NON_COMMERCIAL,
    check_files: bool = True,
) -> FaceDataset:
    """Load a dataset described by a CSV file of image paths and targets.

    Parameters
    ----------
    csv_path : path-like
        The label file (UTF-8 CSV with a header).
    target : str
        Name of the numeric target column.
    image_root : path-like, optional
        Folder the image paths are relative to; defaults to the CSV file's folder.
    name : str, optional
        Dataset name; defaults to the CSV file's stem.
    group_column, split_column : str, optional
        Columns to return as ``groups`` and ``splits``.
    meta_columns : sequence of str
        Further columns to return (as strings) in ``meta``.
    licence : str, default "non-commercial research only"
        Licence of the data.
    check_files : bool, default True
        Check that every listed image exists.

    Returns
    -------
    FaceDataset
        ``targets`` of shape (N,), rows in file order.

    Raises
    ------
    FileNotFoundError
        If the CSV file or (with ``check_files``) an image is missing.
    ValueError
        If there is no ``image``/``path`` column, a named column is missing, a target is empty or
        not a number, or an image is listed twice.
    """
    csv_path = Path(csv_path)
    rows = read_csv_rows(csv_path, [])
    header = list(rows[0]) if rows else []
    if not rows:
        raise ValueError(f"{csv_path}: no rows")
    image_col = next((c for c in IMAGE_COLUMNS if c in header), None)
    if image_col is None:
        raise ValueError(f"{csv_path}: needs an 'image' or 'path' column; found {header}")
    wanted = [target, group_column, split_column, *meta_columns]
    missing = [c for c in wanted if c is not None and c not in header]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}; found {header}")
    paths = [r[image_col].strip() for r in rows]
    if any(not p for p in paths):
        raise ValueError(f"{csv_path}: empty {image_col!r} cell(s)")
    if len(set(paths)) != len(paths):
        dup = sorted({p for p in paths if paths.count(p) > 1})
        raise ValueError(f"{csv_path}: images listed more than once: {dup[:5]}")
    values = np.empty(len(rows))
    for i, row in enumerate(rows):
        cell = (row[target] or "").strip()
        try:
            values[i] = float(cell)
        except ValueError as exc:
            raise ValueError(
                f"{csv_path}: row {i + 2} ({paths[i]!r}): target {target!r} is {cell!r}, "
                "not a number"
            ) from exc
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{csv_path}: non-finite values in target column {target!r}")
    root = Path(image_root) if image_root is not None else csv_path.parent
    if check_files:
        check_files_exist(root, paths)
    logger.debug("loaded %d images from %s", len(paths), csv_path)
    return FaceDataset(
        name=name or csv_path.stem,
        root=root,
        relative_paths=tuple(p.replace(os.sep, "/") for p in paths),
        targets=values,
        target_name=target,
        licence=licence,
        groups=None if group_column is None else np.array([r[group_column] for r in rows]),
        splits=None if split_column is None else np.array([r[split_column] for r in rows]),
        meta={c: np.array([r[c] for r in rows]) for c in meta_columns},
    )
