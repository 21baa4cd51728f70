"""Every shipped model's recipe, by model name: where a run, a study or another recipe finds it.

:func:`get_recipe` imports the head's ``train`` module only when asked (the heads' training is
heavy and optional).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RECIPES", "get_recipe"]

#: Model name -> (module, class, keyword arguments) of its recipe.
RECIPES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "age_utkface": ("facecore.age.train", "AgeRecipe", {}),
    "attractiveness_scut": (
        "facecore.attractiveness.ldl_train",
        "LdlRecipe",
        {"dataset": "scut-fbp5500"},
    ),
    "attractiveness_mebeauty": (
        "facecore.attractiveness.ldl_train",
        "LdlRecipe",
        {"dataset": "mebeauty"},
    ),
    "attractiveness_scut_classical": ("facecore.attractiveness.train", "ClassicalRecipe", {}),
    "quality_faces": ("facecore.quality.train", "QualityRecipe", {}),
}


def get_recipe(name: str, **changes: Any) -> Any:
    """The recipe of the model ``name`` (a key of :data:`RECIPES`, else KeyError), with
    ``changes`` to its settings."""
    if name not in RECIPES:
        raise KeyError(f"no recipe for {name!r}; known: {sorted(RECIPES)}")
    module, cls, kwargs = RECIPES[name]
    return getattr(importlib.import_module(module), cls)(**{**kwargs, **changes})
