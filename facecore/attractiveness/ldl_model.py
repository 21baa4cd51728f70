"""Serving an attractiveness model that predicts a rating distribution.

:class:`LdlAttractiveness` serves a :class:`facecore.ldl.deep.TopDistributionModel` written by
:mod:`facecore.attractiveness.ldl_train` (manifest architecture ``"dlib_face_resnet_top"``): a
fine-tuned trunk top that outputs a distribution over the dataset's rating values. When the
file holds a geometric fusion (``metadata["fusion"]``: a ridge regression of the rating on the
deep expectation and the 42 geometric landmark features), the value is the fused rating and the
distribution is translated to it. The registered ``attractiveness`` stage
(:class:`facecore.attractiveness.model.AttractivenessStage`) delegates to it for such models.

Paper: Fan et al., "Label Distribution-Based Facial Attractiveness Computation by Deep Residual
Learning", IEEE TMM 2018.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facecore.ldl.deep import DistributionHead, TopDistributionModel, shift_distribution
from facecore.training.tops import TOP_ARCHITECTURE
from facecore.types import Face

__all__ = ["DEEP_ARCHITECTURE", "LdlAttractiveness"]

#: The manifest architecture of the models served here.
DEEP_ARCHITECTURE = TOP_ARCHITECTURE


class LdlAttractiveness(DistributionHead):
    """The attractiveness distribution of every face (not registered on its own)."""

    name = "attractiveness"
    task = "attractiveness"
    unit = "score"
    default_model = "attractiveness_scut"
    requires = ("landmarks", "trunk")

    def adjust(
        self,
        model: TopDistributionModel,
        faces: Sequence[Face],
        values: np.ndarray,
        probs: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        fusion = model.metadata.get("fusion")
        if not fusion:
            return values, probs
        from facecore.attractiveness.ldl_train import apply_fusion
        from facecore.features import geometric_features

        bins = np.asarray(model.bins, dtype=np.float64)
        out_v, out_p = values.copy(), probs.copy()
        for i, face in enumerate(faces):
            if face.landmarks is None:  # no geometry: the deep value stands
                continue
            geo = geometric_features(face.landmarks).astype(np.float64)[None, :]
            fused = float(apply_fusion(fusion, values[i : i + 1], geo)[0])
            fused = float(np.clip(fused, bins[0], bins[-1]))
            out_p[i] = shift_distribution(probs[i], bins, fused - float(probs[i] @ bins))
            out_v[i] = fused
        return out_v, out_p
