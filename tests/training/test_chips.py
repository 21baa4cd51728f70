"""The chip cache on fixture photos: equals face_chips, is reused, resumes; frozen maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facecore.analyzer import FaceAnalyzer
from facecore.datasets import FaceDataset, iter_images
from facecore.descriptor import face_chips
from facecore.training import chips as chips_mod
from facecore.training.chips import (
    DatasetChips,
    chip_cache_key,
    chip_cache_path,
    crop_batches,
    extract_dataset_chips,
    frozen_maps,
    load_face_resnet,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PHOTOS = [
    "obama.jpg",
    "biden.jpg",
    "two_people.jpg",
    "dlib_dog.jpg",  # no face
    "obama_small.jpg",
    "dlib_faces/2008_001009.jpg",
    "dlib_faces/2008_002079.jpg",
    "dlib_faces/2009_004587.jpg",
]


class CountingAnalyzer(FaceAnalyzer):
    """The default chip analyzer, counting its calls and failing at call ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(stages=("landmarks",), max_faces=1)
        self.calls = 0
        self.fail_at = fail_at

    def analyze(self, image, stages=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return super().analyze(image, stages)


@pytest.fixture(scope="module")
def dataset() -> FaceDataset:
    return FaceDataset(
        name="fixtures", root=FIXTURES, relative_paths=PHOTOS, targets=np.arange(len(PHOTOS))
    )


@pytest.fixture(scope="module")
def built(dataset: FaceDataset, tmp_path_factory: pytest.TempPathFactory) -> DatasetChips:
    cache = tmp_path_factory.mktemp("chips")
    return extract_dataset_chips(dataset, cache_dir=cache, chunk_size=3)


@pytest.fixture(scope="module")
def resnet():
    return load_face_resnet()


def test_chips_are_the_descriptors_chips_of_the_largest_face(
    dataset: FaceDataset, built: DatasetChips
) -> None:
    assert built.chips.shape == (8, 150, 150, 3) and built.chips.dtype == np.uint8
    assert built.has_face.tolist() == [True, True, True, False, True, True, True, True]
    assert not built.from_cache and built.seconds > 0
    assert built.cache_path is not None and built.cache_path.is_file()
    assert not list(built.cache_path.parent.glob("*.chunks"))  # merged, chunks removed
    assert built.cache_path.name.startswith("fixtures-")
    reference = FaceAnalyzer(stages=("landmarks",), max_faces=1)
    for i, image in enumerate(iter_images(dataset)):
        faces = reference.analyze(image)
        if not built.has_face[i]:
            assert faces == [] and not built.chips[i].any() and built.detector[i] == ""
            assert np.isnan(built.landmarks[i]).all()
            continue
        np.testing.assert_array_equal(built.chips[i], face_chips(image, [faces[0]])[0])
        np.testing.assert_allclose(built.landmarks[i], faces[0].landmarks)
        assert built.detector[i] == faces[0].detector


def test_crop_batches_cut_each_face_by_its_landmarks(
    dataset: FaceDataset, built: DatasetChips
) -> None:
    """The 7 photos with a face in batches of 3 (3, 3, 1); the trunk's own chip spec gives the
    cached chips back, since they were cut by the same landmarks."""
    from facecore.trunk import chip_spec

    batches = list(crop_batches(dataset, built, chip_spec(), 3))
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), built.chips[built.has_face])


def test_second_call_reads_the_cache(
    dataset: FaceDataset, built: DatasetChips, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("the analyzer must not run on a cached dataset")

    monkeypatch.setattr(FaceAnalyzer, "analyze", boom)
    monkeypatch.setattr(FaceAnalyzer, "load", boom)
    again = extract_dataset_chips(dataset, cache_dir=built.cache_path.parent, chunk_size=3)
    assert again.from_cache and again.key == built.key and again.seconds == built.seconds
    for name in ("chips", "has_face", "detector", "landmarks"):
        np.testing.assert_array_equal(getattr(again, name), getattr(built, name))


def test_interrupted_run_resumes_at_the_first_missing_chunk(
    dataset: FaceDataset, built: DatasetChips, tmp_path: Path
) -> None:
    analyzer = CountingAnalyzer(fail_at=5)  # in the second chunk of 3
    with pytest.raises(KeyboardInterrupt):
        extract_dataset_chips(dataset, analyzer=analyzer, cache_dir=tmp_path, chunk_size=3)
    final = chip_cache_path(dataset, chip_cache_key(analyzer), tmp_path)
    chunks = sorted(p.name for p in final.with_name(final.stem + ".chunks").iterdir())
    assert chunks == ["chunk_0000000.npz"] and not final.exists()

    resumed = CountingAnalyzer()
    res = extract_dataset_chips(dataset, analyzer=resumed, cache_dir=tmp_path, chunk_size=3)
    assert resumed.calls == 5  # photos 3..7 only
    assert final.is_file() and not final.with_name(final.stem + ".chunks").exists()
    for name in ("chips", "has_face", "detector", "landmarks"):
        np.testing.assert_array_equal(getattr(res, name), getattr(built, name))


def test_frozen_maps_equal_the_networks_nodes(
    built: DatasetChips, resnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chips = built.chips[built.has_face]
    with torch.inference_mode():
        ref = resnet.forward_feature_dict(resnet.preprocess(chips))
    maps = frozen_maps(chips, resnet, upto="stage3", batch_size=3)
    assert maps.shape == (7, 128, 8, 8) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, ref["stage3"].numpy(), atol=1e-5, rtol=0)
    stem = frozen_maps(chips[:2], resnet, upto="stem")
    np.testing.assert_allclose(stem, ref["stem"][:2].numpy(), atol=1e-5, rtol=0)

    half = frozen_maps(chips, resnet, upto="stage2", dtype="float16", cache_dir=tmp_path, key="k")
    assert half.shape == (7, 64, 17, 17) and half.dtype == np.float16
    # float16 rounding: measured relative error <= 4.9e-4 on values up to 16.
    np.testing.assert_allclose(half, ref["stage2"].numpy(), rtol=1e-3, atol=1e-4)

    def no_model():
        raise AssertionError("cached maps must not load the network")

    monkeypatch.setattr(chips_mod, "load_face_resnet", no_model)
    cached = frozen_maps(chips, upto="stage2", dtype="float16", cache_dir=tmp_path, key="k")
    assert isinstance(cached, np.memmap) and not cached.flags.writeable
    np.testing.assert_array_equal(cached, half)
    with pytest.raises(ValueError, match="key"):
        frozen_maps(chips, resnet, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="upto"):
        frozen_maps(chips, resnet, upto="stage9")
