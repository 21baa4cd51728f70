"""UTKFace (Zhang, Song, Qi, "Age Progression/Regression by Conditional Adversarial
Autoencoder", CVPR 2017): aligned and cropped 200x200 faces labelled with age, gender and race.

The shared copy (``utkface/``) holds the images under ``images/`` and ``labels.csv`` with columns
``file, age, gender, race`` (gender 0 male, 1 female; race 0 White, 1 Black, 2 Asian, 3 Indian,
4 Others, as the dataset's authors code them). Non-commercial research use only.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from facecore.datasets.base import (
    NON_COMMERCIAL,
    FaceDataset,
    check_files_exist,
    dataset_folder,
    read_csv_rows,
)

__all__ = ["GENDERS", "RACES", "load_utkface"]

logger = logging.getLogger(__name__)

_FOLDER = "utkface"
#: Names of UTKFace's gender codes.
GENDERS = ("male", "female")
#: Names of UTKFace's race codes (the authors' own categories).
RACES = ("white", "black", "asian", "indian", "other")


def load_utkface(
    data_root: str | os.PathLike[str] | None = None, *, check_files: bool = True
) -> FaceDataset:
    """Load UTKFace: image paths, ages, and gender and race per image.

    Parameters
    ----------
    data_root : path-like, optional
        Folder holding ``utkface/``; see :func:`facecore.datasets.resolve_data_root`.
    check_files : bool, default True
        Check that every listed image exists.

    Returns
    -------
    FaceDataset
        ``name="utkface"``, ``targets`` the age in years (N,), ``groups`` ``"<gender>/<race>"``,
        ``meta`` with ``"gender"`` and ``"race"`` (names from :data:`GENDERS` and :data:`RACES`).

    Raises
    ------
    FileNotFoundError
        If the data folder, the label file or (with ``check_files``) an image is missing.
    ValueError
        If a row has a non-numeric or out-of-range value.
    """
    folder = dataset_folder(data_root, _FOLDER, "UTKFace")
    label_path = folder / "labels.csv"
    rows = read_csv_rows(label_path, ["file", "age", "gender", "race"])
    names, ages, genders, races = [], [], [], []
    for i, row in enumerate(rows, start=2):
        try:
            age, gender, race = int(row["age"]), int(row["gender"]), int(row["race"])
        except ValueError:
            raise ValueError(f"{label_path}:{i}: non-integer age, gender or race") from None
        if not (0 <= age <= 130 and gender in (0, 1) and 0 <= race < len(RACES)):
            raise ValueError(f"{label_path}:{i}: age, gender or race out of range: {row}")
        names.append(row["file"])
        ages.append(age)
        genders.append(GENDERS[gender])
        races.append(RACES[race])
    image_root = folder / "images"
    if check_files:
        check_files_exist(image_root, names)
    logger.debug("loaded UTKFace: %d images from %s", len(names), folder)
    g, r = np.array(genders), np.array(races)
    return FaceDataset(
        name="utkface",
        root=image_root,
        relative_paths=tuple(names),
        targets=np.array(ages, dtype=np.float64),
        target_name="age",
        licence=NON_COMMERCIAL,
        groups=np.char.add(np.char.add(g, "/"), r),
        meta={"gender": g, "race": r},
    )
