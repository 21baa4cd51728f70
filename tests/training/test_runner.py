"""facecore.training.runner and publish: the age and rating-distribution recipes run end to end
on tiny synthetic maps (their load step aside): CV, choice, final fit, every artefact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facecore.ldl.distributions import gaussian_label_distribution
from facecore.training.runner import Data, cross_validate
from facecore.training.tops import TopRecipe

pytestmark = pytest.mark.usefixtures("torch_single_thread")

TINY = TopRecipe(start="stage5", epochs=1, batch_size=16, lr=1e-3)


def _maps(y: np.ndarray, scale: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    maps = rng.normal(0, 0.1, (len(y), 256, 4, 4)).astype(np.float32)
    maps[:, 0] += (y / scale)[:, None, None]
    return maps


def _publish(recipe, data, out):
    from facecore.training.publish import publish

    run = cross_validate(recipe, data)
    return run, publish(run, recipe.ship(run, out), out)


def test_age_recipe_end_to_end(tmp_path):
    from facecore.age.train import AGE_BINS, AgeRecipe, band_of

    rng = np.random.default_rng(0)
    y = rng.uniform(2, 85, 60).round()
    maps = _maps(y, 40.0)
    data = Data(
        y=y,
        targets=gaussian_label_distribution(y, AGE_BINS, 3.0),
        features={"trunk": np.column_stack([y / 30 + rng.normal(0, 0.3, 60), rng.normal(size=60)])},
        groups={
            "band": np.array([band_of(a) for a in y]),
            "gender": rng.choice(["female", "male"], 60),
            "race": rng.choice(["white", "black", "asian"], 60),
        },
        title="UTKFace",
        n_photos=64,
        data_hash="0" * 64,
        extra={
            "rows": np.arange(60),
            "maps": {"stage4": (maps, maps[..., ::-1].copy())},
        },
    )
    recipe = AgeRecipe(folds=3, top=TINY, work_dir=tmp_path / "work")
    run, res = _publish(recipe, data, tmp_path / "models" / "age_tiny")
    names = list(run.table)
    assert recipe.top_learner == "top 0" and "top 0" in run.oof and "int8 0" in run.oof
    assert names == [
        "svr-frozen",
        "top-ldl",
        "top-ldl + correction",
        "top-ldl, int8",
        "top-ldl + correction, int8",
        "top-ldl + svr stack, int8",
    ]
    assert run.chosen in recipe.candidates()
    cv = json.loads(res.cv_path.read_text())
    assert cv["chosen"] == cv["shipped"] == run.chosen and [r["name"] for r in cv["rows"]] == names
    assert set(cv["bands"]) <= {"0-9", "10-19", "20-39", "40-59", "60-79", "80+"}
    assert len(cv["fold_temperatures"]) == 3
    manifest = json.loads((tmp_path / "models" / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["name"] == "age_tiny")
    assert entry["architecture"] == "dlib_face_resnet_top" and entry["file"] == "age_tiny.pt"
    card = res.card_path.read_text()
    assert "MAE by true age band" in card and "age_tiny.scatter.png" in card
    assert (tmp_path / "models" / "age_tiny.bands.png").is_file()
    # The fold folder is the recipe's, with each fold's file and checkpoint.
    assert (recipe.fold_dir / "fold2.npz").is_file() and (recipe.fold_dir / "ckpt-final").is_dir()


def test_ldl_recipe_end_to_end(tmp_path):
    from facecore.attractiveness.ldl_train import DATASETS, LdlRecipe

    bins = DATASETS["mebeauty"].bins
    rng = np.random.default_rng(1)
    y = rng.uniform(2, 9, 60)
    maps = _maps(y, 3.0)
    data = Data(
        y=y,
        targets=gaussian_label_distribution(y, bins, 1.2),
        features={
            "trunk": np.column_stack([y + rng.normal(0, 1, 60), rng.normal(size=(60, 3))]),
            "geo": rng.normal(size=(60, 42)),
        },
        groups={"group": rng.choice(["female", "male"], 60)},
        title="MEBeauty",
        n_photos=60,
        data_hash="1" * 64,
        extra={
            "rule": "tiny",
            "sigma": None,
            "maps": {"stage4": (maps, maps[..., ::-1].copy())},
            "names": [f"p{i}.jpg" for i in range(60)],
        },
    )
    recipe = LdlRecipe(dataset="mebeauty", folds=3, top=TINY, work_dir=tmp_path / "w")
    run, res = _publish(recipe, data, tmp_path / "models" / "mebeauty_tiny")
    assert list(run.table) == [
        "average",
        "bayes-ridge",
        "maxent",
        "sldl",
        "top-ldl",
        "top-ldl + geometric",
        "top-ldl, int8",
        "top-ldl + geometric, int8",
        "svr-frozen",
        "top-ldl + svr stack, int8",
    ]
    cv = json.loads(res.cv_path.read_text())
    assert cv["learners"]["average"]["pc"] is None  # constant within a fold
    assert len(cv["svr_settings"]["folds"]) == 3 and set(cv["per_group"]) == {"female", "male"}
    assert cv["shipped"] == run.chosen
    assert "Learners in the same folds" in res.card_path.read_text()


def test_worst_group_names_the_largest_error_among_groups_of_30_or_more():
    """A group under 30 photos never counts as the worst, however large its error; the title
    names the worst group and its MAE over the overall one."""
    from facecore.training.publish import GroupTable, _group_table, group_docs, worst_groups
    from facecore.training.runner import OutOfFold, Recipe, Run

    g = np.array(["a"] * 40 + ["b"] * 30 + ["c"] * 5)
    err = np.where(g == "a", 1.0, np.where(g == "b", 2.0, 9.0))
    y = np.arange(len(g), dtype=float)
    recipe = Recipe()
    recipe.group_tables = (GroupTable("per_group", "g", "{chosen} per g", of="shipped"),)
    run = Run(recipe, Data(y=y, features={}, groups={"g": g}), [], chosen="p")
    run.oof = {"p": OutOfFold(y + err, None, [], [])}
    run.table = {"p": {"mae": float(err.mean())}}
    docs = group_docs(run)
    worst = worst_groups(run, docs)["per_group"]
    assert worst["group"] == "b" and worst["mae"] == 2.0
    assert worst["ratio"] == round(2.0 / err.mean(), 3) == 1.034
    title = _group_table(recipe.group_tables[0], docs["per_group"], {"chosen": "p"}, worst).title
    assert title.endswith("b, MAE 2 = 1.03x the overall 1.933)")


def test_group_docs_and_their_card_tables():
    """Per-group tables of every learner's MAE (in the groups' order) and of the shipped
    learner's metrics (sorted groups)."""
    from facecore.training.publish import GroupTable, _group_table, group_docs
    from facecore.training.runner import OutOfFold, Recipe, Run

    y = np.array([1.0, 2.0, 3.0, 4.0])
    recipe = Recipe()
    recipe.group_tables = (
        GroupTable("by_g", "g", "MAE by g", ("c", "a", "z")),
        GroupTable("per_group", "g", "{chosen} per g", of="shipped"),
    )
    data = Data(y=y, features={}, groups={"g": np.array(["a", "b", "a", "c"])})
    run = Run(recipe, data, [], chosen="p")
    run.oof = {"p": OutOfFold(y + np.array([1.0, 2.0, -1.0, 0.5]), None, [], [])}
    run.table = {"p": {}}
    docs = group_docs(run)
    assert docs["by_g"] == {"c": {"n": 1, "p": 0.5}, "a": {"n": 2, "p": 1.0}}
    assert list(docs["per_group"]) == ["a", "b", "c"]
    assert docs["per_group"]["a"]["mae"] == 1.0 and docs["per_group"]["a"]["n"] == 2
    table = _group_table(recipe.group_tables[1], docs["per_group"], {"chosen": "p"}, None)
    assert table.title == "p per g" and table.header == ["g", "n", "PC", "MAE", "RMSE"]
    assert _group_table(recipe.group_tables[0], docs["by_g"], {}, None).rows == [
        ["c", 1, 0.5],
        ["a", 2, 1.0],
    ]
