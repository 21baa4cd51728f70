"""Hand-crafted face features and feature selection, as scikit-learn estimators.

* :mod:`~facecore.features.geometric` - 42 geometric distances/ratios from 68 landmarks.
* :mod:`~facecore.features.lbp` - multi-radius uniform LBP and blocked LBP (BLBP) histograms.
* :mod:`~facecore.features.pcanet` - the two-stage PCANet texture feature.
* :mod:`~facecore.features.selection` - greedy forward selection with KNN + Pearson scoring.

Following B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and
beautification models", Pattern Analysis and Applications 21(2), 2018. scikit-image and OpenCV
are imported only when a feature is computed.
"""

from facecore.features.geometric import (
    FEATURE_NAMES,
    GEOMETRIC_FEATURES,
    N_GEOMETRIC_FEATURES,
    NORMALISERS,
    GeometricFeatures,
    GeometricFeatureSpec,
    NormaliserSpec,
    geometric_features,
)
from facecore.features.lbp import BlockedLBP, LBPHistogram, lbp_histogram, lbp_n_bins
from facecore.features.pcanet import PCANet
from facecore.features.selection import GreedyForwardSelector, knn_cv_predictions, pearson_score

__all__ = [
    "FEATURE_NAMES",
    "GEOMETRIC_FEATURES",
    "N_GEOMETRIC_FEATURES",
    "NORMALISERS",
    "BlockedLBP",
    "GeometricFeatureSpec",
    "GeometricFeatures",
    "GreedyForwardSelector",
    "LBPHistogram",
    "NormaliserSpec",
    "PCANet",
    "geometric_features",
    "knn_cv_predictions",
    "lbp_histogram",
    "lbp_n_bins",
    "pearson_score",
]
