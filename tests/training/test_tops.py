"""facecore.training.tops: the recipe, one fit, the cached views and calibration rows."""

import numpy as np
import pytest

from facecore.ldl.distributions import gaussian_label_distribution
from facecore.training import tops
from facecore.training.tops import TopRecipe, new_top

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


def test_flip_augmentation_needs_the_mirrored_maps(toy):
    maps, targets, _ = toy
    with pytest.raises(ValueError, match="maps_flipped"):
        tops.train_top(maps, targets, TopRecipe(start="stage5", epochs=1))


def test_jitter_needs_its_views_and_is_left_out_of_old_recipes(toy):
    maps, targets, _ = toy
    assert "jitter" not in TopRecipe().to_dict()  # old fold folders keep their key
    assert TopRecipe(jitter=2).to_dict()["jitter"] == 2
    recipe = TopRecipe(start="stage5", epochs=1, jitter=1)
    with pytest.raises(ValueError, match="3 maps_views"):
        tops.train_top(maps, targets, recipe, maps_views=[maps])
    top, result = tops.train_top(maps, targets, recipe, maps_views=[maps, maps, maps])
    assert len(result.history) == 1 and top.fc.out_features == targets.shape[1]


def test_dataset_views_are_cached_mirrors_then_jittered_pairs(tmp_path, monkeypatch):
    """The views: the mirrored maps, then each jittered view and its mirror, cached once."""
    from types import SimpleNamespace

    from facecore.training import augment

    rng = np.random.default_rng(0)
    data = SimpleNamespace(
        chips=rng.integers(0, 256, (3, 150, 150, 3), dtype=np.uint8), cache_key="toy"
    )
    views = tops.dataset_views(data, "stem", 2, tmp_path)
    assert len(views) == 5 and len({v.shape for v in views}) == 1 and views[0].shape[:2] == (3, 32)
    assert not np.array_equal(views[1], views[3])  # two different jitters
    calls = []
    real = augment.jitter_chips
    monkeypatch.setattr(augment, "jitter_chips", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = tops.dataset_views(data, "stem", 2, tmp_path)
    assert not calls  # every view read back, none jittered again
    for a, b in zip(views, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_calibration_maps_are_a_seeded_sample_of_the_rows(toy):
    maps, _, _ = toy
    a = tops.calibration_maps(maps, np.arange(30), size=10)
    assert a.shape == (10, *maps.shape[1:]) and a.dtype == np.float32
    np.testing.assert_array_equal(a, tops.calibration_maps(maps, np.arange(30), size=10))
    assert len(tops.calibration_maps(maps, np.arange(5), size=10)) == 5  # fewer rows: all


def test_new_top_is_seeded_by_the_recipe_whatever_the_global_generator():
    import torch

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = new_top(TopRecipe(start="stage5"), 3).fc.weight.detach().clone()
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is left alone
    torch.rand(1000)  # the process did other work before the next fold
    b = new_top(TopRecipe(start="stage5"), 3).fc.weight.detach().clone()
    c = new_top(TopRecipe(start="stage5", seed=1), 3).fc.weight.detach().clone()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gradient_clipping_is_on_for_tops_and_left_out_of_old_keys():
    assert TopRecipe().max_grad_norm == 1.0
    assert "max_grad_norm" in TopRecipe().to_dict()
    assert "max_grad_norm" not in TopRecipe(max_grad_norm=None).to_dict()


def test_the_card_names_the_clipping_only_when_there_is_some():
    assert TopRecipe().clip_note == ", gradient norm clipped to 1.0"
    assert TopRecipe(max_grad_norm=None).clip_note == ""
