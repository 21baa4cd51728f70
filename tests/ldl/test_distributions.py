import numpy as np
import pytest

from facecore.ldl import gaussian_label_distribution, rating_histograms
from facecore.ldl.distributions import calibrate, shift_distribution, temper


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


def test_shift_distribution_moves_the_mean_and_keeps_the_mass():
    b = np.arange(0, 11, dtype=float)
    p = np.zeros(11)
    p[4:7] = [0.25, 0.5, 0.25]
    q = shift_distribution(p, b, 2.0)
    assert q.sum() == pytest.approx(1.0) and q @ b == pytest.approx(7.0)
    r = shift_distribution(p, b, -0.5)
    assert r @ b == pytest.approx(4.5)
    edge = shift_distribution(p, b, 9.0)  # pushed past the end: piles up in the last bin
    assert edge.sum() == pytest.approx(1.0) and edge[-1] == pytest.approx(1.0)


def test_temperature_widens_the_distribution_and_calibration_moves_it():
    p = np.array([[0.05, 0.1, 0.7, 0.1, 0.05]])
    wide = temper(p, 2.0)
    b = np.arange(1.0, 6.0)
    assert wide.sum() == pytest.approx(1.0) and wide[0, 2] < 0.7
    assert wide @ b == pytest.approx(p @ b)  # symmetric: the mean stays
    # by hand: softmax(log p / 2) = sqrt(p) / sum(sqrt(p))
    np.testing.assert_allclose(wide, np.sqrt(p) / np.sqrt(p).sum(), rtol=1e-12)
    assert temper(p, 1.0) is not None and np.array_equal(temper(p, 1.0), p)
    values, probs = calibrate(p, b, 2.0, (np.array([1.0, 5.0]), np.array([2.0, 4.0])))
    assert values[0] == pytest.approx(3.0) and probs.sum() == pytest.approx(1.0)
