import numpy as np
import pytest
from sklearn.base import clone

from facecore.ldl import StructuredLDL
from facecore.ldl.sldl import LOSSES, loss_matrix, sldl_objective
from facecore.metrics import LDL_METRICS, intersection

#: Five unimodal prototypes on five bins.
PROTOTYPES = np.array(
    [
        [0.7, 0.2, 0.1, 0.0, 0.0],
        [0.2, 0.5, 0.2, 0.1, 0.0],
        [0.0, 0.2, 0.6, 0.2, 0.0],
        [0.0, 0.1, 0.2, 0.5, 0.2],
        [0.0, 0.0, 0.1, 0.2, 0.7],
    ]
)


def _finite_difference(f, a, eps=1e-6):
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[idx] = eps
        g[idx] = (f(a + e) - f(a - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("loss,tau", [("euclidean", 0.1), ("kl", 0.5), ("chebyshev", 0.02)])
def test_gradient_matches_finite_differences(loss, tau):
    rng = np.random.default_rng(0)
    x, d = rng.normal(size=(7, 4)), rng.dirichlet(np.ones(5), size=7)
    y = rng.dirichlet(np.ones(5), size=6)
    delta = loss_matrix(d, y, loss)
    w, b = rng.normal(size=(4, 5)), rng.normal(size=5)

    def f(ww, bb):
        return sldl_objective(ww, bb, x, d, y, delta, 0.3, tau)[0]

    _, gw, gb = sldl_objective(w, b, x, d, y, delta, 0.3, tau)
    np.testing.assert_allclose(gw, _finite_difference(lambda a: f(a, b), w), atol=1e-7)
    np.testing.assert_allclose(gb, _finite_difference(lambda a: f(w, a), b), atol=1e-7)
    assert np.abs(gw).max() > 1e-2


def test_smoothed_hinge_brackets_the_structural_hinge():
    rng = np.random.default_rng(1)
    x, d = rng.normal(size=(9, 3)), rng.dirichlet(np.ones(4), size=9)
    y = rng.dirichlet(np.ones(4), size=5)
    w, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    delta = loss_matrix(d, y)
    s = x @ w + b
    margin = delta + s @ y.T - np.sum(d * s, axis=1, keepdims=True)
    hinge = np.maximum(0.0, margin.max(axis=1)).mean()
    for tau in (1.0, 0.1, 1e-3):
        f, _, _ = sldl_objective(w, b, x, d, y, delta, 0.0, tau)
        assert hinge <= f <= hinge + tau * np.log(len(y) + 1) + 1e-12
    f, _, _ = sldl_objective(w, b, x, d, y, delta, 0.0, 1e-6)
    assert f == pytest.approx(hinge, abs=1e-5)


def test_loss_matrix_matches_the_metrics():
    rng = np.random.default_rng(2)
    d, y = rng.dirichlet(np.ones(4), size=5), rng.dirichlet(np.ones(4), size=3)
    np.testing.assert_allclose(
        loss_matrix(d, y), np.linalg.norm(d[:, None] - y[None], axis=2), atol=1e-12
    )
    for name in ("kl", "chebyshev", "clark", "canberra"):
        expected = [[LDL_METRICS[name](p, q) for q in y] for p in d]
        np.testing.assert_allclose(loss_matrix(d, y, name), expected, rtol=1e-12)
    expected = [[1 - intersection(p, q) for q in y] for p in d]
    np.testing.assert_allclose(loss_matrix(d, y, "intersection"), expected, rtol=1e-12)
    assert set(LOSSES) == {"euclidean", "kl", "chebyshev", "clark", "canberra", "intersection"}
    with pytest.raises(ValueError, match="loss"):
        loss_matrix(d, y, "cosine")


def _argmax_data(n, seed):
    """Targets chosen among the prototypes by a linear structured rule argmax_c Y_c . W^T x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    w_true = 3.0 * rng.normal(size=(4, 5))
    label = np.argmax(x @ w_true @ PROTOTYPES.T, axis=1)
    return x, PROTOTYPES[label], label


def test_recovers_a_known_structured_rule():
    x, d, label = _argmax_data(1200, seed=0)
    assert np.bincount(label, minlength=5).min() > 100
    m = StructuredLDL(alpha=1e-4, candidates=PROTOTYPES, random_state=0).fit(x[:800], d[:800])
    assert m.converged_
    pred = m.predict_distribution(x[800:])
    exact = np.all(np.isclose(pred, d[800:]), axis=1).mean()
    assert exact == pytest.approx(0.9675, abs=0.0051)  # measured 0.9675 on the 400 held out
    # the default output space is the distinct training distributions: the same prototypes
    m2 = StructuredLDL(alpha=1e-4, random_state=0).fit(x[:800], d[:800])
    np.testing.assert_allclose(
        np.sort(m2.candidates_, axis=0), np.sort(PROTOTYPES, axis=0), atol=1e-15
    )
    pred2 = m2.predict_distribution(x[800:])
    assert np.all(np.isclose(pred2, d[800:]), axis=1).mean() == pytest.approx(exact, abs=0.0051)


def test_decoders_and_predict():
    x, d, _ = _argmax_data(300, seed=1)
    bins = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    hard = StructuredLDL(candidates=PROTOTYPES, random_state=0).fit(x, d)
    soft = clone(hard).set_params(decode="mean").fit(x, d)
    p_hard, p_soft = hard.predict_distribution(x), soft.predict_distribution(x)
    # argmax returns candidates themselves; mean returns mixtures of them
    assert all(any(np.array_equal(r, c) for c in hard.candidates_) for r in p_hard)
    assert not all(any(np.allclose(r, c) for c in hard.candidates_) for r in p_soft)
    np.testing.assert_allclose(p_soft.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(hard.predict(x), p_hard @ bins)
    np.testing.assert_allclose(soft.predict(x), p_soft @ bins)
    np.testing.assert_array_equal(hard.coef_, soft.coef_)  # decoding does not change the fit
    assert hard.decision_function(x).shape == (300, 5)


def test_candidates_are_subsampled_with_the_seed():
    rng = np.random.default_rng(3)
    x, d = rng.normal(size=(50, 3)), rng.dirichlet(np.ones(4), size=50)
    a = StructuredLDL(max_candidates=10, random_state=0, max_iter=5).fit(x, d)
    b = StructuredLDL(max_candidates=10, random_state=0, max_iter=5).fit(x, d)
    assert a.candidates_.shape == (10, 4)
    np.testing.assert_array_equal(a.candidates_, b.candidates_)
    # every candidate is a training distribution
    assert all(np.isclose(d, c).all(axis=1).any() for c in a.candidates_)


def test_sklearn_conventions_and_errors():
    m = StructuredLDL(alpha=0.1, loss="kl", temperature=0.5, random_state=7)
    assert clone(m).get_params() == m.get_params()
    x, d = np.zeros((3, 2)), np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="temperature"):
        StructuredLDL(temperature=0.0).fit(x, d)
    with pytest.raises(ValueError, match="decode"):
        StructuredLDL(decode="mode").fit(x, d)
    with pytest.raises(ValueError, match="candidates have 2 labels"):
        StructuredLDL(candidates=[[0.5, 0.5]]).fit(x, d)
