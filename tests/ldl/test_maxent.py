import numpy as np
import pytest
from scipy.special import softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from facecore.ldl import MaxEntLDL
from facecore.ldl.maxent import check_distributions, maxent_objective


def _finite_difference(f, a, eps=1e-6):
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[idx] = eps
        g[idx] = (f(a + e) - f(a - e)) / (2 * eps)
    return g


def _centred(a):
    # softmax weights are identified up to a constant added to every label's column
    return a - a.mean(axis=-1, keepdims=True)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_gradient_matches_finite_differences(alpha):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 4))
    d = rng.dirichlet(np.ones(5), size=7)
    d[0] = [0.5, 0.5, 0, 0, 0]  # zeros in a target
    w, b = rng.normal(size=(4, 5)), rng.normal(size=5)
    _, gw, gb = maxent_objective(w, b, x, d, alpha)
    np.testing.assert_allclose(
        gw, _finite_difference(lambda a: maxent_objective(a, b, x, d, alpha)[0], w), atol=1e-8
    )
    np.testing.assert_allclose(
        gb, _finite_difference(lambda a: maxent_objective(w, a, x, d, alpha)[0], b), atol=1e-8
    )


def test_objective_is_the_mean_kl_divergence():
    from facecore.metrics import kl_divergence

    rng = np.random.default_rng(1)
    x, d = rng.normal(size=(6, 3)), rng.dirichlet(np.ones(4), size=6)
    w, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    f, _, _ = maxent_objective(w, b, x, d, 0.5)
    expected = kl_divergence(d, softmax(x @ w + b, axis=1), eps=0.0).mean() + 0.25 * np.sum(w**2)
    assert f == pytest.approx(expected, rel=1e-12)


def test_recovers_a_known_softmax_model():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 6))
    w_true, b_true = rng.normal(size=(6, 5)), 0.5 * rng.normal(size=5)
    d = softmax(x @ w_true + b_true, axis=1)
    m = MaxEntLDL(alpha=0.0, tol=1e-12, max_iter=5000).fit(x, d)
    assert m.converged_
    # measured: 2e-6 and 1e-6
    np.testing.assert_allclose(_centred(m.coef_), _centred(w_true), atol=2e-5)
    np.testing.assert_allclose(_centred(m.intercept_), _centred(b_true), atol=2e-5)
    x_new = rng.normal(size=(50, 6))
    np.testing.assert_allclose(
        m.predict_distribution(x_new), softmax(x_new @ w_true + b_true, axis=1), atol=1e-5
    )


def test_predict_is_the_expectation_on_the_bins():
    rng = np.random.default_rng(3)
    x, d = rng.normal(size=(40, 3)), rng.dirichlet(np.ones(4), size=40)
    m = MaxEntLDL(bins=[0.0, 10.0, 20.0, 30.0]).fit(x, d)
    p = m.predict_distribution(x)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(m.predict(x), p @ [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_array_equal(MaxEntLDL().fit(x, d).bins_, [1, 2, 3, 4])


def test_strong_regularisation_predicts_the_mean_distribution():
    # W -> 0, and the best constant prediction in mean KL is the targets' average
    rng = np.random.default_rng(4)
    x, d = rng.normal(size=(60, 5)), rng.dirichlet(np.ones(4), size=60)
    m = MaxEntLDL(alpha=1e8).fit(x, d)
    assert np.abs(m.coef_).max() < 1e-7
    np.testing.assert_allclose(m.predict_distribution(x[:3]), np.tile(d.mean(0), (3, 1)), atol=1e-6)


def test_the_seed_only_moves_the_start():
    rng = np.random.default_rng(5)
    x, d = rng.normal(size=(80, 4)), rng.dirichlet(np.ones(3), size=80)
    a = MaxEntLDL(alpha=0.1, random_state=0, tol=1e-12).fit(x, d)
    b = MaxEntLDL(alpha=0.1, random_state=1, tol=1e-12).fit(x, d)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-5)
    c = MaxEntLDL(alpha=0.1, random_state=0, tol=1e-12).fit(x, d)
    np.testing.assert_array_equal(a.coef_, c.coef_)


def test_sklearn_conventions():
    m = MaxEntLDL(alpha=0.5, fit_intercept=False, random_state=3)
    c = clone(m)
    assert c.get_params() == m.get_params()
    with pytest.raises(NotFittedError):
        c.predict(np.zeros((1, 2)))
    rng = np.random.default_rng(6)
    x, d = rng.normal(size=(20, 2)), rng.dirichlet(np.ones(3), size=20)
    assert c.fit(x, d) is c
    np.testing.assert_array_equal(c.intercept_, 0.0)
    assert c.n_features_in_ == 2
    with pytest.raises(ValueError, match="features"):
        c.predict(np.zeros((1, 3)))


def test_bad_targets():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="non-negative"):
        MaxEntLDL().fit(x, [[1.0, -0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="3 rows"):
        MaxEntLDL().fit(np.zeros((3, 1)), [[1.0, 0.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match="row 1"):
        check_distributions([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="finite"):
        check_distributions([[1.0, np.nan]])
    np.testing.assert_allclose(check_distributions([[2.0, 2.0]]), [[0.5, 0.5]])
