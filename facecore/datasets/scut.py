"""SCUT-FBP5500 loader (the copy in ``shared/data/scut-fbp5500``).

Dataset: L. Liang, L. Lin, L. Jin, D. Xie, M. Li, "SCUT-FBP5500: A Diverse Benchmark Dataset for
Multi-Paradigm Facial Beauty Prediction", ICPR 2018. Used for facial-beauty prediction in
B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and beautification
models", Pattern Analysis and Applications 21(2), 2018.

Layout read here: ``labels.csv`` (``image,score``: mean of 60 ratings on 1-5),
``landmarks86.csv`` (``image,x0,y0,...,x85,y85``: the dataset's own 86 points in pixels) and
``images/<image>``. The group (``AF``, ``AM``, ``CF``, ``CM``: Asian/Caucasian, female/male) is the
file-name prefix. Rows keep the order of ``labels.csv``.

Departures: none from the files; the official 60/40 split is not in this copy (its test part is
held back), so no split is returned - use cross-validation grouped or stratified by ``groups``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from facecore.datasets.base import (
    NON_COMMERCIAL,
    FaceDataset,
    check_files_exist,
    dataset_folder,
    read_csv_rows,
)

__all__ = ["SCUT_GROUPS", "N_SCUT_LANDMARKS", "load_scut_fbp5500"]

logger = logging.getLogger(__name__)

#: Group prefixes of SCUT-FBP5500 file names.
SCUT_GROUPS = ("AF", "AM", "CF", "CM")
#: Number of landmarks in ``landmarks86.csv``.
N_SCUT_LANDMARKS = 86

_FOLDER = "scut-fbp5500"


def _read_landmarks(path: Path, names: list[str]) -> np.ndarray:
    cols = ["image"] + [f"{a}{i}" for i in range(N_SCUT_LANDMARKS) for a in ("x", "y")]
    rows = read_csv_rows(path, cols)
    by_name: dict[str, np.ndarray] = {}
    for row in rows:
        try:
            pts = np.array([float(row[c]) for c in cols[1:]], dtype=np.float32)
        except ValueError as exc:
            raise ValueError(f"{path}: non-numeric landmark for {row['image']!r}") from exc
        by_name[row["image"]] = pts.reshape(N_SCUT_LANDMARKS, 2)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"{path}: no landmarks for {len(missing)} image(s), e.g. {missing[:3]}")
    return np.stack([by_name[n] for n in names])


def load_scut_fbp5500(
    data_root: str | os.PathLike[str] | None = None,
    *,
    landmarks: bool = True,
    check_files: bool = True,
) -> FaceDataset:
    """Load SCUT-FBP5500: images, mean scores, groups and the 86-point landmarks.

    Parameters
    ----------
    data_root : path-like, optional
        Folder holding ``scut-fbp5500/``; see :func:`facecore.datasets.resolve_data_root`.
    landmarks : bool, default True
        Read ``landmarks86.csv`` into ``FaceDataset.landmarks``.
    check_files : bool, default True
        Check that every listed image exists (a cheap ``stat`` per file).

    Returns
    -------
    FaceDataset
        ``name="scut-fbp5500"``, ``targets`` of shape (N,) (score 1-5), ``groups`` of shape (N,)
        in :data:`SCUT_GROUPS`, ``landmarks`` of shape (N, 86, 2) float32 pixel ``(x, y)`` (or
        None), ``root`` the images folder.

    Raises
    ------
    FileNotFoundError
        If the data folder, a label file or (with ``check_files``) an image is missing.
    ValueError
        If a label file is malformed.
    """
    folder = dataset_folder(data_root, _FOLDER, "SCUT-FBP5500")
    rows = read_csv_rows(folder / "labels.csv", ["image", "score"])
    names = [r["image"] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"{folder / 'labels.csv'}: duplicate image names")
    try:
        scores = np.array([float(r["score"]) for r in rows])
    except ValueError as exc:
        raise ValueError(f"{folder / 'labels.csv'}: non-numeric score") from exc
    groups = [n[:2] for n in names]
    bad = sorted({n for n, g in zip(names, groups, strict=True) if g not in SCUT_GROUPS})
    if bad:
        raise ValueError(f"image names without an AF/AM/CF/CM prefix: {bad[:5]}")
    image_root = folder / "images"
    if check_files:
        check_files_exist(image_root, names)
    lm = _read_landmarks(folder / "landmarks86.csv", names) if landmarks else None
    logger.debug("loaded SCUT-FBP5500: %d images from %s", len(names), folder)
    return FaceDataset(
        name="scut-fbp5500",
        root=image_root,
        relative_paths=tuple(names),
        targets=scores,
        target_name="score",
        licence=NON_COMMERCIAL,
        groups=np.array(groups),
        landmarks=lm,
    )
