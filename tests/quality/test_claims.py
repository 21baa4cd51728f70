"""The quality model's published figures agree wherever they are written: the manifest, the
model file, ``quality_faces.cv.json``, the card and ``models/README.md``."""

import json
import re
from pathlib import Path

import pytest

from facecore.model_store import get_spec, sha256_file
from facecore.quality.model import DEFAULT_MODEL, QualityModel

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def cv() -> dict:
    return json.loads((MODELS / f"{DEFAULT_MODEL}.cv.json").read_text(encoding="utf-8"))


def test_manifest_file_and_cv_agree(cv):
    spec = get_spec(DEFAULT_MODEL)
    metrics = spec.extra["metrics"]
    ranking = cv["candidates"][cv["chosen"]]["ranking"][-1]
    assert metrics["held_out"]["pair_accuracy"] == round(ranking["pair_accuracy"], 4)
    assert metrics["held_out"]["spearman"] == round(ranking["spearman"], 4)
    assert metrics["warn_below"] == cv["warn_below"]
    assert spec.architecture == cv["chosen"]
    assert spec.sha256 == sha256_file(MODELS / spec.file)
    model = QualityModel.load(MODELS / spec.file)
    assert model.architecture == cv["chosen"] and model.warn_below == cv["warn_below"]
    assert model.metadata["pair_accuracy"] == metrics["held_out"]["pair_accuracy"]
    assert "non-commercial research use only" in spec.licence


def test_card_prints_the_cv_tables(cv):
    card = (MODELS / f"{DEFAULT_MODEL}.md").read_text(encoding="utf-8")
    assert "non-commercial research use only" in card
    for arch, c in cv["candidates"].items():
        row = next(line for line in card.splitlines() if line.startswith(f"| {arch}"))
        assert f"{c['ranking'][-1]['pair_accuracy']:.3f}" in row, arch
    assert f"Warning threshold: {cv['warn_below']:.2f}" in card
    # Every quality band of the error table, with its counts.
    for r in cv["error_by_quality"]:
        assert re.search(rf"\| {re.escape(r['band'])} \| {r['attractiveness_n']} \|", card)


def test_models_readme_row(cv):
    readme = (MODELS / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{DEFAULT_MODEL}`")]
    ranking = cv["candidates"][cv["chosen"]]["ranking"][-1]
    assert f"pairwise ranking accuracy {ranking['pair_accuracy']:.3f}" in row
    assert f"warning below {cv['warn_below']:.2f}" in row
