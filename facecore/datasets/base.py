"""The typed dataset record, data-root resolution, hashing and lazy image loading.

Every loader in :mod:`facecore.datasets` returns a :class:`FaceDataset`: a frozen record holding
image paths (relative to ``root``), one target per image and, where the data has them, groups,
splits, landmarks and per-rater ratings. Nothing here reads an image until asked:
:func:`iter_images` decodes one file at a time.

Data location
-------------
:func:`resolve_data_root` looks, in order, at the ``data_root`` argument, the ``FACECORE_DATA``
environment variable, ``../shared/data`` relative to the current directory and
``../shared/data`` relative to the repository root. An explicit argument or environment variable
that does not exist is an error (never a silent fall-back to another folder).

This module implements no paper. Its only departure from "load what is on disk" is documented in
:func:`facecore.datasets.mebeauty.load_mebeauty` (duplicate rows in MEBeauty's ``labels.csv``).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "DATA_ENV_VAR",
    "NON_COMMERCIAL",
    "FaceDataset",
    "Ratings",
    "dataset_folder",
    "dataset_hash",
    "iter_images",
    "read_csv_rows",
    "resolve_data_root",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the folder that holds the dataset folders.
DATA_ENV_VAR = "FACECORE_DATA"

#: Licence string of every labelled set in ``shared/data`` (and of models trained on them).
NON_COMMERCIAL = "non-commercial research only"

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _frozen(a: Any, dtype: Any = None) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def _frozen_or_none(a: Any, dtype: Any = None) -> np.ndarray | None:
    return None if a is None else _frozen(a, dtype)


@dataclass(frozen=True, slots=True)
class Ratings:
    """Individual ratings in long form: one entry per (image, rater) rating.

    Attributes
    ----------
    image_index : ndarray of shape (M,), int64
        Row of the owning :class:`FaceDataset` that each rating belongs to.
    rater_index : ndarray of shape (M,), int64
        Index into ``rater_ids`` of the rater who gave each rating.
    rating : ndarray of shape (M,), float64
        The rating, on the dataset's scale.
    rater_ids : tuple of str, length R
        Rater identifiers as they appear in the source file.
    """

    image_index: np.ndarray
    rater_index: np.ndarray
    rating: np.ndarray
    rater_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_index", _frozen(self.image_index, np.int64))
        object.__setattr__(self, "rater_index", _frozen(self.rater_index, np.int64))
        object.__setattr__(self, "rating", _frozen(self.rating, np.float64))
        object.__setattr__(self, "rater_ids", tuple(self.rater_ids))
        m = len(self.rating)
        if self.image_index.shape != (m,) or self.rater_index.shape != (m,):
            raise ValueError(
                "image_index, rater_index and rating must be 1-D arrays of the same length"
            )
        if m and (self.rater_index.min() < 0 or self.rater_index.max() >= len(self.rater_ids)):
            raise ValueError("rater_index out of range of rater_ids")

    def __len__(self) -> int:
        return len(self.rating)

    @property
    def n_raters(self) -> int:
        return len(self.rater_ids)

    def matrix(self, n_images: int) -> np.ndarray:
        """Dense image-by-rater matrix, NaN where a rater did not rate an image.

        A rater who rated the same image more than once gets the mean of those ratings.

        Parameters
        ----------
        n_images : int
            Number of rows (the length of the owning dataset).

        Returns
        -------
        ndarray of shape (n_images, R), float64
        """
        total = np.zeros((n_images, self.n_raters))
        count = np.zeros((n_images, self.n_raters))
        np.add.at(total, (self.image_index, self.rater_index), self.rating)
        np.add.at(count, (self.image_index, self.rater_index), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1.0), np.nan)

    def take(self, indices: np.ndarray, n_images: int) -> Ratings:
        """The ratings of rows ``indices`` of a dataset of ``n_images`` rows, re-indexed."""
        new_pos = np.full(n_images, -1, dtype=np.int64)
        new_pos[indices] = np.arange(len(indices))
        keep = new_pos[self.image_index] >= 0
        return Ratings(
            image_index=new_pos[self.image_index[keep]],
            rater_index=self.rater_index[keep],
            rating=self.rating[keep],
            rater_ids=self.rater_ids,
        )


@dataclass(frozen=True, slots=True)
class FaceDataset:
    """A labelled set of face images; arrays are read-only, one row per image.

    Attributes
    ----------
    name : str
        Short dataset name, e.g. ``"scut-fbp5500"``.
    root : Path
        Folder the entries of ``relative_paths`` are relative to.
    relative_paths : tuple of str, length N
        Image file names relative to ``root`` with ``/`` separators, exactly as in the label file
        (they double as image identifiers).
    targets : ndarray of shape (N,), float64
        The regression target of each image (``target_name`` says which).
    target_name : str
        What ``targets`` holds, e.g. ``"score"`` or ``"mean_score"``.
    licence : str
        Licence of the data; models trained on it inherit it.
    groups : ndarray of shape (N,), str, or None
        A group label per image (e.g. ``"AF"``), for stratified or grouped cross-validation.
    splits : ndarray of shape (N,), str, or None
        The split each image belongs to in the source (e.g. ``"train"``/``"val"``).
    landmarks : ndarray of shape (N, K, 2), float32, or None
        Landmarks shipped with the dataset, pixel ``(x, y)`` in the image's own coordinates.
    ratings : Ratings or None
        Individual ratings, where the dataset publishes them.
    meta : Mapping[str, ndarray of shape (N,)]
        Other per-image columns (read-only mapping).
    """

    name: str
    root: Path
    relative_paths: tuple[str, ...]
    targets: np.ndarray
    target_name: str = "target"
    licence: str = NON_COMMERCIAL
    groups: np.ndarray | None = None
    splits: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    ratings: Ratings | None = None
    meta: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "relative_paths", tuple(str(p) for p in self.relative_paths))
        n = len(self.relative_paths)
        targets = _frozen(self.targets, np.float64)
        if targets.shape != (n,):
            raise ValueError(f"targets must have shape ({n},), got {targets.shape}")
        object.__setattr__(self, "targets", targets)
        for name in ("groups", "splits"):
            arr = _frozen_or_none(getattr(self, name), str)
            if arr is not None and arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
            object.__setattr__(self, name, arr)
        lm = _frozen_or_none(self.landmarks, np.float32)
        if lm is not None and (lm.ndim != 3 or lm.shape[0] != n or lm.shape[2] != 2):
            raise ValueError(f"landmarks must have shape ({n}, K, 2), got {lm.shape}")
        object.__setattr__(self, "landmarks", lm)
        if self.ratings is not None and len(self.ratings):
            idx = self.ratings.image_index
            if idx.min() < 0 or idx.max() >= n:
                raise ValueError("ratings.image_index out of range of the dataset")
        meta = {}
        for key, value in dict(self.meta).items():
            arr = _frozen(value)
            if arr.shape[:1] != (n,):
                raise ValueError(f"meta[{key!r}] must have length {n}, got shape {arr.shape}")
            meta[key] = arr
        object.__setattr__(self, "meta", MappingProxyType(meta))

    def __len__(self) -> int:
        return len(self.relative_paths)

    def __repr__(self) -> str:
        extras = [
            k for k in ("groups", "splits", "landmarks", "ratings") if getattr(self, k) is not None
        ]
        return (
            f"FaceDataset(name={self.name!r}, n={len(self)}, target={self.target_name!r}, "
            f"root={str(self.root)!r}, with={extras}, licence={self.licence!r})"
        )

    @property
    def paths(self) -> tuple[Path, ...]:
        """Absolute image paths, in row order."""
        return tuple(self.root / p for p in self.relative_paths)

    def subset(self, indices: Sequence[int] | np.ndarray) -> FaceDataset:
        """A new dataset holding rows ``indices`` (in that order) of this one.

        Parameters
        ----------
        indices : array-like of int, or boolean mask of shape (N,)

        Returns
        -------
        FaceDataset
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask must have shape ({len(self)},)")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError("subset index out of range")
        idx = np.where(idx < 0, idx + len(self), idx)
        return replace(
            self,
            relative_paths=tuple(self.relative_paths[i] for i in idx),
            targets=self.targets[idx],
            groups=None if self.groups is None else self.groups[idx],
            splits=None if self.splits is None else self.splits[idx],
            landmarks=None if self.landmarks is None else self.landmarks[idx],
            ratings=None if self.ratings is None else self.ratings.take(idx, len(self)),
            meta={k: v[idx] for k, v in self.meta.items()},
        )


def resolve_data_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds the dataset folders (``scut-fbp5500/``, ``mebeauty/``, ...).

    Parameters
    ----------
    data_root : path-like, optional
        Explicit location. When omitted, the ``FACECORE_DATA`` environment variable is used,
        then ``../shared/data`` relative to the current directory, then ``../shared/data``
        relative to the repository root.

    Returns
    -------
    Path
        The resolved, existing folder.

    Raises
    ------
    FileNotFoundError
        If the explicit argument or the environment variable names a missing folder, or no
        default location exists; the message lists every place looked at.
    """
    if data_root is not None:
        path = Path(data_root).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data root {str(path)!r} (given as data_root) does not exist")
        return path.resolve()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"data root {str(path)!r} (from ${DATA_ENV_VAR}) does not exist"
            )
        return path.resolve()
    candidates = [Path.cwd() / ".." / "shared" / "data", _REPO_ROOT / ".." / "shared" / "data"]
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    looked = ", ".join(repr(str(c.resolve())) for c in candidates)
    raise FileNotFoundError(
        f"no data folder found: pass data_root=..., set ${DATA_ENV_VAR}, or place the data at "
        f"../shared/data (looked in {looked})"
    )


def dataset_folder(data_root: str | os.PathLike[str] | None, folder: str, title: str) -> Path:
    """The existing folder ``folder`` of one dataset under :func:`resolve_data_root`.

    Raises
    ------
    FileNotFoundError
        If the data root or the dataset's folder (named ``title`` in the message) is missing.
    """
    path = resolve_data_root(data_root) / folder
    if not path.is_dir():
        raise FileNotFoundError(f"{title} folder {str(path)!r} does not exist")
    return path


def read_csv_rows(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, checking that ``required`` columns exist.

    Parameters
    ----------
    path : Path
        The CSV file (UTF-8, optional BOM).
    required : iterable of str
        Column names that must be present.

    Returns
    -------
    list of dict
        One dict per row, column name to raw string.
    """
    if not path.is_file():
        raise FileNotFoundError(f"label file {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {header}")
        return list(reader)


def check_files_exist(root: Path, relative_paths: Sequence[str]) -> None:
    """Raise FileNotFoundError naming the first missing images, if any are missing."""
    missing = [p for p in relative_paths if not (root / p).is_file()]
    if missing:
        shown = ", ".join(repr(p) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FileNotFoundError(
            f"{len(missing)} image(s) listed in the labels are missing under {str(root)!r}: "
            f"{shown}{more}"
        )


def dataset_hash(ds: FaceDataset) -> str:
    """SHA-256 of a dataset's content, for model cards.

    The digest covers the relative image paths, sorted, each with its target written with 9
    significant digits; it ignores ``root`` and ``name``, so a relocated copy hashes the same.

    Parameters
    ----------
    ds : FaceDataset

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    for path, target in sorted(zip(ds.relative_paths, ds.targets.tolist(), strict=True)):
        h.update(f"{path}\t{target:.9g}\n".encode())
    return h.hexdigest()


def _read_image(path: Path, grayscale: bool, size: tuple[int, int] | None) -> np.ndarray:
    # Imported lazily (nothing heavy at import); the one decoder of the pipeline is used so that
    # training images are read exactly as images at inference are (EXIF orientation, RGB).
    import cv2

    from facecore.io import load_image

    img = load_image(path)
    if size is not None:
        img = cv2.resize(img, (int(size[0]), int(size[1])), interpolation=cv2.INTER_AREA)
    if grayscale:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return img


def iter_images(
    source: FaceDataset | Iterable[str | os.PathLike[str]],
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    grayscale: bool = False,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Decode images lazily, one at a time.

    Parameters
    ----------
    source : FaceDataset or iterable of path-like
        A dataset (its ``paths`` are read) or image paths.
    indices : array-like of int, optional
        Rows of a dataset to read, in that order (only with a dataset).
    grayscale : bool, default False
        Return ``(H, W)`` luminance instead of ``(H, W, 3)`` RGB.
    size : (width, height), optional
        Resize every image to this size (``cv2.INTER_AREA``).

    Yields
    ------
    ndarray of shape (H, W, 3) or (H, W), uint8
        The image as :func:`facecore.io.load_image` decodes it (EXIF-rotated RGB), then resized
        and converted to grey (BT.601 luma) if asked.
    """
    if isinstance(source, FaceDataset):
        paths: Iterable[Path] = source.paths
        if indices is not None:
            all_paths = source.paths
            paths = (all_paths[int(i)] for i in np.asarray(indices).ravel())
    else:
        if indices is not None:
            raise ValueError("indices can only be used with a FaceDataset")
        paths = (Path(p) for p in source)
    for path in paths:
        yield _read_image(path, grayscale, size)
