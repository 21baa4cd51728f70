"""The training of facecore's heads: recipes, one runner, one publisher, and their pieces.

A head's training is a recipe (:class:`facecore.training.runner.Recipe`; the shipped ones by
model name in :mod:`facecore.training.recipes`) that :func:`facecore.training.runner.train`
runs: its learners (:mod:`facecore.training.learners`) cross-validated by one out-of-fold
helper, the rule, the final fit (:mod:`facecore.training.fit`, the one fit loop) and
:mod:`facecore.training.publish`. Import the modules explicitly; this package imports nothing.
"""

__all__: list[str] = []
