"""Model cards: a typed record of what a trained model is, rendered to Markdown.

M. Mitchell et al., "Model Cards for Model Reporting", FAT* 2019: :class:`ModelCard` holds a
subset of the paper's sections (see ``docs/training.md``); :func:`render_card` writes the
Markdown and :func:`write_card` the file (atomically). The licence is mandatory; anything
trained on the labelled sets of ``shared/data`` is for :data:`SHARED_DATA_LICENCE`.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from facecore.atomic import atomic_path

__all__ = [
    "DEFAULT_DISTRIBUTIONS",
    "SHARED_DATA_LICENCE",
    "CardFigure",
    "CardTable",
    "ModelCard",
    "markdown_table",
    "package_versions",
    "render_card",
    "write_card",
]

logger = logging.getLogger(__name__)

#: The licence of every model trained on the labelled sets of ``shared/data``.
SHARED_DATA_LICENCE = "non-commercial research use only"

#: Distributions whose versions :func:`package_versions` records by default.
DEFAULT_DISTRIBUTIONS = (
    "facecore",
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "opencv-python-headless",
    "torch",
    "dlib-bin",
    "joblib",
)

Cell = str | int | float


class CardTable(NamedTuple):
    """One evaluation table: a caption paragraph, the header and the rows.

    Attributes
    ----------
    title : str
        Text shown above the table (Markdown; may be empty).
    header : sequence of str
    rows : sequence of sequence of str, int or float
        Floats are written with ``float_format``; a column whose cells are all numbers (or
        strings that read as numbers) is right-aligned.
    float_format : str, default "{:.4f}"
    """

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    float_format: str = "{:.4f}"


class CardFigure(NamedTuple):
    """A figure: a PNG file and its caption."""

    path: str | os.PathLike[str]
    caption: str


@dataclass
class ModelCard:
    """Everything a model card says.

    Attributes
    ----------
    name : str
        The model's name (its manifest entry and file stem).
    summary : str
        One paragraph: what the model predicts, on what scale.
    licence : str
        Mandatory; e.g. ``"trained on SCUT-FBP5500: non-commercial research use only"``.
    model : str or sequence of str
        Model description (method, papers, inputs, outputs, file); a sequence is rendered as a
        bullet list.
    training_data : str
        Which data, which version (dataset hash), how many samples were used and left out.
    evaluation : str
        The evaluation protocol, shown before the tables.
    tables : list of CardTable or (title, header, rows)
    figures : list of CardFigure or (path, caption)
        PNG files; :func:`write_card` links them relative to the card and checks they exist.
    evaluation_notes : str
        Text after the tables and figures (e.g. timings).
    limitations : list of str
        One bullet each.
    rebuild : str
        The shell command that rebuilds the model.
    rebuild_note : str
        Text after the command (seed, reproducibility).
    packages : dict of str to str
        Package versions it was built with (:func:`package_versions`).
    licence_note : str
        Follows the licence line.
    """

    name: str
    summary: str
    licence: str
    model: str | Sequence[str] = ""
    training_data: str = ""
    evaluation: str = ""
    tables: list[CardTable] = field(default_factory=list)
    figures: list[CardFigure] = field(default_factory=list)
    evaluation_notes: str = ""
    limitations: list[str] = field(default_factory=list)
    rebuild: str = ""
    rebuild_note: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    licence_note: str = "The model inherits the licence of its training data."

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a model card needs a name")
        if not self.licence.strip():
            raise ValueError(f"the model card of {self.name!r} needs a licence")
        self.tables = [CardTable(*t) for t in self.tables]
        self.figures = [CardFigure(*f) for f in self.figures]


def package_versions(distributions: Iterable[str] = DEFAULT_DISTRIBUTIONS) -> dict[str, str]:
    """Python's version and the installed version of each distribution.

    Parameters
    ----------
    distributions : iterable of str
        Distribution names as pip knows them.

    Returns
    -------
    dict of str to str
        ``{"python": "3.11.7", "numpy": "2.4.6", ...}``; ``"not installed"`` for a missing one.
    """
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in distributions:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _is_number(cell: Cell) -> bool:
    if isinstance(cell, bool):
        return False
    if isinstance(cell, int | float):
        return True
    try:
        float(str(cell))
    except ValueError:
        return False
    return True


def markdown_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    float_format: str = "{:.4f}",
    align: Sequence[str] | None = None,
) -> str:
    """A Markdown pipe table.

    Parameters
    ----------
    header : sequence of str, length C
    rows : sequence of sequence of length C
        Cells: str, int or float (floats written with ``float_format``).
    float_format : str, default "{:.4f}"
    align : sequence of "l" or "r", length C, optional
        Column alignment; by default right for columns of numbers only, left otherwise.

    Returns
    -------
    str
        Header, separator and one line per row, without a trailing newline.
    """
    n = len(header)
    if any(len(r) != n for r in rows):
        raise ValueError(f"every row needs {n} cells")
    if align is None:
        align = ["r" if rows and all(_is_number(r[c]) for r in rows) else "l" for c in range(n)]
    elif len(align) != n or set(align) - {"l", "r"}:
        raise ValueError(f"align needs {n} entries of 'l' or 'r', got {align!r}")

    def cell(v: Cell) -> str:
        return float_format.format(v) if isinstance(v, float) else str(v)

    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _figure_link(path: str | os.PathLike[str], base: Path | None) -> str:
    p = Path(path)
    if base is not None and p.is_absolute():
        try:
            return Path(os.path.relpath(p, base)).as_posix()
        except ValueError:  # another drive
            return p.as_posix()
    return p.as_posix()


def render_card(card: ModelCard, *, base: str | os.PathLike[str] | None = None) -> str:
    """The card as Markdown.

    Parameters
    ----------
    card : ModelCard
    base : path-like, optional
        Folder the card will be written to: absolute figure paths are linked relative to it.

    Returns
    -------
    str
        Ends with one newline. Sections: title, summary, licence, Model, Training data,
        Evaluation (protocol, tables, figures, notes), Limitations, Rebuild (command, note,
        package versions); empty sections are left out.
    """
    base_dir = None if base is None else Path(base)
    parts = [
        f"# Model card: `{card.name}`",
        card.summary.strip(),
        f"**Licence: {card.licence}.** {card.licence_note}".rstrip(),
    ]
    model = card.model
    if isinstance(model, str):
        model_text = model.strip()
    else:
        model_text = "\n".join(f"- {item}" for item in model)
    if model_text:
        parts.append("## Model\n" + model_text)
    if card.training_data.strip():
        parts.append("## Training data\n" + card.training_data.strip())
    evaluation = [card.evaluation.strip()] if card.evaluation.strip() else []
    for t in card.tables:
        table = markdown_table(t.header, t.rows, float_format=t.float_format)
        evaluation.append(f"{t.title.strip()}\n\n{table}" if t.title.strip() else table)
    for f in card.figures:
        evaluation.append(f"![{f.caption}]({_figure_link(f.path, base_dir)})\n\n*{f.caption}*")
    if card.evaluation_notes.strip():
        evaluation.append(card.evaluation_notes.strip())
    if evaluation:
        parts.append("## Evaluation\n" + "\n\n".join(evaluation))
    if card.limitations:
        parts.append("## Limitations\n" + "\n".join(f"- {x}" for x in card.limitations))
    rebuild = []
    if card.rebuild.strip():
        rebuild.append(f"```sh\n{card.rebuild.strip()}\n```")
    if card.rebuild_note.strip():
        rebuild.append(card.rebuild_note.strip())
    if card.packages:
        rebuild.append(
            "Package versions:\n" + "\n".join(f"- {k} {v}" for k, v in card.packages.items())
        )
    if rebuild:
        parts.append("## Rebuild\n" + "\n".join(rebuild))
    return "\n\n".join(p for p in parts if p) + "\n"


def write_card(card: ModelCard, path: str | os.PathLike[str]) -> Path:
    """Render ``card`` and write it to ``path`` (atomically; parent folders are created).

    Parameters
    ----------
    card : ModelCard
    path : path-like
        Usually ``models/<name>.md``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileNotFoundError
        If a figure's file does not exist (relative figure paths are taken relative to the
        card's folder).
    """
    path = Path(path)
    for f in card.figures:
        p = Path(f.path)
        if not (p if p.is_absolute() else path.parent / p).is_file():
            raise FileNotFoundError(f"figure {p} of the model card {path} does not exist")
    text = render_card(card, base=path.parent.resolve())
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    logger.info("model card written to %s", path)
    return path
