"""The training entry point: a tiny end-to-end run on real SCUT photos, and its pure helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facecore.attractiveness.model import AttractivenessScorer
from facecore.attractiveness.train import (
    LICENCE,
    TableRow,
    _load_dataset,
    choose_fusion,
    extract_dataset_features,
    format_table,
    main,
    regression_metrics,
)
from facecore.io import load_image
from facecore.model_store import get_spec, sha256_file

DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()

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
    return TableRow(name, kind, members, "svr", pc, mae, mae * 1.3, 0.01)


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, y + np.array([0.5, -0.5, 0.5, -0.5]))
    assert m["mae"] == pytest.approx(0.5) and m["rmse"] == pytest.approx(0.5)
    assert 0.8 < m["pc"] < 1.0
    assert regression_metrics(y, 2 * y)["pc"] == pytest.approx(1.0)


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
    assert choose_fusion(rows).name == "pair-better-mae"
    with pytest.raises(ValueError):
        choose_fusion(rows[:2])
    text = format_table(rows, "pair")
    assert "| pair **(chosen)** |" in text and text.count("\n") == len(rows) + 1


@pytest.mark.data
def test_tiny_end_to_end_run(tmp_path: Path) -> None:
    if not (DATA / "scut-fbp5500").is_dir():
        pytest.skip(f"{DATA / 'scut-fbp5500'} is not available (needs ../shared/data)")
    reported: list[str] = []
    kwargs = dict(
        folds=2, inner_folds=2, seed=0, n_jobs=1, rf_trees=10, limit=40, serving_repeats=2
    )
    res = main(
        DATA, tmp_path / "tiny_scut", cache_dir=tmp_path / "cache", report=reported.append, **kwargs
    )

    # Files and the cache.
    for p in (res.model_path, res.card_path, res.cv_path, res.manifest_path):
        assert p.is_file(), p
    assert res.model_path.name == "tiny_scut.joblib"
    assert list((tmp_path / "cache").glob("scut-fbp5500-*.npz"))
    assert res.n_photos == 40 and res.n_no_face == 0

    # The table: every feature set x learner, every fusion alone and with deep.
    names = [r.name for r in res.rows]
    expected = [f for f in FEATURE_ROWS for _ in ("svr", "rf")]
    expected += [f"fusion: {c}" for c in FUSION_ROWS] + [f"fusion: deep + {c}" for c in FUSION_ROWS]
    assert names == expected
    assert [r.learner for r in res.rows[:12]] == ["svr", "rf"] * 6
    assert all(np.isfinite([r.mae, r.rmse]).all() for r in res.rows)
    assert res.chosen.kind == "fusion" and len(res.chosen.members) >= 2
    assert reported == [res.table] and "(chosen)" in res.table

    # cv.json, card, manifest entry.
    cv = json.loads(res.cv_path.read_text())
    assert [r["name"] for r in cv["rows"]] == names
    assert cv["chosen"] == res.chosen.name and set(cv["per_group"]) <= {"AF", "AM", "CF", "CM"}
    assert sum(g["n"] for g in cv["per_group"].values()) == 40
    card = res.card_path.read_text()
    assert LICENCE in card and cv["dataset_sha256"] in card and "| group |" in card
    spec = get_spec("tiny_scut", tmp_path)
    assert spec.file == "tiny_scut.joblib"
    assert spec.sha256 == sha256_file(res.model_path)
    assert spec.licence == LICENCE
    assert cv["dataset_sha256"] in spec.training_data
    assert spec.extra["metrics"]["cv"]["pc"] == pytest.approx(res.chosen.pc, abs=1e-4)
    assert spec.inputs and spec.source and spec.extra["rebuild"]

    # The shipped file serves through the model store, with the blocks it was trained on.
    scorer = AttractivenessScorer("tiny_scut", models_dir=tmp_path)
    model = scorer.load()
    assert set(model.blocks) == {
        {"deep": "deep", "geometric": "geometric", "texture": "blbp", "pcanet": "pcanet"}[m]
        for m in res.chosen.members
    }
    from facecore.analyzer import FaceAnalyzer

    # Train/serve consistency: serving a training photo gives the score its cached training
    # features give.
    ds = _load_dataset(DATA, 40, 0)
    feats = extract_dataset_features(ds, model.extractor, cache_dir=tmp_path / "cache")
    assert feats.from_cache
    for i in (0, 17):
        image = load_image(ds.paths[i])
        faces = FaceAnalyzer(stages=("trunk",)).analyze(image)
        served = scorer(image, faces)[0].predictions["attractiveness"]
        trained = model.predict_matrix(feats.matrix(model.layout, np.array([i])))[0]
        assert 1.0 <= served <= 5.0
        assert served == pytest.approx(trained, abs=1e-4)

    # A rerun reads the cache and reproduces the table exactly (fixed seeds).
    again = main(DATA, tmp_path / "tiny_scut", cache_dir=tmp_path / "cache", **kwargs)
    assert again.timings["features_from_cache"] is True
    assert again.timings["feature_extraction_s"] == res.timings["feature_extraction_s"] > 0
    assert again.table == res.table
