"""Synthetic distortions: graded, deterministic, refusing bad input."""

import numpy as np
import pytest

from facecore.quality.distortions import LEVELS, N_LEVELS, distort, distortion_kinds


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    # A smooth face-like gradient with some texture, so blur and noise both change it.
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    base = 120 + 60 * np.sin(x / 7.0) * np.cos(y / 9.0)
    img = np.stack([base, base * 0.9, base * 0.8], axis=2)
    img += np.random.default_rng(0).normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_every_kind_has_its_levels():
    assert set(distortion_kinds()) == set(LEVELS)
    assert all(len(v) == N_LEVELS for v in LEVELS.values())
    assert set(distortion_kinds()) == {
        "blur", "noise", "jpeg", "downscale", "dark", "bright", "motion"
    }  # fmt: skip


@pytest.mark.parametrize("kind", distortion_kinds())
def test_levels_are_graded(crop, kind):
    # Level 0 is the crop itself; each stronger level moves the crop further from it.
    assert np.array_equal(distort(crop, kind, 0), crop)
    dist = [np.abs(distort(crop, kind, lv, seed=3).astype(float) - crop).mean() for lv in range(5)]
    assert dist[0] == 0.0
    assert all(b > a for a, b in zip(dist, dist[1:], strict=False)), dist


@pytest.mark.parametrize("kind", distortion_kinds())
def test_same_seed_same_output(crop, kind):
    a = distort(crop, kind, 2, seed=11)
    assert a.shape == crop.shape and a.dtype == np.uint8
    assert np.array_equal(a, distort(crop, kind, 2, seed=11))


def test_noise_depends_on_the_seed(crop):
    assert not np.array_equal(distort(crop, "noise", 2, seed=1), distort(crop, "noise", 2, seed=2))


def test_blur_removes_detail(crop):
    lap = [np.var(np.diff(distort(crop, "blur", lv).astype(float), axis=1)) for lv in (0, 4)]
    assert lap[1] < 0.2 * lap[0]


def test_exposure_moves_brightness(crop):
    assert distort(crop, "dark", 4).mean() < 0.2 * crop.mean()
    assert distort(crop, "bright", 4).mean() > 1.5 * crop.mean()


def test_bad_input_is_refused(crop):
    with pytest.raises(ValueError, match="unknown distortion"):
        distort(crop, "sepia", 1)
    with pytest.raises(ValueError, match="level"):
        distort(crop, "blur", N_LEVELS + 1)
    with pytest.raises(ValueError, match="uint8"):
        distort(crop.astype(np.float32), "blur", 1)
    with pytest.raises(ValueError, match="uint8"):
        distort(crop[..., 0], "blur", 1)
