"""The model-card writer: licence on top, sections, tables, figures, package versions."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest

from facecore.training.publish import (
    SHARED_DATA_LICENCE,
    CardTable,
    ModelCard,
    markdown_table,
    package_versions,
    render_card,
    write_card,
)

LICENCE = f"trained on SCUT-FBP5500: {SHARED_DATA_LICENCE}"


def card(**kw) -> ModelCard:
    base = dict(
        name="toy_head",
        summary="Toy score on a 1-5 scale.",
        licence=LICENCE,
        model=["An RBF SVR.", "Inputs: 128-D descriptor."],
        training_data="Toy data (10 photos).",
        evaluation="2-fold CV.",
        tables=[
            (
                "Every model:",
                ["model", "n", "PC"],
                [["a", 10, 0.91234], ["b **(chosen)**", 9, 0.8]],
            ),
        ],
        limitations=["Toy.", "Not a property of a person."],
        rebuild="python make_toy.py",
        rebuild_note="Seed 0.",
        packages={"python": "3.11.7", "numpy": "2.4.6"},
    )
    return ModelCard(**(base | kw))


def test_markdown_table() -> None:
    text = markdown_table(["model", "n", "PC"], [["a", 10, 0.91234], ["b", "9", 0.8]])
    assert text.splitlines() == [
        "| model | n | PC |",
        "|---|---:|---:|",
        "| a | 10 | 0.9123 |",
        "| b | 9 | 0.8000 |",
    ]
    assert markdown_table(["x"], [], align=["r"]) == "| x |\n|---:|"
    assert markdown_table(["x"], [[1.5]], float_format="{:.1f}").endswith("| 1.5 |")
    with pytest.raises(ValueError):
        markdown_table(["x", "y"], [[1]])
    with pytest.raises(ValueError):
        markdown_table(["x"], [[1]], align=["c"])


def test_render_card_sections_and_licence_on_top() -> None:
    text = render_card(card())
    lines = text.splitlines()
    assert lines[0] == "# Model card: `toy_head`"
    licence_line = next(i for i, line in enumerate(lines) if LICENCE in line)
    assert licence_line <= 4 and lines[licence_line].startswith(f"**Licence: {LICENCE}.**")
    heads = [line for line in lines if line.startswith("## ")]
    assert heads == [
        "## Model",
        "## Training data",
        "## Evaluation",
        "## Limitations",
        "## Rebuild",
    ]
    assert "- An RBF SVR.\n- Inputs: 128-D descriptor." in text
    assert "Every model:\n\n| model | n | PC |\n|---|---:|---:|\n| a | 10 | 0.9123 |" in text
    assert "| b **(chosen)** | 9 | 0.8000 |" in text
    assert "```sh\npython make_toy.py\n```\nSeed 0.\nPackage versions:\n- python 3.11.7\n" in text
    assert text.endswith("- numpy 2.4.6\n") and not text.endswith("\n\n")
    # Tuples are read into typed records.
    assert isinstance(card().tables[0], CardTable)


def test_empty_sections_are_left_out() -> None:
    text = render_card(ModelCard(name="bare", summary="S.", licence="MIT"))
    assert "## " not in text and "**Licence: MIT.**" in text


def test_licence_and_name_are_mandatory() -> None:
    with pytest.raises(ValueError, match="licence"):
        card(licence=" ")
    with pytest.raises(ValueError, match="name"):
        card(name="")


def test_write_card_links_figures_relative_to_the_card(tmp_path: Path) -> None:
    fig = tmp_path / "figs" / "scatter.png"
    fig.parent.mkdir()
    fig.write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "models" / "toy_head.md"
    c = card(figures=[(fig, "Predicted vs true score.")], evaluation_notes="Timings: 1 s.")
    assert write_card(c, out) == out
    text = out.read_text(encoding="utf-8")
    assert text == render_card(c, base=out.parent)
    assert "![Predicted vs true score.](../figs/scatter.png)\n\n*Predicted vs true score.*" in text
    assert text.index("scatter.png") < text.index("Timings: 1 s.") < text.index("## Limitations")
    assert not list(out.parent.glob("*.tmp"))


def test_write_card_refuses_a_missing_figure(tmp_path: Path) -> None:
    c = card(figures=[("missing.png", "Nothing.")])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        write_card(c, tmp_path / "toy.md")
    assert not (tmp_path / "toy.md").exists()


def test_package_versions() -> None:
    v = package_versions(["numpy", "no-such-distribution-xyz"])
    assert v == {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "no-such-distribution-xyz": "not installed",
    }
    assert list(package_versions())[:3] == ["python", "facecore", "numpy"]
