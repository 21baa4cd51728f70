"""Serving-side parts the heads share.

* :mod:`~facecore.heads.base` - :class:`~facecore.heads.base.ModelHead`, the base of the stages
  that serve one manifest model (``age``, ``attractiveness``): the model comes from the router
  (:func:`facecore.model_router.load`), whatever its architecture.
* :mod:`~facecore.heads.distribution` - :class:`~facecore.heads.distribution.TopDistributionModel`,
  the model file of a fine-tuned trunk top that outputs a distribution, and its loader.

This package implements no paper (see :mod:`facecore.heads.distribution`).
"""

__all__: list[str] = []
