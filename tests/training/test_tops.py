"""facecore.training.tops: the recipe, one fit, the cached maps and calibration rows."""

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


def test_dataset_maps_are_the_chips_and_their_mirror_images_cached_once(tmp_path):
    from types import SimpleNamespace

    from facecore.training.chips import frozen_maps

    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    data = SimpleNamespace(chips=chips, cache_key="toy")
    maps, flipped = tops.dataset_maps(data, "stem", tmp_path)
    assert maps.shape == flipped.shape == (3, 32, 35, 35) and maps.dtype == np.float16
    mirrored = frozen_maps(chips[:, :, ::-1].copy(), upto="stem", dtype="float16")
    np.testing.assert_array_equal(flipped, mirrored)
    assert len(list(tmp_path.glob("maps-stem-*.npy"))) == 2
    again = tops.dataset_maps(data, "stem", tmp_path)
    assert all(isinstance(m, np.memmap) for m in again)  # read back, not recomputed
    np.testing.assert_array_equal(again[0], maps)


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
