import numpy as np
import pytest

from facecore.ldl import gaussian_label_distribution, rating_histograms


def test_gaussian_label_distribution():
    bins = np.arange(0, 101)
    p = gaussian_label_distribution([30.0, 0.0], bins, sigma=3.0)
    assert p.shape == (2, 101) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert p[0] @ bins == pytest.approx(30.0, abs=1e-4)  # symmetric inside the range
    assert p[0].argmax() == 30 and p[0, 27] == pytest.approx(p[0, 33])
    # by hand: exp(-1/2) relative weight one sigma away
    assert p[0, 33] / p[0, 30] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert p[1] @ bins > 0.5  # truncated at the lower end: the mean moves up
    with pytest.raises(ValueError, match="sigma"):
        gaussian_label_distribution([1.0], bins, sigma=0)


def test_rating_histograms():
    h = rating_histograms(
        np.array([0, 0, 0, 1, 0]), np.array([1.0, 2.0, 2.0, 5.0, 4.6]), 3, bins=[1, 2, 3, 4, 5]
    )
    np.testing.assert_allclose(h[0], [0.25, 0.5, 0, 0, 0.25])  # 4.6 counts as 5
    np.testing.assert_allclose(h[1], [0, 0, 0, 0, 1])
    assert np.isnan(h[2]).all()  # no ratings


def test_probability_higher():
    from facecore.ldl.distributions import probability_higher

    low, high = np.array([0.7, 0.3, 0.0]), np.array([0.0, 0.2, 0.8])
    assert probability_higher(high, low) == pytest.approx(0.8 + 0.2 * 0.7 + 0.5 * 0.2 * 0.3)
    assert probability_higher(high, low) + probability_higher(low, high) == pytest.approx(1.0)
    same = np.array([0.2, 0.5, 0.3])
    assert probability_higher(same, same) == pytest.approx(0.5)
    assert probability_higher(same, same, ties=0.0) < 0.5
    with pytest.raises(ValueError):
        probability_higher(same, same[:2])
