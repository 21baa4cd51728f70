"""facecore.age.train (the age recipe): bands, metrics, learners and the cross-fitted correction
(no training here)."""

import numpy as np
import pytest

from facecore.age.train import AGE_BINS, AgeRecipe, age_metrics, band_of
from facecore.ldl.distributions import gaussian_label_distribution
from facecore.training.folds import kfold_splits
from facecore.training.learners import IsotonicCorrection, central_intervals
from facecore.training.runner import out_of_fold
from facecore.training.tops import TopRecipe


def test_bands_cover_every_age_once():
    assert [band_of(a) for a in (0, 9, 10, 19, 20, 39, 40, 59, 60, 79, 80, 116)] == [
        "0-9",
        "0-9",
        "10-19",
        "10-19",
        "20-39",
        "20-39",
        "40-59",
        "40-59",
        "60-79",
        "60-79",
        "80+",
        "80+",
    ]


def test_age_metrics():
    y = np.array([10.0, 20.0, 30.0, 40.0])
    pred = np.array([12.0, 20.0, 37.0, 40.0])
    iv = np.array([[8, 14], [25, 30], [30, 40], [40, 41]], float)
    m = age_metrics(y, pred, iv)
    assert m["mae"] == pytest.approx(9 / 4) and m["cs5"] == pytest.approx(3 / 4)
    assert m["coverage90"] == pytest.approx(3 / 4) and m["interval_width"] == pytest.approx(5.5)


def _shrunk_predictions(n=1500, seed=0):
    """Distributions of a predictor that regresses to the mean (the young too old, the old too
    young) and is over-confident (sigma 2 while its error is larger)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(1, 90, n).round()
    guess = 35 + 0.6 * (y - 35) + rng.normal(0, 4, n)
    return y, gaussian_label_distribution(guess, AGE_BINS, 2.0).astype(np.float64)


def test_crossfit_correction_removes_the_bias_and_fixes_the_coverage():
    y, probs = _shrunk_predictions()
    folds = kfold_splits(len(y), 5, 0, stratify=y)
    raw = probs @ AGE_BINS
    oof = out_of_fold(IsotonicCorrection(AGE_BINS), probs, y, folds)
    values, corrected = oof.values, oof.distributions
    temps = [e.temperature_ for e in oof.estimators]
    before, after = np.mean(np.abs(raw - y)), np.mean(np.abs(values - y))
    assert after < 0.6 * before
    # The ends: the young are no longer predicted decades too old.
    young = y < 10
    assert np.mean(values[young] - y[young]) < 0.3 * np.mean(raw[young] - y[young])
    m = age_metrics(y, values, _intervals(corrected))
    assert 0.85 <= m["coverage90"] <= 0.95
    assert all(t > 1.0 for t in temps)  # the over-confident distributions are widened
    np.testing.assert_allclose(corrected.sum(1), 1.0)


def test_correction_of_a_calibrated_predictor_changes_little():
    rng = np.random.default_rng(1)
    y = rng.uniform(1, 90, 1500).round()
    guess = y + rng.normal(0, 3, len(y))
    probs = gaussian_label_distribution(guess, AGE_BINS, 3.0).astype(np.float64)
    corr = IsotonicCorrection(AGE_BINS).fit(probs, y)
    t, knots = corr.temperature_, corr.knots_
    assert t <= 1.5
    assert np.interp(50.0, *knots) == pytest.approx(50.0, abs=3.0)


def _intervals(probs):
    return central_intervals(probs, AGE_BINS)


def test_the_recipe_keeps_the_fold_folder_and_compares_the_served_variants():
    recipe = AgeRecipe(top=TopRecipe(epochs=12))
    # The folder of the fold checkpoints the trainer before the recipe wrote (its caches).
    assert recipe.fold_dir.as_posix() == ".cache/age/cv-5f-s0-sigma3.0-" + recipe.fold_dir.name[-8:]
    assert recipe.candidates() == [
        "top-ldl, int8",
        "top-ldl + correction, int8",
        "top-ldl + svr stack, int8",
    ]
    assert AgeRecipe(int8=False, stack=False).candidates() == ["top-ldl", "top-ldl + correction"]


def test_ship_declares_the_final_model_the_entry_and_the_cv_fields(monkeypatch, tmp_path):
    """The recipe's final fit through the base recipe's ``ship_tops`` (the training stubbed)."""
    from facecore.age.train import BAND_NAMES, REBUILD
    from facecore.training.runner import Data, OutOfFold, Run

    y, probs = _shrunk_predictions(300)
    groups = {"band": np.array([band_of(a) for a in y])}
    extra = {"maps": {"stage2": (np.zeros((300, 1)), None)}}
    data = Data(y, {"trunk": np.zeros((300, 3))}, probs, groups, "UTKFace", 310, "abc", extra)
    recipe = AgeRecipe(stack=False)
    run = Run(recipe, data, kfold_splits(300, 5, 0, stratify=y))
    top = OutOfFold(probs @ AGE_BINS, probs, [None] * 5, [60.0] * 5)
    corr = out_of_fold(IsotonicCorrection(AGE_BINS), probs, y, run.folds)
    run.oof = {"svr-frozen": OutOfFold(y, None, [], [2.0] * 5), "top 0": top, "top-ldl": top}
    run.oof |= {"top-ldl + correction": corr, "top-ldl, int8": top}
    run.oof["top-ldl + correction, int8"] = corr
    run.table = {k: recipe.metrics(run, o) for k, o in run.oof.items()}
    run.chosen = "top-ldl + correction, int8"
    seen = {}

    def final_model(self, run, **model):
        run.seconds["final_fit"] = 120.0
        seen.update(model, specs=self.tops(run))
        return "model"

    monkeypatch.setattr(AgeRecipe, "final_model", final_model)
    shipped = recipe.ship(run, tmp_path / "age_utkface")
    entry, cv = shipped.entry(tmp_path), shipped.cv
    assert entry["task"] == "age" and entry["rebuild"] == REBUILD
    assert entry["outputs"][0]["bins"] == list(range(101)) and entry["card"] == "age_utkface.md"
    assert "UTKFace, 310 photos of shared/data (dataset sha256 abc), 300" in entry["training_data"]
    assert list(cv["coverage90_by_band"]) == list(BAND_NAMES) and cv["shipped"] == run.chosen
    assert cv["stack"] is None and cv["temperature"] == seen["temperature"] > 1.0
    assert seen["calibration"] is not None and seen["specs"][0].folder == recipe.fold_dir
    assert seen["metadata"]["training_data"] == "UTKFace (310 photos, 300 with a face)"
    assert seen["metadata"]["sigma"] == 3.0
    assert seen["metadata"]["cv"]["mae"] == pytest.approx(5.08, abs=0.01)
    assert shipped.fields["final_min"] == 2.0 and "int8" in shipped.fields["int8_note"]
    assert shipped.fields["value_note"].startswith("Correction: the distribution tempered")
