"""The classical recipe: a tiny end-to-end run on real SCUT photos, its training features (the
serving code's, cached) and its pure helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facecore.analyzer import FaceAnalyzer
from facecore.attractiveness.face_features import BLOCK_NAMES, FaceFeatureExtractor
from facecore.attractiveness.model import AttractivenessModel, AttractivenessStage
from facecore.attractiveness.train import (
    LICENCE,
    ClassicalRecipe,
    choose_fusion,
    extract_dataset_features,
    format_table,
    model_card,
)
from facecore.datasets import load_scut_fbp5500
from facecore.io import load_image
from facecore.model_store import get_spec, sha256_file
from facecore.training.publish import SHARED_DATA_LICENCE, render_card

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "attractiveness_scut_classical"

FEATURE_ROWS = ["deep896", "deep128", "geometric", "lbp", "blbp", "pcanet"]
FUSION_ROWS = [
    "geometric",
    "texture",
    "pcanet",
    "geometric + texture",
    "geometric + pcanet",
    "texture + pcanet",
    "geometric + texture + pcanet",
]


def row(name: str, members: tuple[str, ...], pc: float, mae: float, kind: str = "fusion"):
    return {"name": name, "kind": kind, "members": list(members), "learner": "svr", "pc": pc}| {
        "mae": mae, "rmse": mae * 1.3, "pc_fold_sd": 0.01}  # fmt: skip


def test_licence_names_the_shared_data_licence() -> None:
    assert SHARED_DATA_LICENCE in LICENCE


def test_format_table_exact() -> None:
    rows = [row("a", ("deep",), 0.91234, 0.2, kind="feature set"), row("b", ("x", "y"), 0.9, 0.3)]
    assert format_table(rows, "b").splitlines() == [
        "| model | kind | learner | PC | PC fold sd | MAE | RMSE |",
        "|---|---|---|---:|---:|---:|---:|",
        "| a | feature set | svr | 0.9123 | 0.0100 | 0.2000 | 0.2600 |",
        "| b **(chosen)** | fusion | svr | 0.9000 | 0.0100 | 0.3000 | 0.3900 |",
    ]
    assert format_table([]) == "\n".join(format_table(rows).splitlines()[:2])


def test_card_of_the_shipped_model_is_reproduced() -> None:
    """The card writer, fed the shipped model's cv.json and joblib, gives its card."""
    cv = json.loads(SHIPPED.with_suffix(".cv.json").read_text(encoding="utf-8"))
    model = AttractivenessModel.load(SHIPPED.with_suffix(".joblib"))
    card = model_card(cv, model, SHIPPED.with_suffix(".joblib").stat().st_size / 1e6)
    shipped = SHIPPED.with_suffix(".md").read_text(encoding="utf-8")
    # The one format change of the card writer: "Package versions:" starts its own line.
    shipped = shipped.replace("table. Package versions:", "table.\nPackage versions:")
    assert render_card(card) == shipped


def test_choose_fusion_rule() -> None:
    rows = [
        row("deep896", ("deep",), 0.95, 0.1, kind="feature set"),
        row("single", ("geometric",), 0.94, 0.1),
        row("pair", ("geometric", "texture"), 0.90, 0.30),
        row("pair-better-mae", ("geometric", "pcanet"), 0.90, 0.25),
        row("triple-same", ("deep", "geometric", "pcanet"), 0.90, 0.25),
        row("worse", ("deep", "texture"), 0.89, 0.20),
    ]
    # Feature sets and single members are never chosen; ties go to lower MAE, then fewer members.
    assert choose_fusion(rows)["name"] == "pair-better-mae"
    with pytest.raises(ValueError):
        choose_fusion(rows[:2])
    text = format_table(rows, "pair")
    assert "| pair **(chosen)** |" in text and text.count("\n") == len(rows) + 1


# Measured on the 40-photo, 2-fold run below (seeded): the chosen fusion and the deep SVR row.
TINY_CHOSEN = ("fusion: deep + texture", 0.6065, 0.4361)  # name, PC, MAE
TINY_DEEP_SVR_PC = 0.4376


@pytest.mark.data
@pytest.mark.usefixtures("single_threaded")  # 3-7x faster on a busy 2-core machine
def test_tiny_end_to_end_run(tmp_path: Path, data_root: Path) -> None:
    from facecore.training.runner import train

    reported: list[str] = []
    kwargs = dict(
        folds=2, inner_folds=2, seed=0, n_jobs=1, rf_trees=10, limit=40, serving_repeats=2
    )
    recipe = ClassicalRecipe(cache_dir=tmp_path / "cache", report=reported.append, **kwargs)
    res = train(recipe, data_root, tmp_path / "tiny_scut")

    # Files and the cache.
    for p in (res.model_path, res.card_path, res.cv_path, res.manifest_path):
        assert p.is_file(), p
    assert res.model_path.name == "tiny_scut.joblib"
    assert list((tmp_path / "cache").glob("scut-fbp5500-*.npz"))
    cv = json.loads(res.cv_path.read_text())
    assert cv["n_photos"] == 40 and cv["n_no_face"] == 0
    assert res.cv_path.read_text().startswith('{\n  "name": "tiny_scut"')  # as shipped: indent 2

    # The table: every feature set x learner, every fusion alone and with deep.
    rows = cv["rows"]
    names = [r["name"] for r in rows]
    expected = [f for f in FEATURE_ROWS for _ in ("svr", "rf")]
    expected += [f"fusion: {c}" for c in FUSION_ROWS] + [f"fusion: deep + {c}" for c in FUSION_ROWS]
    assert names == expected
    assert [r["learner"] for r in rows[:12]] == ["svr", "rf"] * 6
    assert all(np.isfinite([r["mae"], r["rmse"]]).all() for r in rows)
    chosen = next(r for r in rows if r["name"] == cv["chosen"])
    assert chosen["kind"] == "fusion" and len(chosen["members"]) >= 2
    # Learning, not just finite numbers: shuffled labels or a broken feature block give PC ~ 0.
    name, pc, mae = TINY_CHOSEN
    assert chosen["pc"] == pytest.approx(pc, abs=0.05) and chosen["mae"] <= 1.15 * mae
    deep_svr = next(r for r in rows if (r["name"], r["learner"]) == ("deep896", "svr"))
    assert deep_svr["pc"] == pytest.approx(TINY_DEEP_SVR_PC, abs=0.05)
    assert chosen["name"] == name
    assert reported == [format_table(rows, name)] and "(chosen)" in reported[0]
    assert [list(r) for r in rows[12:13]] == [
        ["name", "kind", "members", "learner", "pc", "mae", "rmse", "pc_fold_sd"]
        + ["mean_weights_and_intercept"]
    ]

    # cv.json, card, manifest entry.
    assert set(cv["per_group"]) <= {"AF", "AM", "CF", "CM"}
    assert sum(g["n"] for g in cv["per_group"].values()) == 40
    card = res.card_path.read_text()
    assert LICENCE in card and cv["dataset_sha256"] in card and "| group |" in card
    spec = get_spec("tiny_scut", tmp_path)
    assert spec.file == "tiny_scut.joblib"
    assert spec.sha256 == sha256_file(res.model_path)
    assert spec.licence == LICENCE
    assert cv["dataset_sha256"] in spec.training_data
    assert spec.extra["metrics"]["cv"]["pc"] == chosen["pc"]
    assert spec.inputs and spec.source and spec.extra["rebuild"]
    # The structured fields the shipped entry carries (a rebuild must keep them).
    assert (spec.task, spec.architecture, spec.input_size) == (
        "attractiveness",
        "score_fusion",
        None,
    )
    assert (spec.chip.method, spec.chip.size, spec.chip.padding) == ("similarity5", 128, 0.05)
    assert [(o.name, o.kind, tuple(o.scale)) for o in spec.outputs] == [
        ("attractiveness", "scalar", (1.0, 5.0))
    ]
    shipped = get_spec("attractiveness_scut_classical")
    assert (spec.chip, spec.outputs) == (shipped.chip, shipped.outputs)

    # The shipped file serves through the model store, with the blocks it was trained on.
    scorer = AttractivenessStage(model="tiny_scut", models_dir=tmp_path)
    model = scorer.load()
    assert set(model.blocks) == {
        {"deep": "deep", "geometric": "geometric", "texture": "blbp", "pcanet": "pcanet"}[m]
        for m in chosen["members"]
    }
    # Train/serve consistency: serving a training photo gives the score its cached training
    # features give.
    data = recipe.load(data_root)
    ds, feats = data.extra["dataset"], data.extra["features"]
    assert feats.from_cache and len(ds) == 40
    for i in (0, 17):
        image = load_image(ds.paths[i])
        faces = FaceAnalyzer(stages=("trunk",)).analyze(image)
        served = scorer(image, faces)[0].predictions["attractiveness"].value
        x = np.concatenate([feats.blocks[b][i].ravel() for b, _ in model.layout])
        trained = model.predict_matrix(x[None].astype(np.float32))[0]
        assert served == pytest.approx(trained, abs=1e-4)

    # A rerun reads the cache and reproduces the table exactly (fixed seeds).
    again = train(recipe, data_root, tmp_path / "tiny_scut")
    assert again.cv["timings"]["features_from_cache"] is True
    t = cv["timings"]["feature_extraction_s"]
    assert again.cv["timings"]["feature_extraction_s"] == t > 0
    assert reported[1] == reported[0] and again.cv["rows"] == cv["rows"]


@pytest.mark.data
def test_features_are_the_served_ones_and_the_cache_gives_them_back(
    tmp_path: Path, data_root: Path
) -> None:
    ds = load_scut_fbp5500(data_root, landmarks=False).subset([0, 1, 2])
    extractor = FaceFeatureExtractor()
    feats = extract_dataset_features(ds, extractor, cache_dir=tmp_path)
    assert not feats.from_cache and feats.seconds > 0 and feats.has_face.tolist() == [True] * 3
    shapes = extractor.block_shapes()
    assert {b: v.shape for b, v in feats.blocks.items()} == {
        b: (3, *shapes[b]) for b in BLOCK_NAMES
    }
    assert feats.blocks["pcanet"].dtype == np.uint8 and feats.blocks["deep"].dtype == np.float32

    # The blocks of a photo are what serving computes for its largest face.
    image = load_image(ds.paths[1])
    face = FaceAnalyzer(stages=("trunk",), max_faces=1).analyze(image)[0]
    for name, value in extractor.extract(image, face).items():
        np.testing.assert_allclose(feats.blocks[name][1], value, rtol=1e-6, atol=1e-6)

    # One file, named by the dataset, its hash and the feature version; read back as written.
    (path,) = tmp_path.glob("*.npz")
    assert path.name.startswith("scut-fbp5500-") and f"-f{extractor.version}-a" in path.name
    again = extract_dataset_features(ds, extractor, cache_dir=tmp_path)
    assert again.from_cache and again.seconds == feats.seconds
    for name in BLOCK_NAMES:
        np.testing.assert_array_equal(again.blocks[name], feats.blocks[name])

    # Another subset is another file; no cache folder writes nothing.
    extract_dataset_features(ds.subset([0]), extractor, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not extract_dataset_features(ds.subset([0]), extractor, cache_dir=None).from_cache
    assert len(list(tmp_path.glob("*.npz"))) == 2
