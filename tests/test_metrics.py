"""Regression metrics, cumulative score and Geng's LDL measures against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facecore.metrics import (
    KL_EPS,
    LDL_METRICS,
    canberra,
    chebyshev,
    clark,
    cosine,
    cs_at,
    intersection,
    kl_divergence,
    ldl_metrics,
    regression_metrics,
)

P = np.array([0.5, 0.3, 0.2])
Q = np.array([0.4, 0.4, 0.2])
# By hand: |P - Q| = (0.1, 0.1, 0); P + Q = (0.9, 0.7, 0.4).
HAND = {
    "chebyshev": 0.1,
    "clark": math.sqrt((0.1 / 0.9) ** 2 + (0.1 / 0.7) ** 2),  # 0.180980
    "canberra": 0.1 / 0.9 + 0.1 / 0.7,  # 0.253968
    "kl": 0.5 * math.log(0.5 / 0.4) + 0.3 * math.log(0.3 / 0.4),  # 0.025267
    "cosine": 0.36 / (math.sqrt(0.38) * math.sqrt(0.36)),  # 0.973329
    "intersection": 0.4 + 0.3 + 0.2,
}


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, y + np.array([0.5, -0.5, 0.5, -0.5]))
    assert m["mae"] == pytest.approx(0.5) and m["rmse"] == pytest.approx(0.5)
    # corr((1, 2, 3, 4), (1.5, 1.5, 3.5, 3.5)) = 4 / sqrt(5 * 4) = 0.894427
    assert m["pc"] == pytest.approx(4 / math.sqrt(20))
    assert regression_metrics(y, 2 * y)["pc"] == pytest.approx(1.0)
    m = regression_metrics(y, np.array([1.0, 2.0, 3.0, 6.0]))
    assert m["mae"] == pytest.approx(0.5) and m["rmse"] == pytest.approx(1.0)
    assert math.isnan(regression_metrics(y, np.full(4, 2.5))["pc"])


def test_cumulative_score() -> None:
    y = np.array([20, 30, 40, 50, 60])
    pred = np.array([25, 36, 40, 44.9, 70])  # errors 5, 6, 0, 5.1, 10
    assert cs_at(y, pred, 5) == pytest.approx(2 / 5)  # the threshold itself counts
    assert cs_at(y, pred, 6) == pytest.approx(4 / 5)
    assert cs_at(y, pred, 10) == 1.0 and cs_at(y, pred, 0) == pytest.approx(1 / 5)
    with pytest.raises(ValueError):
        cs_at(y, pred[:3])


@pytest.mark.parametrize("name", list(HAND))
def test_ldl_measures_by_hand(name: str) -> None:
    assert float(LDL_METRICS[name](P, Q)) == pytest.approx(HAND[name], abs=1e-9)


def test_ldl_metrics_are_means_over_rows() -> None:
    p = np.stack([P, np.array([1.0, 0.0, 0.0])])
    q = np.stack([Q, np.array([0.0, 0.0, 1.0])])
    m = ldl_metrics(p, q)
    assert list(m) == ["chebyshev", "clark", "canberra", "kl", "cosine", "intersection"]
    # Disjoint one-hot rows: every distance at its maximum, similarities 0.
    disjoint = {
        "chebyshev": 1.0,
        "clark": math.sqrt(2.0),
        "canberra": 2.0,
        "kl": math.log((1 + KL_EPS) / KL_EPS),  # about 23.03: finite thanks to eps
        "cosine": 0.0,
        "intersection": 0.0,
    }
    for name in m:
        assert m[name] == pytest.approx((HAND[name] + disjoint[name]) / 2, rel=1e-9), name
    assert chebyshev(p, q).shape == (2,)


def test_identical_distributions() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), size=20)
    p[0, :3] = [0.0, 0.5, 0.5]  # zeros too (0/0 terms count 0)
    p[0, 3:] = 0.0
    m = ldl_metrics(p, p)
    for name in ("chebyshev", "clark", "canberra", "kl"):
        assert m[name] == pytest.approx(0.0, abs=1e-12), name
    assert m["cosine"] == pytest.approx(1.0) and m["intersection"] == pytest.approx(1.0)


def test_known_properties() -> None:
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(5), size=50), rng.dirichlet(np.ones(5), size=50)
    l1 = np.abs(p - q).sum(axis=1)
    np.testing.assert_allclose(intersection(p, q), 1 - l1 / 2)  # for distributions
    assert (chebyshev(p, q) <= l1 / 2 + 1e-12).all()
    assert (clark(p, q) <= math.sqrt(5)).all() and (canberra(p, q) <= 5).all()
    for fn in (chebyshev, clark, canberra, cosine, intersection):  # symmetric
        np.testing.assert_allclose(fn(p, q), fn(q, p))
    assert (kl_divergence(p, q) > 0).all()  # Gibbs' inequality
    assert not np.allclose(kl_divergence(p, q), kl_divergence(q, p))  # not symmetric
    # Cosine is scale-invariant.
    np.testing.assert_allclose(cosine(p, q), cosine(3 * p, q))


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        chebyshev(P, Q[:2])
    with pytest.raises(ValueError):
        clark(np.array([-0.1, 1.1]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError):
        ldl_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
