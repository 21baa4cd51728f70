"""Cross-validation folds with fixed seeds.

:func:`kfold_splits` gives the outer folds every recipe uses: exactly
``KFold(k, shuffle=True, random_state=seed)``, so a cross-validation table is reproducible from
its seed, or ``StratifiedKFold`` on binned targets. This module implements no paper.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_targets", "kfold_splits"]


def bin_targets(values: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Class labels (N,) for stratifying on ``values`` (N,): numbers with more than ``n_bins``
    distinct values are cut into ``n_bins`` quantile bins (int64; fewer when quantiles
    coincide), anything else is returned as it is."""
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"stratify must be 1-D, got shape {v.shape}")
    if v.dtype.kind not in "iuf" or len(np.unique(v)) <= n_bins:
        return v
    edges = np.unique(np.quantile(v.astype(np.float64), np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, v.astype(np.float64), side="right").astype(np.int64)


def kfold_splits(
    n: int, k: int = 5, seed: int = 0, *, stratify: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` seeded folds of ``n`` samples: sorted int64 ``(train_idx, test_idx)`` whose test
    sets partition ``range(n)``, balanced over ``stratify`` (N,) with ``StratifiedKFold`` on
    :func:`bin_targets`."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= k <= n, got k={k}, n={n}")
    index = np.arange(n)
    if stratify is None:
        splits = KFold(k, shuffle=True, random_state=seed).split(index)
    else:
        labels = bin_targets(stratify)
        if labels.shape != (n,):
            raise ValueError(f"stratify must have shape ({n},), got {labels.shape}")
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(index, labels)
    return [(np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)) for tr, te in splits]
