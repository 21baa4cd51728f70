"""facecore.attractiveness.ldl_train (the rating-distribution recipes): the label-enhancement
rule, the geometric fusion, the ensemble and the rule that chooses what ships."""

import numpy as np
import pytest

from facecore.attractiveness.ldl_model import apply_fusion
from facecore.attractiveness.ldl_train import (
    DATASETS,
    GeometricFusion,
    LdlRecipe,
    label_sigma,
    member_recipe,
)
from facecore.ldl.distributions import gaussian_label_distribution
from facecore.training.runner import OutOfFold, Run
from facecore.training.tops import TopRecipe


def test_datasets():
    assert DATASETS["mebeauty"].bins == tuple(float(b) for b in range(1, 11))
    assert DATASETS["scut-fbp5500"].bins == (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
    for name, spec in DATASETS.items():
        assert "non-commercial" in spec.licence
        assert spec.default_out in LdlRecipe(dataset=name).rebuild


def test_label_sigma_from_mebeauty_raters(shared):
    root = shared("mebeauty").parent
    sigma = label_sigma(root)
    # Raters disagree by about 1.5 points on 1-10: about 0.65 on SCUT's 1-5 scale.
    assert 0.4 < sigma < 1.0


def test_fusion_recovers_a_linear_rating():
    rng = np.random.default_rng(0)
    bins = DATASETS["scut-fbp5500"].bins
    probs = gaussian_label_distribution(rng.uniform(1.5, 4.5, 400), bins, 0.4)
    deep = probs @ np.asarray(bins)
    geo = rng.normal(size=(400, 42))
    y = 0.8 * deep + 0.3 * geo[:, 0] + 0.5 + rng.normal(0, 0.05, 400)
    X = np.column_stack([probs, geo])
    fitted = GeometricFusion(bins).fit(X, y)
    pred = fitted.predict(X)
    assert np.corrcoef(pred, y)[0, 1] > 0.99
    fusion = fitted.fusion_
    assert set(fusion) == {"mean", "scale", "coef", "intercept", "alpha"}
    assert len(fusion["coef"]) == 43
    np.testing.assert_allclose(pred, np.clip(apply_fusion(fusion, deep, geo), 1.0, 5.0))
    # The distribution is translated to the fused value (away from the ends of the scale).
    mid = (pred > 2.2) & (pred < 3.8)
    moved = fitted.predict_distribution(X) @ np.asarray(bins)
    np.testing.assert_allclose(moved[mid], pred[mid], atol=1e-3)
    with pytest.raises(ValueError):
        apply_fusion(fusion, deep, geo[:, :10])


def _run_with_pcs(pcs: dict[str, float]) -> Run:
    run = Run(LdlRecipe(), None, [])
    run.table = {k: {"pc": v} for k, v in pcs.items()}
    run.oof = {k: OutOfFold(np.zeros(1), None, [], []) for k in pcs}
    return run


def test_a_combination_ships_only_when_it_raises_the_cv_pearson_by_the_gain():
    recipe = LdlRecipe()
    top, geo, stack = "top-ldl, int8", "top-ldl + geometric, int8", "top-ldl + svr stack, int8"
    assert recipe.choose(_run_with_pcs({top: 0.9, geo: 0.9015, stack: 0.9019})) == top
    assert recipe.choose(_run_with_pcs({top: 0.9, geo: 0.903, stack: 0.9025})) == geo
    assert recipe.choose(_run_with_pcs({top: 0.9, geo: 0.903, stack: 0.903})) == stack


def test_extra_tops_are_the_main_recipe_with_another_start_and_seed():
    base = TopRecipe(epochs=7, lr=1e-3)
    r = member_recipe(base, "stage4:2")
    assert (r.start, r.seed, r.epochs, r.lr) == ("stage4", 2, 7, 1e-3)
    assert r.input_node == "stage3"
    for bad in ("stage4", "stage9:0", "stage4:x", ":1"):
        with pytest.raises(ValueError, match="START:SEED"):
            member_recipe(base, bad)
    scut = DATASETS["scut-fbp5500"]
    # The dataset's default members unless the recipe names its own (an empty tuple: none).
    assert LdlRecipe(top=base).recipes()[1:] == tuple(member_recipe(base, m) for m in scut.members)
    assert LdlRecipe(top=base, members=()).recipes() == (base,)
    assert LdlRecipe(dataset="mebeauty", top=base).recipes() == (base,)
    # The fold folders of the trainer before the recipe (its caches), keyed by recipe and rule.
    folder = LdlRecipe().fold_dir(TopRecipe(), "histogram of the individual ratings on 1..10")
    assert folder.parent.as_posix() == ".cache/attractiveness"
    assert folder.name.startswith("scut-fbp5500-cv-5f-s0-")


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
