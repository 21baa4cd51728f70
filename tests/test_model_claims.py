"""The published figures of every trained model agree wherever they are written.

For each manifest entry with ``metrics.cv`` (so a later model is covered without a new test), the
cross-validated figures are typed or generated in six places: the manifest, the model file's own
metadata, ``<name>.cv.json``, the model card, the table in ``models/README.md`` and the prose of
the top-level ``README.md``. Each copy must equal the chosen row of ``<name>.cv.json`` to the
rounding it prints. The dataset fingerprint each of them names must be the one
:func:`facecore.datasets.dataset_hash` gives for the shared data (a data test).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from facecore.datasets import dataset_hash, load_mebeauty, load_scut_fbp5500, load_utkface

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MANIFEST = json.loads((MODELS / "manifest.json").read_text(encoding="utf-8"))
TRAINED = [e for e in MANIFEST["models"] if (e.get("metrics") or {}).get("cv")]
NAMES = [e["name"] for e in TRAINED]
#: Figures checked wherever they are printed, and the card's column heading of each.
PRINTED = {"pc": "PC", "mae": "MAE", "rmse": "RMSE", "cs5": "CS(5)"}


def metrics_of(name: str) -> tuple[str, ...]:
    """The printed figures of a model: those of :data:`PRINTED` its manifest entry has."""
    cv = entry(name)["metrics"]["cv"]
    return tuple(k for k in PRINTED if cv.get(k) is not None)


def classical(name: str) -> bool:
    """The score-fusion attractiveness model (its CV has inner folds and a model x learner
    table); the fine-tuned tops have one learner table."""
    return entry(name).get("architecture") == "score_fusion"


#: Names a cv.json gives its dataset -> loader of the shared copy.
LOADERS = {"SCUT-FBP5500": load_scut_fbp5500, "MEBeauty": load_mebeauty, "UTKFace": load_utkface}
HASH = re.compile(r"dataset sha256 ([0-9a-f]{64})")


def entry(name: str) -> dict:
    return next(e for e in TRAINED if e["name"] == name)


def cv_doc(name: str) -> dict:
    path = MODELS / f"{name}.cv.json"
    assert path.is_file(), f"{path} is missing: a trained model ships its CV table"
    return json.loads(path.read_text(encoding="utf-8"))


def chosen_row(cv: dict) -> dict:
    (row,) = [r for r in cv["rows"] if r["name"] == cv["chosen"]]
    return row


def same(printed: str, value: float) -> bool:
    """``printed`` is ``value`` to as many decimals as it shows."""
    decimals = len(printed.partition(".")[2])
    return float(printed) == round(value, decimals)


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every table of a Markdown text as rows of cells (header first, the rule row dropped)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_the_shipped_model_is_covered() -> None:
    # a renamed or lost entry must fail here, not make the checks below vacuous
    assert "attractiveness_scut" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_manifest_equals_the_cv_table(name: str) -> None:
    e, cv = entry(name), cv_doc(name)
    metrics, row = e["metrics"], chosen_row(cv)
    assert cv["name"] == name
    keys = metrics_of(name)
    assert keys, f"{name}: the manifest's metrics.cv has none of {tuple(PRINTED)}"
    assert {m: metrics["cv"][m] for m in keys} == {m: round(row[m], 4) for m in keys}
    assert metrics.get("per_group") == cv.get("per_group")
    protocol = metrics["cv"]["protocol"]
    assert f"{cv['folds']}-fold" in protocol
    assert f"random_state={cv['seed']}" in protocol or f"seed {cv['seed']}" in protocol
    if classical(name):
        assert f"{cv['inner_folds']} inner folds" in protocol
    assert f"on the {cv['n_with_face']} photos" in protocol
    assert HASH.findall(e["training_data"]) == [cv["dataset_sha256"]]
    assert f"{cv['n_photos']} photos" in e["training_data"]


def model_metadata(spec_entry: dict) -> dict:
    """The metadata stored in the model file itself, read by the router (sha256 checked) with the
    loader of the entry's architecture."""
    from facecore.model_router import load

    return load(spec_entry["name"]).metadata


@pytest.mark.parametrize("name", NAMES)
def test_model_file_metadata_equals_the_manifest(name: str) -> None:
    e, cv = entry(name), cv_doc(name)
    meta = model_metadata(e)
    assert meta["name"] == name
    assert meta["cv"] == e["metrics"]["cv"]
    assert meta["dataset_sha256"] == cv["dataset_sha256"]
    assert meta["licence"] == e["licence"]


@pytest.mark.parametrize("name", NAMES)
def test_model_card_equals_the_cv_table(name: str) -> None:
    e, cv = entry(name), cv_doc(name)
    card = (MODELS / e["card"]).read_text(encoding="utf-8")
    assert f"Dataset sha256 `{cv['dataset_sha256']}`" in card
    tables = markdown_tables(card)
    first = "model" if classical(name) else "learner"
    (table,) = [t for t in tables if t[0][:1] == [first]]
    col = {h: i for i, h in enumerate(table[0])}
    printed = {}
    for cells in table[1:]:
        model = cells[col[first]].replace(" **(chosen)**", "")
        printed[(model, cells[col["learner"]])] = cells
        if "**(chosen)**" in cells[col[first]]:
            assert model == cv["chosen"]
    assert len(printed) == len(cv["rows"])
    heads = [("pc_fold_sd", "PC fold sd")] if classical(name) else []
    heads += [(k, PRINTED[k]) for k in metrics_of(name)]
    for row in cv["rows"]:
        cells = printed[(row["name"], row["learner"])]
        for key, head in heads:
            if row.get(key) is None:  # e.g. the Pearson of a constant baseline
                assert cells[col[head]] == "", (row["name"], head)
            else:
                assert same(cells[col[head]], row[key]), (row["name"], head)
    if cv.get("per_group"):
        (groups,) = [t for t in tables if t[0][:1] == ["group"]]
        gcol = {h: i for i, h in enumerate(groups[0])}
        assert {c[0] for c in groups[1:]} == set(cv["per_group"])
        for cells in groups[1:]:
            g = cv["per_group"][cells[0]]
            assert int(cells[gcol["n"]]) == g["n"]
            for key in ("pc", "mae", "rmse"):
                assert same(cells[gcol[PRINTED[key]]], g[key]), (cells[0], key)
    size = (MODELS / e["file"]).stat().st_size / 1e6
    assert f"{size:.1f} MB" in card and round(size, 2) == cv["model_file_mb"]


@pytest.mark.parametrize("name", NAMES)
def test_models_readme_table_equals_the_manifest(name: str) -> None:
    e = entry(name)
    text = (MODELS / "README.md").read_text(encoding="utf-8")
    rows = [r for t in markdown_tables(text) for r in t if r[0] == f"`{name}`"]
    assert len(rows) == 1, f"models/README.md has no (or several) table rows for {name}"
    line = " | ".join(rows[0])
    for key in metrics_of(name):
        found = re.findall(rf"\b{re.escape(PRINTED[key])} (\d\.\d+)", line)
        assert found and all(same(x, e["metrics"]["cv"][key]) for x in found), (key, found)
    size = (MODELS / e["file"]).stat().st_size / 1e6
    assert f"({size:.1f} MB)" in line


#: How the top-level README words each figure.
PROSE = {
    "pc": r"\b(?:PC|Pearson(?: correlation)?)(?: of)? (\d\.\d+)",
    "mae": r"\b(?:MAE|mean absolute error)(?: of)? (\d\.\d+)",
    "rmse": r"\b(?:RMSE|root mean square error)(?: of)? (\d\.\d+)",
    "cs5": r"\bCS\(5\)(?: of)? (\d\.\d+)",
}


def readme_claims(name: str) -> dict[str, list[str]]:
    """Figures in the README paragraphs (or list items) that name the model or its card."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.split(r"\n\s*\n|\n(?=- )", text)
    claims: dict[str, list[str]] = {k: [] for k in PROSE}
    for block in blocks:
        if f"`{name}`" in block or f"{name}.md" in block:
            flat = " ".join(block.split())
            for key, pattern in PROSE.items():
                claims[key] += re.findall(pattern, flat)
            claims.setdefault("photos", []).extend(re.findall(r"([\d,]+) of its photos", flat))
    return claims


@pytest.mark.parametrize("name", NAMES)
def test_readme_prose_equals_the_manifest(name: str) -> None:
    cv, metrics = cv_doc(name), entry(name)["metrics"]["cv"]
    claims = readme_claims(name)
    for key in metrics_of(name):
        assert all(same(x, metrics[key]) for x in claims[key]), (key, claims[key], metrics[key])
    for n in claims.get("photos", []):
        assert int(n.replace(",", "")) == cv["n_photos"]
    if name == "attractiveness_scut":  # the README states these twice; a reworded one is caught
        assert len(claims["pc"]) == 2 and len(claims["mae"]) == 2, claims


@pytest.mark.data
@pytest.mark.parametrize(
    "name", [e["name"] for e in MANIFEST["models"] if HASH.search(e.get("training_data", ""))]
)
def test_dataset_hash_in_the_manifest_is_the_shared_data(name: str, data_root: Path) -> None:
    e = next(m for m in MANIFEST["models"] if m["name"] == name)
    (claimed,) = HASH.findall(e["training_data"])
    dataset = next(k for k in LOADERS if e["training_data"].startswith(k))
    kwargs = {"landmarks": False} if dataset == "SCUT-FBP5500" else {}
    assert dataset_hash(LOADERS[dataset](data_root, **kwargs)) == claimed
