"""Label distribution learning: predict the distribution of a label, not only its value.

* :mod:`~facecore.ldl.distributions` - label distributions from labels (a discretised Gaussian
  around a value, the histogram of individual ratings), and predicted distributions translated,
  tempered and calibrated.
* :mod:`~facecore.ldl.pairwise` - label distributions from pairwise preferences (Y. Ren, X. Geng,
  "Sense Beauty by Label Distribution Learning", IJCAI 2017: Beauty Distribution Transformation).
* :mod:`~facecore.ldl.maxent` - the maximum-entropy LDL learner fitted by BFGS (SA-BFGS of
  X. Geng, "Label Distribution Learning", IEEE TKDE 2016).
* :mod:`~facecore.ldl.sldl` - structural label distribution learning (Ren & Geng 2017, SLDL): a
  structural-SVM predictor of distributions from features.
* :mod:`~facecore.ldl.stack` - a fine-tuned top's distribution stacked with an SVR on the trunk's
  features (stacked generalisation, Wolpert 1992).
* :mod:`~facecore.ldl.cli` - ``facecore pairwise fit``.
"""

from facecore.lazy import lazy_exports
from facecore.ldl.distributions import gaussian_label_distribution, rating_histograms

__all__ = [
    "DisconnectedComparisonsError",
    "MaxEntLDL",
    "PairwiseLDL",
    "StructuredLDL",
    "gaussian_label_distribution",
    "pairwise_to_distribution",
    "rating_histograms",
]

# The learners subclass scikit-learn's BaseEstimator (about a second to import): they are
# imported on first use, so that ``import facecore.ldl`` and the command line stay light.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DisconnectedComparisonsError": ".pairwise",
        "PairwiseLDL": ".pairwise",
        "pairwise_to_distribution": ".pairwise",
        "MaxEntLDL": ".maxent",
        "StructuredLDL": ".sldl",
    },
    eager=("gaussian_label_distribution", "rating_histograms"),
)
