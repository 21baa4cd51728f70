"""MEBeauty loader (the copy in ``shared/data/mebeauty``).

Dataset: I. Lebedeva, Y. Guo, F. Ying, "MEBeauty: a multi-ethnic facial beauty dataset in-the-wild",
Neural Computing and Applications, 2021. It complements SCUT-FBP5500 for the facial-beauty
prediction of B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and
beautification models", Pattern Analysis and Applications 21(2), 2018.

Layout read here: ``labels.csv`` (``image,split,mean_score``; score 1-10), ``ratings.csv``
(``image,rater,rating``: every individual rating) and ``images/<image>`` where ``<image>`` is
``<gender>/<ethnicity>/<file>``. The group of an image is ``"<gender>/<ethnicity>"``.

Departures from the files, and why:

* ``labels.csv`` lists one image (``female/asian/asian-girl-4819726_1920.jpg`` in this copy) on
  several rows, with two different scores and in both ``train`` and ``val``. A dataset with one
  row per image is what cross-validation needs (a repeated image would leak between folds), so
  repeated rows are merged: the target is the mean of the rows' scores and the split is the first
  row's. Each merge is logged as a warning.
* A few cells of ``ratings.csv`` hold a value that is already an average (e.g. 6.5), and 26
  (image, rater) pairs occur twice; all ratings are kept as given. :meth:`Ratings.matrix` averages
  repeated pairs.
* ``mean_score`` is kept as published, although it differs slightly (by up to 0.12) from the
  mean of the ratings in ``ratings.csv`` for some images.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from facecore.datasets.base import (
    NON_COMMERCIAL,
    FaceDataset,
    Ratings,
    check_files_exist,
    dataset_folder,
    read_csv_rows,
)

__all__ = ["load_mebeauty"]

logger = logging.getLogger(__name__)

_FOLDER = "mebeauty"


def _read_ratings(path: Path, index: dict[str, int]) -> Ratings:
    rows = read_csv_rows(path, ["image", "rater", "rating"])
    rater_pos: dict[str, int] = {}
    image_index: list[int] = []
    rater_index: list[int] = []
    values: list[float] = []
    unknown = 0
    for row in rows:
        i = index.get(row["image"])
        if i is None:
            unknown += 1
            continue
        try:
            values.append(float(row["rating"]))
        except ValueError as exc:
            raise ValueError(f"{path}: non-numeric rating {row['rating']!r}") from exc
        image_index.append(i)
        rater_index.append(rater_pos.setdefault(row["rater"], len(rater_pos)))
    if unknown:
        logger.warning("%s: %d rating(s) of images not in labels.csv were skipped", path, unknown)
    return Ratings(
        image_index=np.array(image_index, dtype=np.int64),
        rater_index=np.array(rater_index, dtype=np.int64),
        rating=np.array(values, dtype=np.float64),
        rater_ids=tuple(rater_pos),
    )


def load_mebeauty(
    data_root: str | os.PathLike[str] | None = None,
    *,
    ratings: bool = True,
    check_files: bool = True,
) -> FaceDataset:
    """Load MEBeauty: image paths, mean scores, splits, groups and per-rater ratings.

    Parameters
    ----------
    data_root : path-like, optional
        Folder holding ``mebeauty/``; see :func:`facecore.datasets.resolve_data_root`.
    ratings : bool, default True
        Read ``ratings.csv`` into ``FaceDataset.ratings``.
    check_files : bool, default True
        Check that every listed image exists.

    Returns
    -------
    FaceDataset
        ``name="mebeauty"``, one row per distinct image (see the module notes), ``targets`` of
        shape (N,) (mean score 1-10), ``splits`` of shape (N,) (``"train"``/``"val"``),
        ``groups`` of shape (N,) (``"<gender>/<ethnicity>"``), ``meta`` with ``"gender"`` and
        ``"ethnicity"``, and ``ratings`` in long form (or None).

    Raises
    ------
    FileNotFoundError
        If the data folder, a label file or (with ``check_files``) an image is missing.
    ValueError
        If a label file is malformed.
    """
    folder = dataset_folder(data_root, _FOLDER, "MEBeauty")
    label_path = folder / "labels.csv"
    rows = read_csv_rows(label_path, ["image", "split", "mean_score"])
    scores: dict[str, list[float]] = defaultdict(list)
    splits: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        try:
            scores[row["image"]].append(float(row["mean_score"]))
        except ValueError as exc:
            raise ValueError(f"{label_path}: non-numeric mean_score for {row['image']!r}") from exc
        splits[row["image"]].append(row["split"])
    names = list(scores)  # first-occurrence order
    for name in names:
        if len(scores[name]) > 1:
            logger.warning(
                "%s: %r is listed %d times (scores %s, splits %s); merged into one row with the "
                "mean score and split %r",
                label_path,
                name,
                len(scores[name]),
                sorted(set(scores[name])),
                sorted(set(splits[name])),
                splits[name][0],
            )
    parts = [n.split("/") for n in names]
    bad = [n for n, p in zip(names, parts, strict=True) if len(p) < 3]
    if bad:
        raise ValueError(
            f"{label_path}: image paths not of the form gender/ethnicity/file: {bad[:3]}"
        )
    image_root = folder / "images"
    if check_files:
        check_files_exist(image_root, names)
    rat = (
        _read_ratings(folder / "ratings.csv", {n: i for i, n in enumerate(names)})
        if ratings
        else None
    )
    logger.debug("loaded MEBeauty: %d images from %s", len(names), folder)
    return FaceDataset(
        name="mebeauty",
        root=image_root,
        relative_paths=tuple(names),
        targets=np.array([np.mean(scores[n]) for n in names]),
        target_name="mean_score",
        licence=NON_COMMERCIAL,
        groups=np.array([f"{p[0]}/{p[1]}" for p in parts]),
        splits=np.array([splits[n][0] for n in names]),
        ratings=rat,
        meta={
            "gender": np.array([p[0] for p in parts]),
            "ethnicity": np.array([p[1] for p in parts]),
        },
    )
