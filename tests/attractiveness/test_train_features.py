"""The training set's feature blocks: the serving code's features, cached and read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecore.analyzer import FaceAnalyzer
from facecore.attractiveness.face_features import BLOCK_NAMES, FaceFeatureExtractor
from facecore.attractiveness.train_features import extract_dataset_features
from facecore.datasets import load_scut_fbp5500
from facecore.io import load_image


@pytest.mark.data
def test_features_are_the_served_ones_and_the_cache_gives_them_back(
    tmp_path: Path, data_root: Path
) -> None:
    ds = load_scut_fbp5500(data_root, landmarks=False).subset([0, 1, 2])
    extractor = FaceFeatureExtractor()
    feats = extract_dataset_features(ds, extractor, cache_dir=tmp_path)
    assert not feats.from_cache and feats.seconds > 0 and feats.has_face.tolist() == [True] * 3
    shapes = extractor.block_shapes()
    assert {b: v.shape for b, v in feats.blocks.items()} == {
        b: (3, *shapes[b]) for b in BLOCK_NAMES
    }
    assert feats.blocks["pcanet"].dtype == np.uint8 and feats.blocks["deep"].dtype == np.float32

    # The blocks of a photo are what serving computes for its largest face.
    image = load_image(ds.paths[1])
    face = FaceAnalyzer(stages=("trunk",), max_faces=1).analyze(image)[0]
    for name, value in extractor.extract(image, face).items():
        np.testing.assert_allclose(feats.blocks[name][1], value, rtol=1e-6, atol=1e-6)

    # One file, named by the dataset, its hash and the feature version; read back as written.
    (path,) = tmp_path.glob("*.npz")
    assert path.name.startswith("scut-fbp5500-") and f"-f{extractor.version}-a" in path.name
    again = extract_dataset_features(ds, extractor, cache_dir=tmp_path)
    assert again.from_cache and again.seconds == feats.seconds
    for name in BLOCK_NAMES:
        np.testing.assert_array_equal(again.blocks[name], feats.blocks[name])

    # Another subset is another file; no cache folder writes nothing.
    extract_dataset_features(ds.subset([0]), extractor, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not extract_dataset_features(ds.subset([0]), extractor, cache_dir=None).from_cache
    assert len(list(tmp_path.glob("*.npz"))) == 2
