"""facecore.training.learners: the estimators a recipe compares, cross-validated by out_of_fold."""

import numpy as np
import pytest

from facecore.ldl.distributions import gaussian_label_distribution
from facecore.training import tops
from facecore.training.folds import kfold_splits
from facecore.training.learners import (
    Int8Top,
    IsotonicCorrection,
    MeanDistribution,
    SvrStack,
    TopRegressor,
    central_intervals,
    coverage_temperature,
    feature_pipeline,
    log_target_svr,
    svr_search,
)
from facecore.training.runner import out_of_fold
from facecore.training.tops import TopRecipe
from facecore.types import Prediction

BINS = np.arange(1.0, 6.0)
pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def toy():
    """Stage-4 maps whose first channel carries the target; 40 samples."""
    rng = np.random.default_rng(0)
    y = rng.uniform(1, 5, 40)
    maps = rng.normal(0, 0.1, (40, 256, 4, 4)).astype(np.float32)
    maps[:, 0] += y[:, None, None]
    return maps, gaussian_label_distribution(y, BINS, 0.5), y


def test_central_intervals_are_those_of_a_prediction():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(11) * 0.5, 200)
    bins = np.arange(0.0, 11.0)
    got = central_intervals(probs, bins, 0.8)
    want = [Prediction(0.0, "t", tuple(bins), p).interval(0.8) for p in probs]
    np.testing.assert_array_equal(got, np.array(want))


def test_coverage_temperature_takes_the_first_of_the_closest():
    y = np.zeros(10)
    narrow = np.tile([0.0, 1.0, 0.0], (10, 1))  # the interval [1, 1] misses y = 0
    wide = np.tile([0.5, 0.0, 0.5], (10, 1))
    t, extra = coverage_temperature(
        [1.0, 2.0, 3.0], lambda t: (narrow if t == 1.0 else wide, t), [0, 1, 2], y
    )
    assert (t, extra) == (2.0, 2.0)


def test_baselines_are_estimators_with_distributions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = X[:, 0] + 3.0
    D = gaussian_label_distribution(y, BINS, 0.5)
    folds = kfold_splits(60, 3, 0)
    mean = out_of_fold(MeanDistribution(BINS), X, D, folds)
    for tr, te in folds:
        np.testing.assert_allclose(mean.distributions[te], np.tile(D[tr].mean(0), (len(te), 1)))
    from facecore.ldl import MaxEntLDL

    maxent = out_of_fold(feature_pipeline(MaxEntLDL(alpha=0.1, bins=BINS)), X, D, folds)
    np.testing.assert_allclose(maxent.values, maxent.distributions @ BINS)
    assert np.corrcoef(maxent.values, y)[0, 1] > 0.9
    ages = np.exp(X[:, 0]) * 10
    svr = out_of_fold(log_target_svr(3.0, 0.05), X, ages, folds)
    assert np.corrcoef(np.log1p(svr.values), np.log1p(ages))[0, 1] > 0.9


def test_svr_search_chooses_inside_each_training_set():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=90)
    oof = out_of_fold(svr_search(5, ((1.0, 0.5), (4.0, 0.5)), 0.05), X, y, kfold_splits(90, 3, 0))
    assert [e.best_params_["svr__gamma"] for e in oof.estimators] == [0.1, 0.1, 0.1]
    assert all(e.best_params_["svr__C"] in (1.0, 4.0) for e in oof.estimators)


def test_correction_and_stack_are_cross_fitted_meta_estimators():
    rng = np.random.default_rng(0)
    bins = np.arange(0.0, 101.0)
    y = rng.uniform(1, 90, 600).round()
    probs = gaussian_label_distribution(35 + 0.6 * (y - 35) + rng.normal(0, 4, 600), bins, 2.0)
    folds = kfold_splits(600, 5, 0, stratify=y)
    corr = out_of_fold(IsotonicCorrection(bins), probs, y, folds)
    assert np.mean(np.abs(corr.values - y)) < 0.6 * np.mean(np.abs(probs @ bins - y))
    svr = y + rng.normal(0, 6, 600)
    stack = out_of_fold(SvrStack(bins), np.column_stack([probs, svr]), y, folds)
    assert len(stack.estimators) == 5 and all(e.stack_.temperature > 1.0 for e in stack.estimators)
    assert np.mean(np.abs(stack.values - y)) < np.mean(np.abs(probs @ bins - y))


def test_top_folds_are_resumable_and_int8_reads_their_checkpoints(toy, tmp_path, monkeypatch):
    maps, targets, _ = toy
    rows = np.arange(len(maps))[:, None]
    folds = kfold_splits(len(maps), 2, 0)
    recipe = TopRecipe(start="stage5", epochs=2, batch_size=8, lr=1e-3, hflip=False)
    top = TopRegressor(recipe, BINS, maps)
    oof = out_of_fold(top, rows, targets, folds, cache_dir=tmp_path)
    p = oof.distributions
    assert p.shape == targets.shape and not np.isnan(p).any() and len(oof.seconds) == 2
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(oof.values, p @ BINS)
    names = sorted(x.name for x in tmp_path.iterdir())
    assert names == ["ckpt0", "ckpt1", "fold0.npz", "fold1.npz", "recipe.json"]

    q = out_of_fold(Int8Top(recipe, BINS, maps), rows, targets, folds, cache_dir=tmp_path)
    assert np.abs(q.distributions - p).max() < 0.05  # int8 close to the float folds
    assert sorted(x.name for x in tmp_path.iterdir()) == names  # no fold files of its own

    def boom(*a, **k):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(tops, "train_top", boom)
    again = out_of_fold(top, rows, targets, folds, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.distributions, p)
    other = TopRegressor(TopRecipe(start="stage5", epochs=3, hflip=False), BINS, maps)
    with pytest.raises(ValueError, match="another recipe"):
        out_of_fold(other, rows, targets, folds, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="ckpt0"):
        out_of_fold(Int8Top(recipe, BINS, maps), rows, targets, folds, cache_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="epoch 2 of 3"):
        out_of_fold(Int8Top(other.recipe, BINS, maps), rows, targets, folds, cache_dir=tmp_path)
