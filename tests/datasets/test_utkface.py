"""UTKFace loader: the real data in ../shared/data (skipped when absent; fails under CI), and its
checks on generated label files.

The shared copy holds 6,829 crops aged 1-110 (../shared/data/README.md says "ages 1-116", the
range of the full dataset; the oldest photos are among those held back).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecore.datasets import NON_COMMERCIAL, FaceDataset, dataset_hash, load_utkface
from facecore.datasets.utkface import GENDERS, RACES

N_IMAGES = 6829
AGE_RANGE = (1, 110)
#: Images per ten-year band: ages 0-9, 10-19, ..., 110-119.
DECADES = [2061, 870, 1008, 729, 455, 671, 460, 277, 232, 62, 2, 2]
GENDER_COUNTS = {"female": 3751, "male": 3078}
RACE_COUNTS = {"asian": 1073, "black": 277, "indian": 1026, "other": 776, "white": 3677}


def counts(values) -> dict[str, int]:
    keys, n = np.unique(values, return_counts=True)
    return dict(zip(keys.tolist(), n.tolist(), strict=True))


@pytest.fixture(scope="module")
def utk(shared) -> FaceDataset:
    return load_utkface(shared("utkface").parent)


@pytest.mark.data
def test_counts_ages_and_groups(utk: FaceDataset) -> None:
    assert len(utk) == N_IMAGES and len(set(utk.relative_paths)) == N_IMAGES
    assert utk.name == "utkface" and utk.licence == NON_COMMERCIAL and utk.target_name == "age"
    ages = utk.targets
    assert ages.dtype == np.float64 and np.array_equal(ages, np.round(ages))
    assert (ages.min(), ages.max()) == AGE_RANGE
    assert np.bincount((ages // 10).astype(int)).tolist() == DECADES
    assert counts(utk.meta["gender"]) == GENDER_COUNTS
    assert counts(utk.meta["race"]) == RACE_COUNTS
    assert set(utk.meta["gender"]) == set(GENDERS) and set(utk.meta["race"]) == set(RACES)
    np.testing.assert_array_equal(
        utk.groups, np.char.add(np.char.add(utk.meta["gender"], "/"), utk.meta["race"])
    )


@pytest.mark.data
def test_labels_agree_with_the_file_names(utk: FaceDataset) -> None:
    # UTKFace names its files age_gender_race_date.jpg; labels.csv must say the same
    for name, age, gender, race in zip(
        utk.relative_paths, utk.targets, utk.meta["gender"], utk.meta["race"], strict=True
    ):
        a, g, r = name.split("_")[:3]
        assert (int(a), GENDERS[int(g)], RACES[int(r)]) == (age, gender, race), name


@pytest.mark.data
def test_images_are_200px_crops(utk: FaceDataset) -> None:
    for i in (0, len(utk) // 2, len(utk) - 1):
        with Image.open(utk.paths[i]) as im:
            assert im.size == (200, 200)
    sub = utk.subset([5, 2])
    assert sub.relative_paths == (utk.relative_paths[5], utk.relative_paths[2])
    assert sub.meta["race"].tolist() == [utk.meta["race"][5], utk.meta["race"][2]]
    assert dataset_hash(sub) != dataset_hash(utk)


def _write(root: Path, rows: list[str], images: list[str]) -> Path:
    folder = root / "utkface"
    (folder / "images").mkdir(parents=True)
    for name in images:
        Image.new("RGB", (8, 8)).save(folder / "images" / name)
    (folder / "labels.csv").write_text("\n".join(["file,age,gender,race", *rows]) + "\n")
    return root


def test_loader_on_generated_labels(tmp_path: Path) -> None:
    root = _write(
        tmp_path, ["3_1_4_x.jpg,3,1,4", "40_0_0_y.jpg,40,0,0"], ["3_1_4_x.jpg", "40_0_0_y.jpg"]
    )
    ds = load_utkface(root)
    assert ds.targets.tolist() == [3.0, 40.0]
    assert ds.groups.tolist() == ["female/other", "male/white"]


@pytest.mark.parametrize(
    ("row", "match"),
    [("a.jpg,x,0,0", "non-integer"), ("a.jpg,30,2,0", "out of range"),
     ("a.jpg,30,0,5", "out of range"), ("a.jpg,131,0,0", "out of range")],
)  # fmt: skip
def test_bad_rows_are_refused(tmp_path: Path, row: str, match: str) -> None:
    root = _write(tmp_path, [row], ["a.jpg"])
    with pytest.raises(ValueError, match=match):
        load_utkface(root)


def test_missing_image_is_an_error(tmp_path: Path) -> None:
    root = _write(tmp_path, ["a.jpg,30,0,0", "b.jpg,31,1,1"], ["a.jpg"])
    with pytest.raises(FileNotFoundError):
        load_utkface(root)
    assert len(load_utkface(root, check_files=False)) == 2
