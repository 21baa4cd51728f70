"""Facial attractiveness scoring: features, the classical papers' regressors, fusion and serving.

* :mod:`~facecore.attractiveness.face_features` - the named feature blocks of a face (deep trunk
  features, descriptor, geometric, LBP, BLBP, aligned crop for PCANet), shared by training and
  serving.
* :mod:`~facecore.attractiveness.dating` - deep features + RBF SVR / random forest (Zang et al.,
  "Prediction of users' facial attractiveness on an online dating website").
* :mod:`~facecore.attractiveness.fusion` - per-feature-set regressors and score-level fusion
  (Zhang, Xiao, Lu, "Facial beauty analysis based on features prediction and beautification
  models", PAA 2018).
* :mod:`~facecore.attractiveness.model` - the shipped model and the analyzer stage.
* :mod:`~facecore.attractiveness.train` - cross-validation on SCUT-FBP5500 and model shipping.

Models trained on SCUT-FBP5500 are for non-commercial research use only. Names are imported lazily
(scikit-learn is not imported until an estimator is used).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "LEARNERS": "dating",
    "CompactSVR": "dating",
    "DeepFeatureRegressor": "dating",
    "make_learner": "dating",
    "BLOCK_NAMES": "face_features",
    "FEATURE_CODE_VERSION": "face_features",
    "FaceFeatureExtractor": "face_features",
    "Layout": "face_features",
    "block_columns": "face_features",
    "layout_width": "face_features",
    "stack_blocks": "face_features",
    "BlockSelector": "fusion",
    "FeatureSetRegressor": "fusion",
    "FusionCV": "fusion",
    "MeanCombiner": "fusion",
    "ScoreFusionRegressor": "fusion",
    "fusion_combos": "fusion",
    "fusion_cross_val_predict": "fusion",
    "paper_estimators": "fusion",
    "AttractivenessModel": "model",
    "AttractivenessScorer": "model",
}

if TYPE_CHECKING:
    from facecore.attractiveness.dating import (
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
    from facecore.attractiveness.model import AttractivenessModel, AttractivenessScorer

__all__ = [
    "BLOCK_NAMES",
    "FEATURE_CODE_VERSION",
    "LEARNERS",
    "AttractivenessModel",
    "AttractivenessScorer",
    "BlockSelector",
    "CompactSVR",
    "DeepFeatureRegressor",
    "FaceFeatureExtractor",
    "FeatureSetRegressor",
    "FusionCV",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
