"""Pieces of the quality recipe: versions, the ranker, ranking table, calibration, threshold."""

from dataclasses import replace

import numpy as np
import pytest

from facecore.quality.distortions import N_LEVELS, distortion_kinds
from facecore.quality.train import (
    BAND_EDGES,
    N_VERSIONS,
    TOLERANCE,
    QualityRecipe,
    Ranker,
    agreement,
    calibration_knots,
    choose_threshold,
    make_versions,
    ranking_table,
    version_index,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_version_layout():
    idx = {version_index(k, lv) for k in range(len(distortion_kinds())) for lv in range(1, 5)}
    assert idx == set(range(1, N_VERSIONS)) and version_index(3, 0) == 0
    chips = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    v = make_versions(chips, np.array([5, 9]))
    assert v.shape == (2, N_VERSIONS, 32, 32, 3)
    assert np.array_equal(v[:, 0], chips)
    assert np.array_equal(v, make_versions(chips, np.array([5, 9])))


def _perfect_scores(n: int) -> np.ndarray:
    s = np.zeros((n, N_VERSIONS))
    for k in range(len(distortion_kinds())):
        for lv in range(1, N_LEVELS + 1):
            s[:, version_index(k, lv)] = -lv + np.random.default_rng(k).normal(0, 0.01, n)
    return s


def test_ranking_table_perfect_and_reversed():
    rows = ranking_table(_perfect_scores(6))
    assert len(rows) == len(distortion_kinds()) + 1
    assert all(r["pair_accuracy"] == 1.0 for r in rows)
    assert rows[-1]["spearman_per_photo"] == pytest.approx(1.0)
    worst = ranking_table(-_perfect_scores(6))
    assert all(r["pair_accuracy"] == 0.0 for r in worst)


def test_calibration_is_monotone_and_bounded():
    rng = np.random.default_rng(0)
    s = rng.normal(size=500)
    target = np.clip(0.5 + 0.3 * s + rng.normal(0, 0.1, 500), 0, 1)
    x, y = calibration_knots(s, target)
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_agreement_is_one_for_the_clean_version():
    emb = np.zeros((2, 3, 128))
    emb[:, 1, 0] = 0.3
    emb[:, 2, 0] = 0.9
    np.testing.assert_allclose(agreement(emb), [[1.0, 0.5, 0.0]] * 2)


def test_threshold_is_where_error_stops_growing():
    # Errors 3x the clean error below quality 0.4, clean-like above: the threshold is 0.4.
    q = np.linspace(0.0, 1.0, 1001)
    err = np.where(q < 0.4, 3.0, 1.05)
    assert choose_threshold(q, err, 1.0) == pytest.approx(0.4)
    # Never reliable: the top edge; always reliable: 0.
    assert choose_threshold(q, np.full_like(q, 5.0), 1.0) == pytest.approx(1.0)
    assert choose_threshold(q, np.ones_like(q), 1.0) == 0.0
    assert TOLERANCE > 1.0 and BAND_EDGES[0] == 0.0 and BAND_EDGES[-1] == 1.0


def test_ranker_learns_and_resumes(tmp_path):
    # Maps of 12 "photos" whose versions get noisier with the level.
    rng = np.random.default_rng(0)
    levels = np.zeros(N_VERSIONS)
    for k in range(len(distortion_kinds())):
        for lv in range(1, N_LEVELS + 1):
            levels[version_index(k, lv)] = lv
    base = rng.random((12, 1, 64, 17, 17), dtype=np.float32)
    maps = base + rng.normal(size=(12, N_VERSIONS, 64, 17, 17)).astype(np.float32) * (
        0.3 * levels.reshape(1, -1, 1, 1, 1)
    ).astype(np.float32)
    cfg = replace(QualityRecipe(), steps=200, groups=4, lr=3e-3)
    ckpt = tmp_path / "ckpt"
    ranker = Ranker("quality_map_head", cfg, ckpt).fit(maps)
    assert (ckpt / "last.pt").is_file() and [h["step"] for h in ranker.history_] == [100, 200]
    scores = ranker.predict(maps)
    assert scores.shape == (12, N_VERSIONS) and ranking_table(scores)[-1]["pair_accuracy"] > 0.9
    # A rerun finds the finished checkpoint and returns the same network without training.
    again = Ranker("quality_map_head", cfg, ckpt).fit(maps)
    np.testing.assert_allclose(again.predict(maps), scores, atol=1e-5)
    assert again.seconds_ == pytest.approx(ranker.seconds_, abs=1.0)
    assert 0.0 < ranker.ms_per_face(maps[0], repeats=3) < 1000.0
    with pytest.raises(ValueError, match="multiple of 100"):
        replace(cfg, steps=250)


def test_card_of_the_shipped_model_is_reproduced():
    """The recipe's card, fed the shipped model's cv.json, is the shipped card."""
    import json
    from pathlib import Path

    from facecore.quality.train import card_parts
    from facecore.training.publish import make_card, render_card

    out = Path(__file__).resolve().parents[2] / "models" / "quality_faces"
    cv = json.loads(out.with_name(out.name + ".cv.json").read_text(encoding="utf-8"))
    recipe = QualityRecipe()
    fields = {**cv, "name": out.name, "licence": recipe.licence, "rebuild": recipe.rebuild}
    more, tables = card_parts(cv)
    card = make_card(recipe, fields | more, tables, [])
    card = render_card(card, base=out.parent)
    shipped = out.with_name(out.name + ".md").read_text(encoding="utf-8")
    strip = [ln for ln in shipped.splitlines() if not ln.startswith("- ")]  # package versions
    assert [ln for ln in card.splitlines() if not ln.startswith("- ")] == strip


def test_the_recipe_evaluates_ships_and_publishes(tmp_path, monkeypatch):
    """The recipe's held-out evaluation, calibration, error table and artefacts, on synthetic
    versions (the error rows, which read the age and SCUT fold tops, are faked)."""
    import json

    from facecore.quality import train as qt
    from facecore.training.publish import publish
    from facecore.training.runner import Data

    rng = np.random.default_rng(0)
    levels = np.zeros(N_VERSIONS)
    for k in range(len(distortion_kinds())):
        for lv in range(1, N_LEVELS + 1):
            levels[version_index(k, lv)] = lv

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        noise = rng.normal(size=(n, N_VERSIONS, 64, 17, 17)) * levels.reshape(1, -1, 1, 1, 1)
        maps = (rng.random((n, 1, 64, 17, 17)) + 0.3 * noise).astype(np.float16)
        chips = rng.integers(0, 256, (n, N_VERSIONS, 150, 150, 3), dtype=np.uint8)
        return chips, maps

    inputs: dict[str, dict[str, np.ndarray]] = {"chip": {}, "stage2": {}}
    for name, n in (("train", 8), ("calib", 6), ("eval", 6)):
        inputs["chip"][name], inputs["stage2"][name] = part(n)
    emb = rng.normal(0, 0.05, (6, N_VERSIONS, 128)) * levels.reshape(1, -1, 1)
    recipe = QualityRecipe(steps=100, groups=4, lr=3e-3, work_dir=tmp_path / "work")
    data = Data(
        y=np.zeros(6),
        features={},
        extra={
            "root": tmp_path,
            "work": tmp_path,
            "counts": {p: {"scut-fbp5500": 3, "utkface": 3} for p in ("train", "calib", "eval")},
            "hashes": {"scut-fbp5500": "a" * 64, "utkface": "b" * 64},
            "inputs": inputs,
            "calib_emb": emb,
            "eval_emb": emb,
            "eval_photo": np.arange(6),
            "eval_set": np.array(["scut-fbp5500"] * 3 + ["utkface"] * 3),
            "seconds": {},
        },
    )
    monkeypatch.setattr(
        qt,
        "_error_rows",
        lambda task, root, photo, maps: 0.1 + 0.05 * levels[None, :] + 0 * photo[:, None],
    )
    run = recipe.evaluate(data)
    assert set(run.table) == set(recipe.architectures) and run.chosen in recipe.architectures
    out = tmp_path / "models" / "quality_tiny"
    res = publish(run, recipe.ship(run, out), out)
    cv = json.loads(res.cv_path.read_text())
    assert cv["chosen"] == run.chosen and cv["model"] == "quality_tiny"
    assert 0.0 <= cv["warn_below"] <= 1.0 and len(cv["error_by_quality"]) == 10
    # The map head learns to rank the noisier versions lower on these maps.
    assert cv["candidates"]["quality_map_head"]["ranking"][-1]["pair_accuracy"] > 0.8
    assert "Warning threshold" in res.card_path.read_text()
    entry = json.loads((out.parent / "manifest.json").read_text())["models"]
    assert [e["task"] for e in entry] == ["quality"]
