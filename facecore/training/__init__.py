"""The training scaffold of facecore's heads: folds, model cards, fit loop, chip cache.

Importing this package is light (numpy only). It exports the folds and the model card writer
(the metrics are :mod:`facecore.metrics`); the torch parts are imported explicitly:

* :mod:`~facecore.training.folds` - seeded K-fold (plain, stratified on binned targets, grouped)
  and an inner validation split for early stopping;
* :mod:`~facecore.training.card` - :class:`ModelCard`, :func:`render_card`, :func:`write_card`,
  :func:`package_versions`;
* :mod:`~facecore.training.fit` (``import facecore.training.fit``; imports torch) - a resumable,
  checkpointed fit loop for heads (KL / CE / L1, one-cycle, hflip, early stopping);
* :mod:`~facecore.training.chips` (``import facecore.training.chips``) - aligned chips of a
  dataset and frozen maps of dlib's face ResNet, cached on disk, resumable.
"""

from facecore.training.card import (
    CardFigure,
    CardTable,
    ModelCard,
    markdown_table,
    package_versions,
    render_card,
    write_card,
)
from facecore.training.folds import bin_targets, inner_split, kfold_splits

__all__ = [
    "CardFigure",
    "CardTable",
    "ModelCard",
    "bin_targets",
    "inner_split",
    "kfold_splits",
    "markdown_table",
    "package_versions",
    "render_card",
    "write_card",
]
