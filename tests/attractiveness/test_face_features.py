"""FaceFeatureExtractor: block shapes and contents on a real face, errors, layout helpers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from facecore.attractiveness.face_features import (
    BLOCK_NAMES,
    FaceFeatureExtractor,
    block_columns,
    layout_width,
    stack_blocks,
)
from facecore.features import geometric_features
from facecore.io import load_image


@pytest.fixture(scope="module")
def face_and_image(analyzer, one_face_photo):
    image = load_image(one_face_photo)
    faces = analyzer.analyze(image)
    assert faces, "the fixture photo must have a face"
    return image, faces[0]


def test_every_block_has_its_shape_and_content(face_and_image) -> None:
    image, face = face_and_image
    ex = FaceFeatureExtractor()
    blocks = ex.extract(image, face)
    shapes = ex.block_shapes()
    assert tuple(blocks) == BLOCK_NAMES
    for name, value in blocks.items():
        assert value.shape == shapes[name], name
        assert np.all(np.isfinite(value)), name
    assert blocks["pcanet"].dtype == np.uint8
    np.testing.assert_array_equal(blocks["deep"], face.features["trunk"])
    np.testing.assert_array_equal(blocks["deep128"], face.embedding)
    np.testing.assert_allclose(blocks["geometric"], geometric_features(face.landmarks), rtol=1e-6)
    # LBP histograms are per-block L1-normalised: 3 radii x 16 blocks for LBP, 2 x 21 for BLBP.
    assert blocks["lbp"].sum() == pytest.approx(3 * 16, rel=1e-5)
    assert blocks["blbp"].sum() == pytest.approx(2 * 21, rel=1e-5)
    # The crop is a face, not a flat border: it has contrast.
    assert blocks["pcanet"].std() > 20


def test_extraction_is_deterministic_and_selectable(face_and_image) -> None:
    image, face = face_and_image
    ex = FaceFeatureExtractor()
    a = ex.extract(image, face, ["geometric", "lbp"])
    b = ex.extract(image, face, ["geometric", "lbp"])
    assert list(a) == ["geometric", "lbp"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_crop_follows_the_face(face_and_image) -> None:
    """The aligned crop of a shifted image is the same face (alignment uses the landmarks)."""
    image, face = face_and_image
    ex = FaceFeatureExtractor()
    shifted = np.ascontiguousarray(np.roll(image, (7, -5), axis=(0, 1)))
    moved = face.evolve(landmarks=face.landmarks + np.array([-5, 7], np.float32))
    a = ex.aligned_gray(image, face).astype(float)
    b = ex.aligned_gray(shifted, moved).astype(float)
    centre = slice(16, -16)
    assert np.abs(a[centre, centre] - b[centre, centre]).mean() < 2.0


def test_missing_inputs_are_clear_errors(face_and_image) -> None:
    image, face = face_and_image
    ex = FaceFeatureExtractor()
    with pytest.raises(ValueError, match="trunk"):
        ex.extract(image, face.evolve(features={}), ["deep"])
    with pytest.raises(ValueError, match="landmarks"):
        ex.extract(image, face.evolve(landmarks=None), ["geometric"])
    with pytest.raises(ValueError, match="unknown feature block"):
        ex.extract(image, face, ["colour"])
    with pytest.raises(ValueError, match="RGB"):
        ex.extract(image[..., 0], face, ["lbp"])


def test_stack_blocks_round_trip(face_and_image) -> None:
    image, face = face_and_image
    ex = FaceFeatureExtractor()
    layout = ex.layout(["geometric", "pcanet", "deep128"])
    assert layout_width(layout) == 42 + 64 * 64 + 128
    X = ex.extract_faces(image, [face, face], [n for n, _ in layout])
    assert X.shape == (2, layout_width(layout)) and X.dtype == np.float32
    blocks = ex.extract(image, face, ["geometric", "pcanet", "deep128"])
    for name, shape in layout:
        np.testing.assert_array_equal(
            X[0, block_columns(layout, name)].reshape(shape), blocks[name].astype(np.float32)
        )
    with pytest.raises(ValueError, match="shape"):
        stack_blocks([{**blocks, "geometric": blocks["geometric"][:3]}], layout)
    with pytest.raises(KeyError):
        block_columns(layout, "lbp")


def test_version_tracks_settings_and_pickles() -> None:
    a, b = FaceFeatureExtractor(), FaceFeatureExtractor(crop_padding=0.2)
    assert a.version != b.version
    assert a == FaceFeatureExtractor() and a != b
    c = pickle.loads(pickle.dumps(b))
    assert c == b and c.version == b.version
    assert c.block_shapes() == b.block_shapes()
    with pytest.raises(ValueError):
        FaceFeatureExtractor(crop_size=64, pcanet_size=128)
