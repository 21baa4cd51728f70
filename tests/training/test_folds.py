"""Seeded folds: plain K-fold equals sklearn's, stratified and grouped variants, inner split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from facecore.training.folds import bin_targets, kfold_splits


def _check_partition(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> None:
    tests = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tests), np.arange(n))
    for tr, te in folds:
        assert np.intersect1d(tr, te).size == 0 and len(tr) + len(te) == n


@pytest.mark.parametrize(("n", "k", "seed"), [(200, 5, 0), (3300, 5, 0), (17, 3, 7)])
def test_plain_folds_are_sklearns_kfold(n: int, k: int, seed: int) -> None:
    ours = kfold_splits(n, k, seed)
    ref = list(KFold(k, shuffle=True, random_state=seed).split(range(n)))
    assert len(ours) == k
    for (tr, te), (rtr, rte) in zip(ours, ref, strict=True):
        assert np.array_equal(tr, rtr) and np.array_equal(te, rte)
    _check_partition(ours, n)


def test_seed_changes_folds_and_is_reproducible() -> None:
    a, b, c = kfold_splits(50, 5, 0), kfold_splits(50, 5, 0), kfold_splits(50, 5, 1)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))


def test_stratified_on_binned_targets_balances_each_fold() -> None:
    rng = np.random.default_rng(0)
    y = rng.exponential(size=500)  # skewed: plain folds would vary more in their means
    folds = kfold_splits(500, 5, 0, stratify=y)
    _check_partition(folds, 500)
    bins = bin_targets(y, 10)
    assert len(np.unique(bins)) == 10
    for _, te in folds:  # every fold holds 10 of each bin of 50
        assert np.array_equal(np.bincount(bins[te], minlength=10), np.full(10, 10))


def test_bin_targets_keeps_few_or_non_numeric_values() -> None:
    assert np.array_equal(bin_targets(np.array([1, 2, 1, 2])), [1, 2, 1, 2])
    labels = np.array(["AF", "AM", "CF"])
    assert np.array_equal(bin_targets(labels), labels)
    with pytest.raises(ValueError):
        bin_targets(np.zeros((3, 2)))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        kfold_splits(3, 5)
    with pytest.raises(ValueError):
        kfold_splits(10, 1)
    with pytest.raises(ValueError, match="stratify"):
        kfold_splits(10, 2, stratify=np.arange(9))
