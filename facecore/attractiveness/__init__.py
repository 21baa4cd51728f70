"""Facial attractiveness scoring: features, the classical papers' regressors, fusion and serving.

* :mod:`~facecore.attractiveness.face_features` - the named feature blocks of a face (deep trunk
  features, descriptor, geometric, LBP, BLBP, aligned crop for PCANet), shared by training and
  serving.
* :mod:`~facecore.attractiveness.deep_regressors` - deep features + RBF SVR / random forest
  (Zang et al., "Prediction of users' facial attractiveness on an online dating website").
* :mod:`~facecore.attractiveness.fusion` - per-feature-set regressors and score-level fusion
  (Zhang, Xiao, Lu, "Facial beauty analysis based on features prediction and beautification
  models", PAA 2018).
* :mod:`~facecore.attractiveness.model` - the shipped model and the ``attractiveness`` stage.
* :mod:`~facecore.attractiveness.train` - the classical model's recipe: its training set's
  feature blocks (cached), cross-validation on SCUT-FBP5500 and model shipping, run by
  :mod:`facecore.training`.

Models trained on SCUT-FBP5500 are for non-commercial research use only. Names are imported lazily
(scikit-learn is not imported until an estimator is used).
"""

from typing import TYPE_CHECKING

from facecore.lazy import lazy_exports

if TYPE_CHECKING:
    from facecore.attractiveness.deep_regressors import (
        LEARNERS,
        CompactSVR,
        DeepFeatureRegressor,
        make_learner,
    )
    from facecore.attractiveness.face_features import (
        BLOCK_NAMES,
        FEATURE_CODE_VERSION,
        FaceFeatureExtractor,
        Layout,
        block_columns,
        layout_width,
        stack_blocks,
    )
    from facecore.attractiveness.fusion import (
        BlockSelector,
        FeatureSetRegressor,
        FusionCV,
        MeanCombiner,
        ScoreFusionRegressor,
        fusion_combos,
        fusion_cross_val_predict,
        paper_estimators,
    )
    from facecore.attractiveness.model import AttractivenessModel, AttractivenessStage

_WHERE = {
    ".deep_regressors": ("LEARNERS", "CompactSVR", "DeepFeatureRegressor", "make_learner"),
    ".face_features": (
        "BLOCK_NAMES",
        "FEATURE_CODE_VERSION",
        "FaceFeatureExtractor",
        "Layout",
        "block_columns",
        "layout_width",
        "stack_blocks",
    ),
    ".fusion": (
        "BlockSelector",
        "FeatureSetRegressor",
        "FusionCV",
        "MeanCombiner",
        "ScoreFusionRegressor",
        "fusion_combos",
        "fusion_cross_val_predict",
        "paper_estimators",
    ),
    ".model": ("AttractivenessModel", "AttractivenessStage"),
}

__all__ = [
    "AttractivenessModel",
    "AttractivenessStage",
    "BLOCK_NAMES",
    "BlockSelector",
    "CompactSVR",
    "DeepFeatureRegressor",
    "FEATURE_CODE_VERSION",
    "FaceFeatureExtractor",
    "FeatureSetRegressor",
    "FusionCV",
    "LEARNERS",
    "Layout",
    "MeanCombiner",
    "ScoreFusionRegressor",
    "block_columns",
    "fusion_combos",
    "fusion_cross_val_predict",
    "layout_width",
    "make_learner",
    "paper_estimators",
    "stack_blocks",
]

__getattr__, __dir__ = lazy_exports(
    __name__, {name: module for module, names in _WHERE.items() for name in names}
)
