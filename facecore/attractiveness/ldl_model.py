"""The geometric fusion a rating-distribution model's file may hold, applied when serving.

A :class:`facecore.heads.distribution.TopDistributionModel` written by
:mod:`facecore.attractiveness.ldl_train` may carry a geometric fusion (``metadata["fusion"]``): a
ridge regression of the rating on the deep expectation and the 42 geometric landmark features
(:func:`facecore.features.geometric_features`), fitted by ``ldl_train.fuse_geometric``. The
``attractiveness`` stage (:class:`facecore.attractiveness.model.AttractivenessStage`) then serves
the fused rating, with the distribution translated to it (:func:`fuse_with_geometry`).

Paper: Fan et al., "Label Distribution-Based Facial Attractiveness Computation by Deep Residual
Learning", IEEE TMM 2018 (the fusion of deep and geometric features).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facecore.ldl.distributions import shift_distribution
from facecore.types import Face

__all__ = ["apply_fusion", "fuse_with_geometry"]


def apply_fusion(fusion: dict[str, Any], deep: np.ndarray, geometric: np.ndarray) -> np.ndarray:
    """The fused rating of ``fuse_geometric``'s parameters (``mean``, ``scale``, ``coef``,
    ``intercept``): deep expectations (N,) and geometric features (N, 42) -> ratings (N,)."""
    X = np.column_stack([deep, geometric])
    z = (X - np.asarray(fusion["mean"])) / np.asarray(fusion["scale"])
    return z @ np.asarray(fusion["coef"]) + float(fusion["intercept"])


def fuse_with_geometry(
    fusion: dict[str, Any],
    faces: Sequence[Face],
    values: np.ndarray,
    probs: np.ndarray,
    bins: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """The fused values (clipped to the bins) and the distributions translated to them; a face
    without landmarks keeps its deep value and distribution."""
    from facecore.features import geometric_features

    b = np.asarray(bins, dtype=np.float64)
    out_v, out_p = values.copy(), probs.copy()
    for i, face in enumerate(faces):
        if face.landmarks is None:  # no geometry: the deep value stands
            continue
        geo = geometric_features(face.landmarks).astype(np.float64)[None, :]
        fused = float(np.clip(apply_fusion(fusion, values[i : i + 1], geo)[0], b[0], b[-1]))
        out_p[i] = shift_distribution(probs[i], b, fused - float(probs[i] @ b))
        out_v[i] = fused
    return out_v, out_p
