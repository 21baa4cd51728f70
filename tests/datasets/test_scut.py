"""SCUT-FBP5500 loader on the real data in ../shared/data (skipped when absent; fails under CI)."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from facecore.datasets import (
    NON_COMMERCIAL,
    SCUT_GROUPS,
    FaceDataset,
    dataset_hash,
    iter_images,
    load_scut_fbp5500,
    resolve_data_root,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()

pytestmark = pytest.mark.data


#: What ../shared/data/README.md and the model card state: 3,300 photos, per group.
N_PHOTOS = 3300
GROUP_COUNTS = {"AF": 1208, "AM": 1189, "CF": 465, "CM": 438}


@pytest.fixture(scope="module")
def scut(shared) -> FaceDataset:
    return load_scut_fbp5500(shared("scut-fbp5500").parent)


def test_contents(scut: FaceDataset) -> None:
    n = len(scut)
    assert n == N_PHOTOS
    groups, counts = np.unique(scut.groups, return_counts=True)
    assert dict(zip(groups.tolist(), counts.tolist(), strict=True)) == GROUP_COUNTS
    assert scut.name == "scut-fbp5500"
    assert scut.licence == NON_COMMERCIAL
    assert scut.targets.shape == (n,)
    assert scut.targets.min() >= 1.0 and scut.targets.max() <= 5.0
    assert len(set(scut.relative_paths)) == n
    assert set(scut.groups) <= set(SCUT_GROUPS)
    for path, group in zip(scut.relative_paths[:50], scut.groups[:50], strict=True):
        assert path.startswith(group)
    assert all(p.is_file() for p in scut.paths[:5])


def test_landmarks(scut: FaceDataset) -> None:
    lm = scut.landmarks
    assert lm is not None and lm.shape == (N_PHOTOS, 86, 2) and lm.dtype == np.float32
    assert np.isfinite(lm).all()
    # pixel coordinates of 350x350 images (a few points may stray just outside)
    assert np.mean((lm >= -5) & (lm <= 355)) > 0.999


def test_records_are_read_only(scut: FaceDataset) -> None:
    with pytest.raises(ValueError):
        scut.targets[0] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        scut.name = "other"  # type: ignore[misc]


def test_subset_and_hash(scut: FaceDataset) -> None:
    h = dataset_hash(scut)
    assert len(h) == 64 and int(h, 16) >= 0
    assert dataset_hash(load_scut_fbp5500(DATA, landmarks=False)) == h
    rev = scut.subset(np.arange(len(scut))[::-1])
    assert rev.relative_paths[0] == scut.relative_paths[-1]
    assert dataset_hash(rev) == h  # order does not matter
    sub = scut.subset([3, 1])
    assert sub.relative_paths == (scut.relative_paths[3], scut.relative_paths[1])
    np.testing.assert_array_equal(sub.landmarks[0], scut.landmarks[3])
    assert dataset_hash(sub) != h


def test_iter_images_is_lazy(scut: FaceDataset) -> None:
    it = iter_images(scut, [0, 1])
    first = next(it)
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    gray = list(itertools.islice(iter_images(scut, [0], grayscale=True, size=(64, 48)), 1))
    assert gray[0].shape == (48, 64)


def test_default_root_from_repo(monkeypatch: pytest.MonkeyPatch, data_root: Path) -> None:
    assert data_root.resolve() == DATA
    monkeypatch.delenv("FACECORE_DATA", raising=False)
    monkeypatch.chdir(REPO_ROOT)
    assert resolve_data_root() == DATA
    monkeypatch.setenv("FACECORE_DATA", str(DATA))
    assert len(load_scut_fbp5500(landmarks=False)) == N_PHOTOS
