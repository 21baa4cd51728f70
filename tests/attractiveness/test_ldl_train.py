"""facecore.attractiveness.ldl_train: the label-enhancement rule and the geometric fusion."""

import numpy as np
import pytest

from facecore.attractiveness.ldl_model import apply_fusion
from facecore.attractiveness.ldl_train import (
    DATASETS,
    LdlTrainConfig,
    fuse_geometric,
    label_sigma,
    member_recipe,
)
from facecore.training.tops import TopRecipe


def test_datasets():
    assert DATASETS["mebeauty"].bins == tuple(float(b) for b in range(1, 11))
    assert DATASETS["scut-fbp5500"].bins == (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
    assert DATASETS["scut-fbp5500"].scale == (1.0, 5.0)
    for spec in DATASETS.values():
        assert "non-commercial" in spec.licence and spec.default_out in spec.rebuild


def test_label_sigma_from_mebeauty_raters(shared):
    root = shared("mebeauty").parent
    sigma = label_sigma(root)
    # Raters disagree by about 1.5 points on 1-10: about 0.65 on SCUT's 1-5 scale.
    assert 0.4 < sigma < 1.0


def test_fusion_recovers_a_linear_rating():
    rng = np.random.default_rng(0)
    deep = rng.uniform(1, 5, 400)
    geo = rng.normal(size=(400, 42))
    y = 0.8 * deep + 0.3 * geo[:, 0] + 0.5 + rng.normal(0, 0.05, 400)
    fusion = fuse_geometric(deep, geo, y)
    pred = apply_fusion(fusion, deep, geo)
    assert np.corrcoef(pred, y)[0, 1] > 0.99
    assert set(fusion) == {"mean", "scale", "coef", "intercept", "alpha"}
    assert len(fusion["coef"]) == 43
    with pytest.raises(ValueError):
        apply_fusion(fusion, deep, geo[:, :10])


def test_extra_tops_are_the_main_recipe_with_another_start_and_seed():
    base = TopRecipe(epochs=7, lr=1e-3)
    r = member_recipe(base, "stage4:2")
    assert (r.start, r.seed, r.epochs, r.lr) == ("stage4", 2, 7, 1e-3)
    assert r.input_node == "stage3"
    for bad in ("stage4", "stage9:0", "stage4:x", ":1"):
        with pytest.raises(ValueError, match="START:SEED"):
            member_recipe(base, bad)
    scut = DATASETS["scut-fbp5500"]
    # The dataset's default members unless the config names its own (an empty tuple: none).
    assert LdlTrainConfig(recipe=base).recipes(scut)[1:] == tuple(
        member_recipe(base, m) for m in scut.members
    )
    assert LdlTrainConfig(recipe=base, members=()).recipes(scut) == (base,)


def test_the_trainer_cli_rejects_a_bad_extra_top(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "train_attractiveness_ldl.py"
    spec = importlib.util.spec_from_file_location("train_attractiveness_ldl", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--dataset", "mebeauty", "--data", str(tmp_path), "--extra-tops", "stage4"]
    assert script.main(argv) == 2
    assert "START:SEED" in capsys.readouterr().err
