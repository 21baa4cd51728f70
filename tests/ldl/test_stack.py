"""facecore.ldl.stack: the SVR in torch, the LAD stack and its cross-fitting."""

import numpy as np
import pytest

from facecore.ldl.distributions import gaussian_label_distribution
from facecore.ldl.stack import RbfSvr, TopStack, fit_stack
from facecore.training.learners import SvrStack
from facecore.training.runner import out_of_fold

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
    # the product with the support vectors runs in float16: close, not exact
    np.testing.assert_allclose(svr.predict(Xt), want, rtol=2e-3, atol=0.05)
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
    stack = TopStack(coef=(0.5, 0.5), intercept=0.0, temperature=1.5)
    values, out = stack.apply(probs, BINS, svr_pred=np.array([40.0, 70.0]))
    np.testing.assert_allclose(values, [35.0, 65.0], atol=0.05)
    np.testing.assert_allclose(out @ BINS, values, atol=0.05)  # the mean is the served age
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert np.sqrt(out[0] @ (BINS - 35) ** 2) > 4.0  # tempered by 1.5: wider than sigma 4
    with pytest.raises(ValueError, match="svr_pred"):
        stack.apply(probs, BINS)


def test_crossfit_stack_beats_either_input_when_they_err_differently():
    rng = np.random.default_rng(2)
    y = rng.uniform(1, 90, 1000)
    top = y + 0.3 * (45 - y) + rng.normal(0, 4, 1000)  # pulled to the mean
    svr = y + rng.normal(0, 8, 1000)  # unbiased, noisier
    probs = gaussian_label_distribution(np.clip(top, 0, 100), BINS, 5.0)
    folds = [(np.setdiff1d(np.arange(1000), te), te) for te in np.array_split(np.arange(1000), 5)]
    oof = out_of_fold(SvrStack(BINS), np.column_stack([probs, svr]), y, folds)
    values, dists = oof.values, oof.distributions
    mae = lambda p: float(np.mean(np.abs(p - y)))  # noqa: E731
    assert mae(values) < min(mae(probs @ BINS), mae(svr)) - 0.3
    assert len(oof.estimators) == 5 and all(e.stack_.temperature >= 1.0 for e in oof.estimators)
    whole = SvrStack(BINS).fit(np.column_stack([probs, svr]), y).stack_
    lo = np.argmax(np.cumsum(dists, 1) >= 0.05 - 1e-9, 1)
    hi = np.argmax(np.cumsum(dists, 1) >= 0.95 - 1e-9, 1)
    cover = np.mean((y >= BINS[lo]) & (y <= BINS[hi]))
    assert 0.85 < cover < 0.95  # the temperature is chosen for 90% coverage
    assert whole.coef[0] > 0 and whole.coef[1] > 0


def test_a_rating_svr_and_a_stack_without_tempering_round_trip():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    score = 3 + 0.5 * X[:, 0]  # a rating: no log
    pipe = make_pipeline(StandardScaler(), SVR(C=1.0, epsilon=0.05)).fit(X, score)
    svr = RbfSvr.from_pipeline(pipe, log_target=False)
    np.testing.assert_allclose(svr.predict(X[:10]), pipe.predict(X[:10]), atol=5e-3)
    bins = np.arange(1.0, 5.01, 0.5)
    probs = gaussian_label_distribution(np.clip(score, 1, 5), bins, 0.5)
    stack = (
        SvrStack(bins, temper_for_coverage=False)
        .fit(np.column_stack([probs, svr.predict(X)]), score)
        .stack_
    )
    assert stack.temperature == 1.0
    import dataclasses

    stack = dataclasses.replace(stack, svr=svr)
    back = TopStack.from_doc(stack.to_doc())
    assert back.svr is not None and not back.svr.log_target
    v1, p1 = stack.apply(probs[:5], bins, features=X[:5])
    v2, p2 = back.apply(probs[:5], bins, features=X[:5])
    np.testing.assert_allclose(v1, v2, atol=0.05)  # float16 support vectors in the file
    assert "svr" not in stack.to_doc(with_svr=False)
