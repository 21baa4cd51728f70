"""facecore.training.recipes: every shipped model's recipe by its name."""

import pytest

from facecore.training.recipes import RECIPES, get_recipe


def test_every_shipped_model_has_its_recipe_under_its_name():
    assert sorted(RECIPES) == [
        "age_utkface",
        "attractiveness_mebeauty",
        "attractiveness_scut",
        "attractiveness_scut_classical",
        "quality_faces",
    ]
    for name in RECIPES:
        assert get_recipe(name).name == name
    assert get_recipe("age_utkface", folds=3).folds == 3
    with pytest.raises(KeyError, match="no recipe"):
        get_recipe("nope")
