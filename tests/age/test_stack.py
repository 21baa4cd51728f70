"""facecore.age.stack: the SVR in numpy/torch, the LAD stack and its cross-fitting."""

import numpy as np
import pytest

from facecore.age.stack import AgeStack, RbfSvr, crossfit_stack, fit_age_stack, fit_stack
from facecore.ldl.distributions import gaussian_label_distribution

BINS = np.arange(0, 101, dtype=np.float64)


def test_rbf_svr_predicts_as_the_sklearn_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    age = np.clip(30 + 10 * X[:, 0] + 3 * X[:, 1] ** 2, 1, 90)
    pipe = make_pipeline(StandardScaler(), SVR(C=3.0, epsilon=0.05)).fit(X, np.log1p(age))
    svr = RbfSvr.from_pipeline(pipe)
    Xt = rng.normal(size=(20, 12)).astype(np.float32)
    want = np.clip(np.expm1(pipe.predict(Xt)), 0, None)
    np.testing.assert_allclose(svr.predict(Xt), want, rtol=1e-4, atol=1e-3)
    again = RbfSvr.from_arrays(svr.to_arrays())  # float16 support vectors in the file
    np.testing.assert_allclose(again.predict(Xt), want, rtol=2e-2, atol=0.5)
    with pytest.raises(ValueError, match="RBF"):
        RbfSvr.from_pipeline(make_pipeline(StandardScaler(), SVR(kernel="linear")).fit(X, age))


def test_lad_stack_recovers_the_weights_despite_outliers():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 80, 400), rng.uniform(0, 80, 400)
    y = 2.0 + 0.7 * a + 0.3 * b
    y[:20] += 60  # outliers barely move a median regression
    coef, intercept = fit_stack(a, b, y)
    assert coef == pytest.approx((0.7, 0.3), abs=0.02) and intercept == pytest.approx(2.0, abs=1)


def test_apply_moves_the_distribution_to_the_stacked_age():
    probs = gaussian_label_distribution(np.array([30.0, 60.0]), BINS, 4.0)
    stack = AgeStack(coef=(0.5, 0.5), intercept=0.0, temperature=1.5)
    values, out = stack.apply(probs, BINS, svr_ages=np.array([40.0, 70.0]))
    np.testing.assert_allclose(values, [35.0, 65.0], atol=0.05)
    np.testing.assert_allclose(out @ BINS, values, atol=0.05)  # the mean is the served age
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert np.sqrt(out[0] @ (BINS - 35) ** 2) > 4.0  # tempered by 1.5: wider than sigma 4
    with pytest.raises(ValueError, match="svr_ages"):
        stack.apply(probs, BINS)


def test_crossfit_stack_beats_either_input_when_they_err_differently():
    rng = np.random.default_rng(2)
    y = rng.uniform(1, 90, 1000)
    top = y + 0.3 * (45 - y) + rng.normal(0, 4, 1000)  # pulled to the mean
    svr = y + rng.normal(0, 8, 1000)  # unbiased, noisier
    probs = gaussian_label_distribution(np.clip(top, 0, 100), BINS, 5.0)
    folds = [(np.setdiff1d(np.arange(1000), te), te) for te in np.array_split(np.arange(1000), 5)]
    values, dists, stacks = crossfit_stack(probs, svr, y, folds, BINS)
    mae = lambda p: float(np.mean(np.abs(p - y)))  # noqa: E731
    assert mae(values) < min(mae(probs @ BINS), mae(svr)) - 0.3
    assert len(stacks) == 5 and all(s.temperature >= 1.0 for s in stacks)
    whole = fit_age_stack(probs, svr, y, BINS)
    lo = np.argmax(np.cumsum(dists, 1) >= 0.05 - 1e-9, 1)
    hi = np.argmax(np.cumsum(dists, 1) >= 0.95 - 1e-9, 1)
    cover = np.mean((y >= BINS[lo]) & (y <= BINS[hi]))
    assert 0.85 < cover < 0.95  # the temperature is chosen for 90% coverage
    assert whole.coef[0] > 0 and whole.coef[1] > 0
