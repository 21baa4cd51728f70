"""Labelled face datasets as typed, read-only records.

``load_scut_fbp5500``, ``load_mebeauty``, ``load_utkface`` and ``load_folder`` return a
:class:`FaceDataset`; ``iter_images`` decodes its images lazily and ``dataset_hash``
fingerprints it for model cards. All bundled labelled sets are for non-commercial research only.
"""

from facecore.datasets.base import (
    DATA_ENV_VAR,
    NON_COMMERCIAL,
    FaceDataset,
    Ratings,
    dataset_hash,
    iter_images,
    resolve_data_root,
)
from facecore.datasets.folder import load_folder
from facecore.datasets.mebeauty import load_mebeauty
from facecore.datasets.scut import SCUT_GROUPS, load_scut_fbp5500
from facecore.datasets.utkface import load_utkface

__all__ = [
    "DATA_ENV_VAR",
    "NON_COMMERCIAL",
    "SCUT_GROUPS",
    "FaceDataset",
    "Ratings",
    "dataset_hash",
    "iter_images",
    "load_folder",
    "load_mebeauty",
    "load_scut_fbp5500",
    "load_utkface",
    "resolve_data_root",
]
