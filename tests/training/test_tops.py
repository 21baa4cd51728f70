"""facecore.training.tops: the recipe, one fit and resumable cross-validation (tiny data)."""

import numpy as np
import pytest

from facecore.ldl.distributions import gaussian_label_distribution
from facecore.training import tops
from facecore.training.folds import kfold_splits
from facecore.training.tops import TopRecipe, cross_validated_distributions, new_top

BINS = np.arange(1.0, 6.0)


def test_recipe_input_node():
    assert TopRecipe().input_node == "stage2"
    assert TopRecipe(start="stage4").input_node == "stage3"
    assert TopRecipe(start="stage1").input_node == "stem"


@pytest.fixture(scope="module")
def toy():
    """Stage-4 maps whose first channel carries the target; 40 samples."""
    rng = np.random.default_rng(0)
    y = rng.uniform(1, 5, 40)
    maps = rng.normal(0, 0.1, (40, 256, 4, 4)).astype(np.float32)
    maps[:, 0] += y[:, None, None]
    return maps, gaussian_label_distribution(y, BINS, 0.5), y


def test_new_top_copies_the_published_stages():
    top = new_top(TopRecipe(start="stage5"), 5)
    assert top.input_node == "stage4" and top.fc.out_features == 5


def test_cross_validation_is_resumable_and_refuses_another_recipe(toy, tmp_path, monkeypatch):
    maps, targets, _ = toy
    folds = kfold_splits(len(maps), 2, 0)
    recipe = TopRecipe(start="stage5", epochs=2, batch_size=8, lr=1e-3, hflip=False)
    oof, seconds = cross_validated_distributions(maps, targets, folds, recipe, work_dir=tmp_path)
    assert oof.shape == targets.shape and not np.isnan(oof).any() and len(seconds) == 2
    np.testing.assert_allclose(oof.sum(1), 1.0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.glob("fold*.npz")) == ["fold0.npz", "fold1.npz"]

    def boom(*a, **k):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(tops, "train_top", boom)
    again, _ = cross_validated_distributions(maps, targets, folds, recipe, work_dir=tmp_path)
    np.testing.assert_array_equal(again, oof)
    with pytest.raises(ValueError, match="another recipe"):
        cross_validated_distributions(
            maps,
            targets,
            folds,
            TopRecipe(start="stage5", epochs=3, hflip=False),
            work_dir=tmp_path,
        )


def test_flip_augmentation_needs_the_mirrored_maps(toy):
    maps, targets, _ = toy
    with pytest.raises(ValueError, match="maps_flipped"):
        tops.train_top(maps, targets, TopRecipe(start="stage5", epochs=1))
