"""PCANet: filter properties, shapes, determinism and the hashing/histogram output."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from facecore.features import PCANet
from facecore.features.pcanet import _filter


def images(n: int = 10, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth random uint8 images (box-blurred noise), shape (n, size, size)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size + 4, size + 4))
    x = sum(x[:, i : i + size, j : j + size] for i in range(5) for j in range(5))
    x = (x - x.min()) / (x.max() - x.min())
    return (x * 255).astype(np.uint8)


def small(**kw: object) -> PCANet:
    params = dict(n_filters=(4, 4), patch_size=5, block_size=(8, 8), max_patches=3000)
    params.update(kw)
    return PCANet(**params)  # type: ignore[arg-type]


def test_filters_orthonormal_and_mean_free() -> None:
    net = small(random_state=0).fit(images())
    for filters in (net.filters1_, net.filters2_):
        flat = filters.reshape(len(filters), -1).astype(np.float64)
        np.testing.assert_allclose(flat @ flat.T, np.eye(len(flat)), atol=1e-5)
        np.testing.assert_allclose(flat.sum(axis=1), 0.0, atol=1e-5)
    assert np.all(np.diff(net.eigenvalues1_) <= 0)


def test_first_stage_matches_full_patch_pca() -> None:
    X = images(4, 16)
    net = small(max_patches=None).fit(X)
    patches = np.lib.stride_tricks.sliding_window_view(X.astype(np.float64) / 255, (5, 5), (1, 2))
    patches = patches.reshape(-1, 25)
    patches -= patches.mean(axis=1, keepdims=True)
    _, vecs = np.linalg.eigh(patches.T @ patches)
    top = vecs[:, ::-1][:, :4].T
    got = net.filters1_.reshape(4, 25)
    np.testing.assert_allclose(np.abs(np.sum(top * got, axis=1)), 1.0, atol=1e-4)


def test_filtering_is_patch_projection() -> None:
    X = images(3)
    net = small(random_state=0).fit(X)

    img = X[0].astype(np.float32) / 255
    out = _filter(img, net.filters1_[1])
    y, x = 10, 17
    expected = np.sum(net.filters1_[1] * img[y - 2 : y + 3, x - 2 : x + 3])
    assert out[y, x] == pytest.approx(expected, abs=1e-5)


def test_shapes_and_histograms() -> None:
    X = images()
    net = small(random_state=0).fit(X)
    out = net.transform(X)
    n_blocks = (32 // 8) ** 2
    assert net.n_blocks_ == n_blocks
    assert out.shape == (len(X), 4 * n_blocks * 2**4) == (len(X), net.n_features_out_)
    assert out.dtype == np.float32
    per_hist = out.reshape(len(X), 4, n_blocks, 16).sum(axis=3)
    np.testing.assert_array_equal(per_hist, 8 * 8)  # every block histogram counts its pixels
    assert len(net.get_feature_names_out()) == out.shape[1]


def test_overlap_rgb_and_sparse() -> None:
    X = images(4)
    net = small(block_overlap=0.5, random_state=1).fit(X)
    assert net.n_blocks_ == 7 * 7  # stride 4 on 32 px with 8 px blocks
    rgb = np.repeat(X[..., None], 3, axis=3)
    np.testing.assert_allclose(net.transform(rgb), net.transform(X), atol=0)
    sparse_net = small(block_overlap=0.5, random_state=1, sparse_output=True).fit(X)
    np.testing.assert_array_equal(sparse_net.transform(X).toarray(), net.transform(X))


def test_determinism() -> None:
    X = images()
    a = small(random_state=7).fit(X)
    b = small(random_state=7).fit(X)
    np.testing.assert_array_equal(a.filters1_, b.filters1_)
    np.testing.assert_array_equal(a.filters2_, b.filters2_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_validation() -> None:
    X = images(3)
    with pytest.raises(NotFittedError):
        small().transform(X)
    net = small(random_state=0).fit(X)
    with pytest.raises(ValueError, match="fitted on 32x32"):
        net.transform(images(2, 24))
    with pytest.raises(ValueError, match="odd"):
        small(patch_size=4).fit(X)
    with pytest.raises(ValueError, match="block_overlap"):
        small(block_overlap=1.0).fit(X)
    with pytest.raises(ValueError, match="block_size"):
        small(block_size=(64, 64)).fit(X)
    with pytest.raises(ValueError, match="shape"):
        small().fit(X[0])
