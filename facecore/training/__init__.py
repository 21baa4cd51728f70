"""The training of facecore's heads: recipes, one runner, one publisher, and their pieces.

A head's training is a recipe (:class:`facecore.training.runner.Recipe`; the shipped ones by
model name in :mod:`facecore.training.recipes`) that :func:`facecore.training.runner.train`
runs: its learners (:mod:`facecore.training.learners`, scikit-learn estimators) cross-validated
by one out-of-fold helper, the rule, the final fit, and :mod:`facecore.training.publish` (model
file, ``cv.json``, manifest entry, card, figures). Importing this package is light (numpy
only). It exports the folds and the model card writer (the metrics are :mod:`facecore.metrics`);
the other parts are imported explicitly:

* :mod:`~facecore.training.folds` - seeded K-fold (plain, stratified on binned targets, grouped);
* :mod:`~facecore.training.publish` - :class:`ModelCard`, :func:`render_card`, :func:`write_card`,
  :func:`package_versions`;
* :mod:`~facecore.training.fit` (``import facecore.training.fit``; imports torch) - a resumable,
  checkpointed fit loop for heads (KL or a custom loss, one-cycle or cosine);
* :mod:`~facecore.training.chips` (``import facecore.training.chips``) - aligned chips of a
  dataset and frozen maps of dlib's face ResNet, cached on disk, resumable.
"""

from facecore.training.folds import bin_targets, kfold_splits
from facecore.training.publish import (
    CardFigure,
    CardTable,
    ModelCard,
    markdown_table,
    package_versions,
    render_card,
    write_card,
)

__all__ = [
    "CardFigure",
    "CardTable",
    "ModelCard",
    "bin_targets",
    "kfold_splits",
    "markdown_table",
    "package_versions",
    "render_card",
    "write_card",
]
