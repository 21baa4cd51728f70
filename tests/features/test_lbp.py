"""LBP block histograms and blocked LBP: shapes, normalisation and invariance properties."""

from __future__ import annotations

import numpy as np
import pytest

from facecore.features import BlockedLBP, LBPHistogram, lbp_histogram, lbp_n_bins


def texture(h: int = 40, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


@pytest.mark.parametrize("method", ["uniform", "nri_uniform", "default"])
def test_constant_image_is_one_bin(method: str) -> None:
    img = np.full((32, 32), 77, dtype=np.uint8)
    hist = lbp_histogram(img, n_points=8, radius=2, grid=(2, 2), method=method)
    blocks = hist.reshape(4, lbp_n_bins(8, method))
    np.testing.assert_allclose(blocks.max(axis=1), 1.0)  # all mass in one bin per block
    assert np.count_nonzero(blocks, axis=1).tolist() == [1, 1, 1, 1]


def test_shapes_and_normalisation() -> None:
    X = np.stack([texture(seed=s) for s in range(3)])
    est = LBPHistogram(radii=(1, 2), n_points=(8, 12), grid=(2, 3))
    out = est.fit_transform(X)
    assert out.shape == (3, est.n_features_out) == (3, 6 * (10 + 14))
    assert len(est.get_feature_names_out()) == out.shape[1]
    sums = np.concatenate(
        [out[:, : 6 * 10].reshape(3, 6, 10), out[:, 6 * 10 :].reshape(3, 6, 14)], 2
    )
    np.testing.assert_allclose(sums.sum(axis=2), 2.0)  # two L1-normalised histograms per block
    l2 = LBPHistogram(radii=(1,), grid=(1, 1), norm="l2").fit_transform(X)
    np.testing.assert_allclose(np.linalg.norm(l2, axis=1), 1.0)


def test_rgb_and_lists_of_sizes() -> None:
    rgb = np.repeat(texture()[:, :, None], 3, axis=2)
    est = LBPHistogram(radii=(1,), grid=(2, 2))
    np.testing.assert_allclose(est.transform(rgb[None]), est.transform(texture()[None]))
    out = est.transform([texture(30, 40), texture(50, 20)])
    assert out.shape == (2, 4 * 10)


def test_rotation_invariance_of_uniform_lbp() -> None:
    img = texture(40, 40)
    for n_points, radius in [(8, 1), (8, 2), (16, 2)]:
        a = lbp_histogram(img, n_points=n_points, radius=radius)
        b = lbp_histogram(np.rot90(img), n_points=n_points, radius=radius)
        np.testing.assert_allclose(a, b)
    # with a 2x2 grid the block histograms are permuted by the rotation
    a = lbp_histogram(img, grid=(2, 2)).reshape(2, 2, -1)
    b = lbp_histogram(np.rot90(img), grid=(2, 2)).reshape(2, 2, -1)
    for bi in range(2):
        for bj in range(2):
            np.testing.assert_allclose(b[bi, bj], a[bj, 1 - bi])


def test_monotonic_grey_scale_invariance() -> None:
    img = texture() // 2  # 0..127
    np.testing.assert_allclose(
        lbp_histogram(img, grid=(3, 3)), lbp_histogram((2 * img + 1).astype(np.uint8), grid=(3, 3))
    )


def test_blocked_lbp_levels() -> None:
    img = texture(48, 48)
    est = BlockedLBP(levels=(1, 2, 4), radii=(1,))
    out = est.fit_transform(img[None])
    assert out.shape == (1, (1 + 4 + 16) * 10) == (1, est.n_features_out)
    np.testing.assert_allclose(out[0, :10], lbp_histogram(img, radius=1))
    np.testing.assert_allclose(out[0, 10:50], lbp_histogram(img, radius=1, grid=(2, 2)))


@pytest.mark.parametrize(
    ("est", "X", "match"),
    [
        (LBPHistogram(), np.zeros((2, 20, 20)), "uint8"),
        (LBPHistogram(grid=(30, 30)), np.zeros((1, 20, 20), np.uint8), "smaller"),
        (LBPHistogram(method="ror?"), np.zeros((1, 20, 20), np.uint8), "method"),
        (BlockedLBP(levels=()), np.zeros((1, 20, 20), np.uint8), "levels"),
        (LBPHistogram(radii=(1, 2), n_points=(8,)), np.zeros((1, 20, 20), np.uint8), "n_points"),
        (LBPHistogram(), np.zeros((20, 20), np.uint8), "batch"),
    ],
)
def test_validation(est: LBPHistogram, X: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        est.fit(X).transform(X)
