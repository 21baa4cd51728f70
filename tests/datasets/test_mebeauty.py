"""MEBeauty loader on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecore.datasets import NON_COMMERCIAL, FaceDataset, dataset_hash, load_mebeauty

DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def meb() -> FaceDataset:
    if not (DATA / "mebeauty").is_dir():
        pytest.skip(f"MEBeauty not found under {DATA}")
    return load_mebeauty(DATA)


def test_contents(meb: FaceDataset) -> None:
    n = len(meb)
    assert n > 0 and meb.name == "mebeauty" and meb.licence == NON_COMMERCIAL
    assert len(set(meb.relative_paths)) == n  # one row per image
    assert meb.targets.min() >= 1.0 and meb.targets.max() <= 10.0
    assert meb.splits is not None and set(meb.splits) <= {"train", "val", "test"}
    assert meb.groups is not None and meb.landmarks is None
    for path, group, gender in zip(meb.relative_paths, meb.groups, meb.meta["gender"], strict=True):
        assert path.startswith(group + "/")
        assert gender in ("female", "male")


def test_ratings(meb: FaceDataset) -> None:
    r = meb.ratings
    assert r is not None and len(r) > len(meb) and r.n_raters > 1
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


def test_without_ratings() -> None:
    if not (DATA / "mebeauty").is_dir():
        pytest.skip(f"MEBeauty not found under {DATA}")
    ds = load_mebeauty(DATA, ratings=False, check_files=False)
    assert ds.ratings is None and len(ds) > 0
