"""Generic folder + CSV loader, data-root resolution and hashing, on generated files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecore.datasets import (
    DATA_ENV_VAR,
    FaceDataset,
    dataset_hash,
    iter_images,
    load_folder,
    resolve_data_root,
)


def _make_folder(root: Path, column: str = "path") -> Path:
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True)
    lines = [f"{column},score,who"]
    for i in range(4):
        arr = rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "imgs" / f"f{i}.png")
        lines.append(f"imgs/f{i}.png,{1.5 + i},{'ab'[i % 2]}")
    csv = root / "labels.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv


def test_load_folder(tmp_path: Path) -> None:
    csv = _make_folder(tmp_path)
    ds = load_folder(csv, "score", group_column="who", meta_columns=["who"])
    assert isinstance(ds, FaceDataset)
    assert len(ds) == 4 and ds.name == "labels" and ds.target_name == "score"
    np.testing.assert_allclose(ds.targets, [1.5, 2.5, 3.5, 4.5])
    assert list(ds.groups) == ["a", "b", "a", "b"]
    assert ds.root == tmp_path and ds.relative_paths[0] == "imgs/f0.png"
    shapes = [img.shape for img in iter_images(ds)]
    assert shapes == [(20, 30, 3), (21, 30, 3), (22, 30, 3), (23, 30, 3)]
    assert next(iter_images(ds.paths, grayscale=True)).shape == (20, 30)


def test_image_column_and_root(tmp_path: Path) -> None:
    csv = _make_folder(tmp_path / "a", column="image")
    moved = tmp_path / "labels_elsewhere.csv"
    shutil.copy(csv, moved)
    ds = load_folder(moved, "score", image_root=tmp_path / "a", name="mine")
    assert ds.name == "mine" and len(ds) == 4


def test_hash_ignores_root_and_order_but_not_targets(tmp_path: Path) -> None:
    ds1 = load_folder(_make_folder(tmp_path / "one"), "score")
    ds2 = load_folder(_make_folder(tmp_path / "two"), "score")
    assert dataset_hash(ds1) == dataset_hash(ds2)
    assert dataset_hash(ds1.subset([3, 2, 1, 0])) == dataset_hash(ds1)
    changed = FaceDataset(
        name="x", root=ds1.root, relative_paths=ds1.relative_paths, targets=ds1.targets + 0.01
    )
    assert dataset_hash(changed) != dataset_hash(ds1)


@pytest.mark.parametrize(
    ("header", "row", "error", "match"),
    [
        ("file,score", "imgs/f0.png,1", ValueError, "'image' or 'path'"),
        ("path,other", "imgs/f0.png,1", ValueError, "missing column"),
        ("path,score", "imgs/f0.png,high", ValueError, "not a number"),
        ("path,score", "imgs/f0.png,", ValueError, "not a number"),
        ("path,score", "imgs/nothere.png,1", FileNotFoundError, "nothere.png"),
    ],
)
def test_bad_csv(tmp_path: Path, header: str, row: str, error: type[Exception], match: str) -> None:
    _make_folder(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{header}\n{row}\n", encoding="utf-8")
    with pytest.raises(error, match=match):
        load_folder(bad, "score")


def test_duplicate_images_rejected(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    bad = tmp_path / "dup.csv"
    bad.write_text("path,score\nimgs/f0.png,1\nimgs/f0.png,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="more than once"):
        load_folder(bad, "score")


def test_resolve_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_root(tmp_path) == tmp_path.resolve()
    with pytest.raises(FileNotFoundError, match="data_root"):
        resolve_data_root(tmp_path / "missing")
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert resolve_data_root() == tmp_path.resolve()
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=DATA_ENV_VAR):
        resolve_data_root()


def test_dataset_validation() -> None:
    with pytest.raises(ValueError, match="targets"):
        FaceDataset(name="x", root=Path("."), relative_paths=("a.jpg",), targets=[1.0, 2.0])
    with pytest.raises(ValueError, match="landmarks"):
        FaceDataset(
            name="x",
            root=Path("."),
            relative_paths=("a.jpg",),
            targets=[1.0],
            landmarks=np.zeros((1, 68, 3)),
        )
