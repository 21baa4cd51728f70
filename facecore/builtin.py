"""facecore's own stages, as the stage registry finds them: the package's plugin list.

The pipeline (:mod:`facecore.stages`, the analyzer, the stage loop) names no stage. It reads
the ``facecore.stages`` entry points of the installed distributions; facecore's points here
(``pyproject.toml``), and a plugin package points to a list of its own the same way.

This module implements no paper.
"""

from __future__ import annotations

__all__ = ["STAGE_MODULES"]

#: Modules whose import registers facecore's stages, in pipeline order (the order
#: :func:`facecore.stages.list_stages` and the default heads keep).
STAGE_MODULES = (
    "facecore.landmarks",
    "facecore.trunk",
    "facecore.attractiveness.model",
    "facecore.age.model",
    "facecore.quality.model",
    "facecore.appearance",
)
