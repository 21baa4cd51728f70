"""Label distribution learning: predict the distribution of a label, not only its value.

* :mod:`~facecore.ldl.distributions` - label distributions from labels (a discretised Gaussian
  around a value, the histogram of individual ratings).
* :mod:`~facecore.ldl.deep` - a fine-tuned top of the face trunk that outputs a distribution over
  bins (B. Gao et al., "Deep Label Distribution Learning With Label Ambiguity", IEEE TIP 2017),
  its model file and the stage base class the distribution heads (age, ...) share.
"""

from facecore.ldl.distributions import gaussian_label_distribution, rating_histograms

__all__ = ["gaussian_label_distribution", "rating_histograms"]
