"""facecore.beauty.skin: the landmark skin mask and multi-level median smoothing."""

import cv2
import numpy as np
import pytest

from facecore.beauty.skin import multilevel_median, skin_mask, smooth_skin

SHAPE = (260, 240, 3)


def test_mask_covers_skin_and_excludes_features(lm):
    m = skin_mask(SHAPE, lm)
    assert m.shape == SHAPE[:2] and m.dtype == np.float32
    assert m.min() == 0.0 and m.max() == 1.0

    def at(p):
        return m[int(round(p[1])), int(round(p[0]))]

    cheek_r = (lm[2] + lm[31] + lm[48]) / 3
    cheek_l = (lm[14] + lm[35] + lm[54]) / 3
    assert at(cheek_r) == 1.0 and at(cheek_l) == 1.0
    assert at(lm[29]) == 1.0  # nose bridge
    assert 0.0 < at((lm[27] + lm[28]) / 2) < 1.0  # between the eyes: in the feathered ramp
    for part in (slice(36, 42), slice(42, 48), slice(48, 60), slice(17, 22), slice(22, 27)):
        assert at(lm[part].mean(0)) == 0.0, part  # eyes, lips, brows
    assert at(lm[33] + (lm[30] - lm[33]) * 0.3) == 0.0  # nostrils
    assert m[0, 0] == 0.0 and m[-1, -1] == 0.0  # off the face
    assert at(lm[8] + [0, 8]) == 0.0  # below the chin


def test_mask_feathering_stays_inside_the_hard_mask(lm):
    m = skin_mask(SHAPE, lm, feather=0.05)
    hard = skin_mask(SHAPE, lm, feather=1e-6)  # sigma floored at 0.5 px: nearly hard
    # Every pixel the soft mask touches is inside the (nearly) hard one, and there is a ramp.
    assert np.all(hard[m > 0] > 0)
    assert ((m > 0.05) & (m < 0.95)).sum() > 500


def test_mask_follows_the_face(lm, make_face):
    big = skin_mask((520, 480), make_face(scale=2.0, offset=(40.0, 20.0)))
    small = skin_mask((260, 240), lm)
    down = cv2.resize(big, (240, 260), interpolation=cv2.INTER_AREA)
    assert np.abs(down - small).mean() < 0.02
    assert abs(big.sum() / small.sum() - 4.0) < 0.1


def test_mask_of_a_face_outside_the_image_is_empty(make_face):
    assert skin_mask((50, 50), make_face(offset=(500.0, 500.0))).max() == 0.0


def test_multilevel_median_is_the_mean_of_medians():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    got = multilevel_median(img, [3, 5])
    want = (cv2.medianBlur(img, 3).astype(np.float32) + cv2.medianBlur(img, 5)) / 2
    np.testing.assert_array_equal(got, want)
    # An impulse on a flat patch is removed by every level.
    flat = np.full((21, 21, 3), 100, np.uint8)
    flat[10, 10] = 255
    np.testing.assert_array_equal(multilevel_median(flat, [3, 7, 9]), np.full(flat.shape, 100.0))


@pytest.mark.parametrize("sizes", [[], [4], [1], [3.5]])
def test_multilevel_median_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError):
        multilevel_median(np.zeros((8, 8, 3), np.uint8), sizes)


def noisy_face_image():
    rng = np.random.default_rng(2)
    img = np.full(SHAPE, (180, 140, 120), np.uint8)
    noise = rng.integers(-25, 26, SHAPE)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def test_smoothing_changes_nothing_outside_the_mask(lm):
    img = noisy_face_image()
    m = skin_mask(img.shape, lm)
    out = smooth_skin(img, lm, smooth=1.0)
    np.testing.assert_array_equal(out[m == 0], img[m == 0])
    inside = m == 1.0
    # Inside, the noise (std ~14.7) is strongly reduced.
    assert out[inside].std(axis=0).max() < 0.5 * img[inside].std(axis=0).min()


def test_smoothing_is_the_blend_formula(lm):
    img = noisy_face_image()
    m = skin_mask(img.shape, lm)
    out = smooth_skin(img, lm, smooth=0.4, mask=m)
    width = np.linalg.norm(lm[16] - lm[0])  # 160 px: kernels 0.02/0.035/0.05 -> 3, 7, 9
    assert round(width) == 160
    filtered = multilevel_median(img, [3, 7, 9])
    want = np.clip(np.rint(img + 0.4 * m[..., None] * (filtered - img)), 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(m > 0)
    # Away from the image border the ROI filter equals the whole-image filter.
    np.testing.assert_array_equal(out[ys, xs], want[ys, xs])


def test_zero_strength_and_empty_mask_return_a_copy(lm):
    img = noisy_face_image()
    out = smooth_skin(img, lm, smooth=0.0)
    np.testing.assert_array_equal(out, img)
    assert out is not img
    empty = np.zeros(img.shape[:2], np.float32)
    np.testing.assert_array_equal(smooth_skin(img, lm, 1.0, mask=empty), img)


def test_bad_arguments(lm):
    img = noisy_face_image()
    with pytest.raises(ValueError, match="smooth"):
        smooth_skin(img, lm, smooth=1.5)
    with pytest.raises(ValueError, match="uint8"):
        smooth_skin(img.astype(np.float32), lm)
    with pytest.raises(ValueError, match="68, 2"):
        smooth_skin(img, lm[:60])
    with pytest.raises(ValueError, match="mask"):
        smooth_skin(img, lm, mask=np.ones((5, 5), np.float32))
