"""facecore.training.distribution_recipe: the learners a recipe of distribution tops compares,
their names, the SVR's feature inputs and what the chosen learner fits on every row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecore.ldl.distributions import gaussian_label_distribution
from facecore.training.distribution_recipe import AverageOf, DistributionRecipe
from facecore.training.learners import IsotonicCorrection, SvrStack, log_target_svr
from facecore.training.runner import Data, OutOfFold, Run
from facecore.training.tops import TopRecipe

BINS = tuple(float(b) for b in range(1, 11))


@dataclass(frozen=True)
class _Tops(DistributionRecipe):
    members: tuple[TopRecipe, ...] = ()
    bins = BINS

    def recipes(self) -> tuple[TopRecipe, ...]:
        return (self.top, *self.members)

    def top_folder(self, top: TopRecipe, data: Data) -> Path:
        return Path("cv") / top.start

    def make_correction(self) -> IsotonicCorrection:
        return IsotonicCorrection(BINS)

    def make_svr(self, n_features: int) -> object:
        return log_target_svr(1.0, 0.05)


def _run(recipe: DistributionRecipe, n: int = 40) -> Run:
    rng = np.random.default_rng(0)
    y = rng.uniform(2, 9, n)
    maps = {node: (np.zeros((n, 1)), np.zeros((n, 1))) for node in ("stage2", "stage3")}
    features = {
        "trunk": rng.normal(size=(n, 3)),
        "other": rng.normal(size=(n, 2)),
        "appearance": rng.normal(size=(n, 4)),
    }
    data = Data(y, features, gaussian_label_distribution(y, BINS, 1.0), extra={"maps": maps})
    return Run(recipe, data, [])


def _names(recipe: DistributionRecipe) -> list[tuple[str, bool]]:
    return [(ln.name, ln.table) for ln in recipe.top_learners(_run(recipe))]


def test_one_top_is_read_through_its_average_and_corrected_per_precision():
    recipe = _Tops()
    assert _names(recipe) == [
        ("top 0", False),
        ("int8 0", False),
        ("top-ldl", True),
        ("top-ldl + correction", True),
        ("top-ldl, int8", True),
        ("top-ldl + correction, int8", True),
    ]
    assert recipe.top_learner == "top 0"
    assert recipe.candidates() == [
        "top-ldl, int8",
        "top-ldl + correction, int8",
        "top-ldl + svr stack, int8",
    ]
    folders = {ln.name: ln.cache(None) for ln in recipe.top_learners(_run(recipe)) if ln.cache}
    assert folders == {"top 0": Path("cv/stage3"), "int8 0": Path("cv/stage3")}


def test_several_tops_are_rows_alone_beside_their_ensemble():
    member = TopRecipe(start="stage4", seed=2)
    names = _names(_Tops(members=(member,)))
    assert names[:4] == [
        ("top 0", False),
        ("one top: stages 3-5 (seed 0), int8", True),
        ("top 1", False),
        ("one top: stages 4-5 (seed 2), int8", True),
    ]
    floats = _Tops(members=(member,), int8=False)
    assert _names(floats)[:2] == [("one top: stages 3-5 (seed 0)", True)] + [
        ("one top: stages 4-5 (seed 2)", True)
    ]
    assert floats.top_learner == "one top: stages 3-5 (seed 0)"
    assert _names(floats)[2:] == [("top-ldl", True), ("top-ldl + correction", True)]


def test_the_svr_learns_from_the_recipes_feature_inputs():
    recipe = _Tops(svr_features=("trunk", "other"))
    run = _run(recipe)
    (svr,) = recipe.svr_learners(run)
    assert svr.name == "svr-frozen" and svr.inputs == ("trunk", "other")
    assert run.inputs(svr.inputs).shape == (40, 5)
    (stack,) = recipe.stack_learners()
    assert stack.inputs == ("top-ldl, int8", "svr-frozen")
    assert isinstance(stack.make(run), SvrStack) and stack.make(run).temper_for_coverage
    assert _Tops(int8=False).stack_learners()[0].name == "top-ldl + svr stack"


def test_with_appearance_each_svr_has_its_stack_and_the_chosen_one_names_its_inputs():
    recipe = _Tops(appearance=True)
    run = _run(recipe)
    svrs = recipe.svr_learners(run)
    assert [(s.name, s.inputs) for s in svrs] == [
        ("svr-frozen", ("trunk",)),
        ("svr-appearance", ("appearance",)),
        ("svr-concat", ("trunk", "appearance")),
    ]
    assert (
        [s.name for s in recipe.stack_learners()]
        == recipe.candidates()[2:]
        == [
            "top-ldl + svr stack, int8",
            "top-ldl + svr-appearance stack, int8",
            "top-ldl + svr-concat stack, int8",
        ]
    )
    y, probs = run.data.y, run.data.targets
    run.oof["top-ldl, int8"] = OutOfFold(probs @ np.asarray(BINS), probs, [], [])
    run.oof["svr-concat"] = OutOfFold(y + 0.1, None, [], [])
    run.chosen = "top-ldl + svr-concat stack, int8"
    assert recipe.chosen_svr(run) == "svr-concat"
    _, doc, svr = recipe.fit_served(run)
    assert svr.regressor_[-1].n_features_in_ == 7
    assert list(doc["svr"]["inputs"]) == ["trunk", "appearance"]
    # without appearance: one SVR on the trunk, which the file does not name (the default)
    plain = _Tops()
    assert plain.svrs == {"svr-frozen": ("trunk",)}
    run = _run(plain)
    run.oof["top-ldl, int8"] = OutOfFold(probs @ np.asarray(BINS), probs, [], [])
    run.oof["svr-frozen"] = OutOfFold(y + 0.1, None, [], [])
    run.chosen = "top-ldl + svr stack, int8"
    assert "inputs" not in plain.fit_served(run)[1]["svr"]


def test_the_chosen_stack_fits_its_svr_on_every_row_of_the_feature_inputs():
    recipe = _Tops(svr_features=("trunk", "other"))
    run = _run(recipe)
    y, probs = run.data.y, run.data.targets
    run.oof["top-ldl, int8"] = OutOfFold(probs @ np.asarray(BINS), probs, [], [])
    run.oof["svr-frozen"] = OutOfFold(y + 0.1, None, [], [])
    run.chosen = "top-ldl + svr stack, int8"
    corr, doc, svr = recipe.fit_served(run)
    assert corr is None and svr.regressor_[-1].n_features_in_ == 5
    assert set(doc) >= {"coef", "intercept", "temperature", "svr"}
    assert list(doc["svr"]["inputs"]) == ["trunk", "other"]  # what serving reads
    run.chosen = "top-ldl + correction, int8"
    corr, doc, svr = recipe.fit_served(run)
    assert doc is None and svr is None and corr.temperature_ >= 1.0
    run.chosen = "top-ldl, int8"
    assert recipe.fit_served(run) == (None, None, None)


def test_the_ensemble_is_the_float32_average_of_its_tops():
    rng = np.random.default_rng(1)
    a = gaussian_label_distribution(rng.uniform(2, 9, 50), BINS, 1.0)
    b = gaussian_label_distribution(rng.uniform(2, 9, 50), BINS, 1.5)
    avg = AverageOf(BINS, 2).fit(np.column_stack([a, b]), None)
    p = avg.predict_distribution(np.column_stack([a, b]))
    assert p.dtype == np.float32 and np.array_equal(p, np.mean([a, b], axis=0))
    np.testing.assert_allclose(avg.predict(np.column_stack([a, b])), p @ np.asarray(BINS))
    one = AverageOf(BINS, 1).predict_distribution(a.astype(np.float32))
    assert np.array_equal(one, a.astype(np.float32))  # one top: its own distributions
