"""MEBeauty loader on the real data in ../shared/data (skipped when absent; fails under CI).

The shared copy holds 1,866 images and 1,869 label rows: one image is listed four times, and the
loader merges it into one row (../shared/data/README.md says 1,869 faces, counting rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecore.datasets import NON_COMMERCIAL, FaceDataset, dataset_hash, load_mebeauty

pytestmark = pytest.mark.data

N_IMAGES, N_LABEL_ROWS = 1866, 1869
SPLITS = {"train": 1655, "val": 211}
GENDERS = {"female": 1052, "male": 814}
N_RATINGS, N_RATERS = 45522, 360


@pytest.fixture(scope="module")
def root(shared) -> Path:
    return shared("mebeauty").parent


@pytest.fixture(scope="module")
def meb(root: Path) -> FaceDataset:
    return load_mebeauty(root)


def counts(values) -> dict[str, int]:
    keys, n = np.unique(values, return_counts=True)
    return dict(zip(keys.tolist(), n.tolist(), strict=True))


def test_contents(meb: FaceDataset, root: Path) -> None:
    n = len(meb)
    assert n == N_IMAGES and meb.name == "mebeauty" and meb.licence == NON_COMMERCIAL
    rows = (root / "mebeauty" / "labels.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(rows) - 1 == N_LABEL_ROWS
    assert len(list((root / "mebeauty" / "images").rglob("*.jpg"))) == N_IMAGES
    assert counts(meb.splits) == SPLITS and counts(meb.meta["gender"]) == GENDERS
    assert len(set(meb.relative_paths)) == n  # one row per image
    assert meb.targets.min() >= 1.0 and meb.targets.max() <= 10.0
    assert meb.splits is not None and set(meb.splits) <= {"train", "val", "test"}
    assert meb.groups is not None and meb.landmarks is None
    for path, group, gender in zip(meb.relative_paths, meb.groups, meb.meta["gender"], strict=True):
        assert path.startswith(group + "/")
        assert gender in ("female", "male")


def test_ratings(meb: FaceDataset) -> None:
    r = meb.ratings
    assert r is not None and (len(r), r.n_raters) == (N_RATINGS, N_RATERS)
    assert r.image_index.min() >= 0 and r.image_index.max() < len(meb)
    assert r.rating.min() >= 1.0 and r.rating.max() <= 10.0
    m = r.matrix(len(meb))
    assert m.shape == (len(meb), r.n_raters)
    rated = ~np.isnan(m).all(axis=1)
    assert rated.mean() > 0.99
    # the published mean score is (close to) the mean of the individual ratings
    mean = np.nanmean(m[rated], axis=1)
    assert np.corrcoef(mean, meb.targets[rated])[0, 1] > 0.98


def test_subset_keeps_ratings_aligned(meb: FaceDataset) -> None:
    idx = [7, 2]
    sub = meb.subset(idx)
    assert sub.ratings is not None
    for new, old in enumerate(idx):
        got = np.sort(sub.ratings.rating[sub.ratings.image_index == new])
        want = np.sort(meb.ratings.rating[meb.ratings.image_index == old])
        np.testing.assert_array_equal(got, want)
    assert dataset_hash(sub) != dataset_hash(meb)


def test_without_ratings(root: Path) -> None:
    ds = load_mebeauty(root, ratings=False, check_files=False)
    assert ds.ratings is None and len(ds) == N_IMAGES
