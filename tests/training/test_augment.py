"""facecore.training.augment: seeded jitter of aligned chips."""

import numpy as np
import pytest

from facecore.training.augment import Jitter, jitter_chips


@pytest.fixture(scope="module")
def chips():
    """Four 150 px chips: a bright square on a gradient, so shifts and turns show."""
    yy, xx = np.mgrid[:150, :150]
    base = np.stack([xx, yy, (xx + yy) // 2], axis=-1).astype(np.float32) * 255 / 300
    base[60:90, 60:90] = 250
    return np.stack([np.clip(base + 10 * i, 0, 255).astype(np.uint8) for i in range(4)])


def test_views_are_seeded_per_chip_and_view(chips):
    a = jitter_chips(chips, 0)
    assert a.shape == chips.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, jitter_chips(chips, 0))  # the same draw again
    assert not np.array_equal(a, jitter_chips(chips, 1))  # another view, another draw
    assert not np.array_equal(a, jitter_chips(chips, 0, seed=1))


def test_a_view_moves_the_face_only_a_little(chips):
    moved = jitter_chips(chips, 0).astype(np.float32)
    for src, dst in zip(chips.astype(np.float32), moved, strict=True):
        # the bright square's centre moves by at most shift + zoom + turn about the centre
        ys, xs = np.nonzero(dst.min(axis=2) > 200)
        assert abs(xs.mean() - 74.5) < 12 and abs(ys.mean() - 74.5) < 12
        assert np.abs(dst - src).mean() > 1  # it did change


def test_no_jitter_is_the_identity(chips):
    still = Jitter(shift=0, scale=0, rotate=0, brightness=0, contrast=0)
    np.testing.assert_array_equal(jitter_chips(chips, 3, jitter=still), chips)


def test_bad_input_is_refused(chips):
    with pytest.raises(ValueError, match="view"):
        jitter_chips(chips, -1)
    with pytest.raises(ValueError, match="uint8"):
        jitter_chips(chips.astype(np.float32), 0)
