import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.base import clone

from facecore.ldl import (
    DisconnectedComparisonsError,
    PairwiseLDL,
    gaussian_label_distribution,
    pairwise_to_distribution,
)
from facecore.ldl.pairwise import (
    _above,
    _below,
    comparison_components,
    pairwise_log_likelihood,
    pairwise_objective,
    preference_probability,
)


def _synthetic(n_items, n_pairs, seed=0, bins=5):
    """Known distributions and comparisons drawn from them (ties redrawn)."""
    rng = np.random.default_rng(seed)
    b = np.arange(1, bins + 1)
    mean = rng.uniform(1.5, bins - 0.5, n_items)
    sigma = rng.uniform(0.5, 1.2, n_items)
    pairs = zip(mean, sigma, strict=True)
    true = np.stack([gaussian_label_distribution([m], b, s)[0] for m, s in pairs])
    true = true.astype(np.float64) / true.sum(1, keepdims=True)
    cdf = np.cumsum(true, axis=1)
    win, lose = [], []
    while sum(map(len, win)) < n_pairs:
        i, j = rng.integers(0, n_items, (2, n_pairs))
        ri = (rng.random(n_pairs)[:, None] > cdf[i]).sum(1)
        rj = (rng.random(n_pairs)[:, None] > cdf[j]).sum(1)
        ok = (i != j) & (ri != rj)
        win.append(np.where(ri > rj, i, j)[ok])
        lose.append(np.where(ri > rj, j, i)[ok])
    return true, np.concatenate(win)[:n_pairs], np.concatenate(lose)[:n_pairs]


def test_cumulative_masses_are_the_triangular_matrix_products():
    d = np.random.default_rng(0).dirichlet(np.ones(6), size=4)
    lower = np.tril(np.ones((6, 6)), -1)  # L: strictly lower-triangular ones
    np.testing.assert_allclose(_below(d), d @ lower.T, atol=1e-15)
    np.testing.assert_allclose(_above(d), d @ lower, atol=1e-15)


def test_preference_probability_by_hand():
    assert preference_probability([0, 1, 0], [1, 0, 0]) == 1.0
    assert preference_probability([1, 0, 0], [0, 1, 0]) == 0.0
    u = np.full(5, 0.2)
    # iid draws: P(X > Y) = (1 - sum d^2) / 2
    assert preference_probability(u, u) == pytest.approx(0.4, abs=1e-15)
    a, b = np.array([0.5, 0.0, 0.5]), np.array([0.0, 1.0, 0.0])
    assert preference_probability(a, b) == pytest.approx(0.5)
    rows = preference_probability(np.stack([a, b]), np.stack([b, a]))
    np.testing.assert_allclose(rows, [0.5, 0.5])


@pytest.mark.parametrize("lam,alpha", [(0.7, 0.0), (0.0, 1.3), (2.0, 0.5)])
def test_gradient_matches_finite_differences(lam, alpha):
    rng = np.random.default_rng(1)
    n, k = 6, 5
    z = rng.normal(size=(n, k))
    w = np.array([0, 1, 2, 3, 4, 5, 0, 2, 2])
    lo = np.array([1, 2, 3, 4, 5, 0, 3, 5, 3])
    wt = rng.uniform(0.5, 2.0, len(w))

    def f(zz):
        return pairwise_objective(zz, w, lo, lam=lam, alpha=alpha, weights=wt)[0]

    _, g = pairwise_objective(z, w, lo, lam=lam, alpha=alpha, weights=wt)
    eps = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = eps
        num[idx] = (f(z + e) - f(z - e)) / (2 * eps)
    np.testing.assert_allclose(g, num, atol=1e-8)
    assert np.abs(g).max() > 1e-2  # not a trivially flat point


def test_objective_value_by_hand():
    # two items, one comparison, uniform distributions on 3 bins
    f, _ = pairwise_objective(np.zeros((2, 3)), [0], [1], bins=3, lam=0.5, alpha=0.25)
    p = (1 - 3 / 9) / 2  # P(i > j) for two uniform distributions
    var = 2 / 3  # variance of uniform on 1, 2, 3
    expected = -np.log(p) + 0.5 * 2 * var - 0.25 * 6 * np.log(1 / 3)
    assert f == pytest.approx(expected, rel=1e-12)


def test_recovers_known_means_on_synthetic_comparisons():
    true, w, lo = _synthetic(400, 8000, seed=3)
    d, info = pairwise_to_distribution(w, lo, 400)
    assert info["converged"]
    np.testing.assert_allclose(d.sum(1), 1.0, atol=1e-12)
    assert (d > 0).all()
    b = np.arange(1, 6)
    np.testing.assert_allclose(info["means"], d @ b)
    # measured: Pearson of the means 0.9643, pair accuracy 0.8256, KL 0.2445 (baseline 0.3650)
    assert pearsonr(true @ b, info["means"])[0] == pytest.approx(0.9643, abs=0.003)
    assert info["pair_accuracy"] == pytest.approx(0.8256, abs=0.005)
    # better than giving every item the average distribution, in KL
    from facecore.metrics import ldl_metrics

    fitted = ldl_metrics(true, d)["kl"]
    baseline = ldl_metrics(true, np.broadcast_to(true.mean(0), true.shape))["kl"]
    assert fitted == pytest.approx(0.2445, abs=0.005)
    assert fitted < 0.7 * baseline


def test_a_chain_gives_increasing_means():
    # 0 < 1 < 2 < 3 < 4, each pair compared three times
    w = np.repeat(np.arange(1, 5), 3)
    lo = w - 1
    d, info = pairwise_to_distribution(w, lo, 5)
    m = info["means"]
    # measured 2.362, 2.898, 3.000, 3.102, 3.638: increasing, symmetric about the middle bin
    np.testing.assert_allclose(m, [2.362, 2.898, 3.0, 3.102, 3.638], atol=2e-3)
    np.testing.assert_allclose(m + m[::-1], 6.0, atol=1e-6)
    np.testing.assert_allclose(d, d[::-1, ::-1], atol=1e-6)
    assert info["pair_accuracy"] == 1.0


def test_reversing_every_comparison_mirrors_the_distributions():
    _, w, lo = _synthetic(60, 600, seed=5)
    d, _ = pairwise_to_distribution(w, lo, 60, lam=0.5)
    d_rev, _ = pairwise_to_distribution(lo, w, 60, lam=0.5)
    np.testing.assert_allclose(d_rev, d[:, ::-1], atol=1e-6)


def test_a_weight_counts_as_repeated_comparisons():
    _, w, lo = _synthetic(40, 300, seed=7)
    wt = np.ones(len(w))
    wt[:50] = 3.0
    d1, _ = pairwise_to_distribution(w, lo, 40, weights=wt)
    w2 = np.concatenate([w, w[:50], w[:50]])
    lo2 = np.concatenate([lo, lo[:50], lo[:50]])
    d2, _ = pairwise_to_distribution(w2, lo2, 40)
    np.testing.assert_allclose(d1, d2, atol=1e-5)
    assert pairwise_log_likelihood(d1, w, lo, wt) == pytest.approx(
        pairwise_log_likelihood(d1, w2, lo2), rel=1e-12
    )


def test_variance_penalty_concentrates_the_distributions():
    _, w, lo = _synthetic(100, 2000, seed=9)
    b = np.arange(1, 6)
    var = {}
    for lam in (0.0, 10.0):
        d, _ = pairwise_to_distribution(w, lo, 100, lam=lam)
        var[lam] = np.mean(d @ b**2 - (d @ b) ** 2)
    assert var[10.0] < 0.6 * var[0.0]


def test_disconnected_comparisons_name_the_items():
    w = np.array([0, 1, 3])
    lo = np.array([1, 2, 4])  # {0, 1, 2}, {3, 4} and 5 never compared
    with pytest.raises(DisconnectedComparisonsError) as exc:
        pairwise_to_distribution(w, lo, 6)
    e = exc.value
    assert isinstance(e, ValueError)
    np.testing.assert_array_equal(e.items, [3, 4, 5])
    np.testing.assert_array_equal(e.uncompared, [5])
    assert e.n_components == 3
    msg = str(e)
    assert "3 of 6 items" in msg and "[5]" in msg and "[3, 4]" in msg
    with pytest.raises(DisconnectedComparisonsError, match=r"\['e', 'f'\]"):
        pairwise_to_distribution(w[:2], lo[:2], 5, item_ids=list("abcef"))


def test_comparison_components_order_by_size():
    n, labels = comparison_components(np.array([3, 4, 0]), np.array([4, 5, 1]), 7)
    assert n == 4
    # {3, 4, 5} largest, then {0, 1}, then the singletons {2} and {6} by smallest member
    np.testing.assert_array_equal(labels, [1, 1, 2, 0, 0, 0, 3])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"winners": [0, 1], "losers": [1, 1]}, "self-comparison"),
        ({"winners": [0, 3], "losers": [1, 0]}, r"winners\[1\] = 3 is outside"),
        ({"winners": [0], "losers": [1, 0]}, "same length"),
        ({"winners": [], "losers": []}, "no comparisons"),
        ({"winners": [0.0], "losers": [1.0]}, "integer"),
        ({"weights": [1.0, -1.0]}, "weights"),
        ({"weights": [np.nan, 1.0]}, "weights"),
        ({"lam": -1.0}, "lam"),
        ({"alpha": -0.1}, "alpha"),
        ({"bins": 1}, "bins"),
    ],
)
def test_bad_input_is_a_value_error(kwargs, match):
    args = {"winners": [0, 1], "losers": [1, 2], "n_items": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        pairwise_to_distribution(**args)


def test_custom_bins():
    d, info = pairwise_to_distribution([1, 2], [0, 1], 3, bins=[0.0, 0.5, 2.0])
    np.testing.assert_allclose(info["means"], d @ np.array([0.0, 0.5, 2.0]))
    assert d.shape == (3, 3)


def test_estimator_matches_the_function_and_clones():
    _, w, lo = _synthetic(50, 400, seed=11)
    est = PairwiseLDL(lam=0.5, bins=4)
    assert clone(est).get_params() == est.get_params()
    est.fit(np.stack([w, lo], axis=1))
    d, info = pairwise_to_distribution(w, lo, 50, bins=4, lam=0.5)
    np.testing.assert_allclose(est.distributions_, d)
    np.testing.assert_allclose(est.predict([3, 1]), info["means"][[3, 1]])
    np.testing.assert_allclose(est.predict_distribution([2]), d[[2]])
    assert not hasattr(clone(est), "distributions_")
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        PairwiseLDL().fit(np.zeros((3, 3), dtype=int))
