"""DeepFeatureRegressor and CompactSVR on synthetic data with a recoverable signal."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.svm import SVR

from facecore.attractiveness.deep_regressors import CompactSVR, DeepFeatureRegressor, make_learner


def data(n: int = 400, d: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores that depend smoothly (non-linearly) on 3 of ``d`` features, plus a little noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = 3.0 + 0.6 * X[:, 0] - 0.4 * X[:, 1] ** 2 + 0.3 * np.tanh(X[:, 2])
    return X.astype(np.float32), y + 0.1 * rng.normal(size=n)


def pc(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# floors: 1.5x the measured error (1 - PC) of 0.841 (svr) and 0.922 (rf)
@pytest.mark.parametrize(("learner", "min_pc"), [("svr", 0.8), ("rf", 0.88)])
def test_learners_recover_the_signal(learner: str, min_pc: float) -> None:
    X, y = data()
    model = DeepFeatureRegressor(learner=learner, n_estimators=100).fit(X[:300], y[:300])
    pred = model.predict(X[300:])
    assert pred.shape == (100,)
    assert pc(pred, y[300:]) > min_pc
    # A shuffled target carries no signal: the test can fail.
    shuffled = DeepFeatureRegressor(learner=learner, n_estimators=100).fit(
        X[:300], np.random.default_rng(1).permutation(y[:300])
    )
    assert abs(pc(shuffled.predict(X[300:]), y[300:])) < 0.3


def test_block_is_selected_from_a_layout() -> None:
    X, y = data(d=10)
    noise = np.random.default_rng(2).normal(size=(len(X), 5)).astype(np.float32)
    layout = (("deep128", (5,)), ("deep", (10,)))
    M = np.hstack([noise, X])
    good = DeepFeatureRegressor(block="deep", layout=layout).fit(M[:300], y[:300])
    bad = DeepFeatureRegressor(block="deep128", layout=layout).fit(M[:300], y[:300])
    assert pc(good.predict(M[300:]), y[300:]) > 0.8
    assert abs(pc(bad.predict(M[300:]), y[300:])) < 0.3


def test_clone_pickle_and_determinism() -> None:
    X, y = data(n=200)
    est = DeepFeatureRegressor(learner="rf", n_estimators=20, random_state=3)
    a = clone(est).fit(X, y).predict(X)
    b = clone(est).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    fitted = DeepFeatureRegressor().fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.predict(X), fitted.predict(X), atol=1e-5)
    assert clone(fitted).get_params() == fitted.get_params()


def test_compact_svr_pickles_smaller_with_the_same_predictions() -> None:
    X, y = data(n=300, d=50)
    X = X.astype(np.float64)
    plain = SVR().fit(X, y)
    compact = CompactSVR().fit(X, y)
    np.testing.assert_array_equal(plain.predict(X), compact.predict(X))
    blob = pickle.dumps(compact)
    assert len(blob) < 0.6 * len(pickle.dumps(plain))
    loaded = pickle.loads(blob)
    assert loaded.support_vectors_.dtype == np.float64
    np.testing.assert_allclose(loaded.predict(X), plain.predict(X), atol=1e-5)
    assert compact.support_vectors_.dtype == np.float64  # pickling left the fitted one alone


def test_bad_learner_is_rejected() -> None:
    X, y = data(n=50)
    with pytest.raises(ValueError, match="learner"):
        DeepFeatureRegressor(learner="knn").fit(X, y)
    with pytest.raises(ValueError, match="learner"):
        make_learner("boost")
