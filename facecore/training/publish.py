"""The one publisher: model file, ``cv.json``, manifest entry, figures and model card of a run.

:func:`publish` writes what a recipe shipped (:class:`Shipped`) for a cross-validated
:class:`~facecore.training.runner.Run` beside ``out`` (the files: ``docs/training.md``). The card
follows M. Mitchell et al., "Model Cards for Model Reporting", FAT* 2019: :class:`ModelCard`
holds a subset of the paper's sections, with a mandatory licence (:data:`SHARED_DATA_LICENCE`
for anything trained on the labelled sets of ``shared/data``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from facecore.atomic import atomic_path

__all__ = [
    "SHARED_DATA_LICENCE",
    "CardTable",
    "Figure",
    "GroupTable",
    "ModelCard",
    "Published",
    "Shipped",
    "fill",
    "make_card",
    "markdown_table",
    "package_versions",
    "publish",
    "render_card",
    "rounded",
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
    """One evaluation table: the text above it (Markdown, may be empty), the header and the rows
    (as :func:`markdown_table` writes them)."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    float_format: str = "{:.4f}"


@dataclass
class ModelCard:
    """Everything a model card says, in the order :func:`render_card` writes it: ``model`` a
    paragraph or a bullet list, ``evaluation`` the protocol before the ``tables`` (CardTable or
    ``(title, header, rows)``) and ``figures`` (``(png, caption)``), ``evaluation_notes`` after
    them, ``rebuild`` the shell command and ``rebuild_note`` the text after it, ``packages``
    from :func:`package_versions`."""

    name: str
    summary: str
    licence: str
    model: str | Sequence[str] = ""
    training_data: str = ""
    evaluation: str = ""
    tables: list[CardTable] = field(default_factory=list)
    figures: list[tuple[str | os.PathLike[str], str]] = field(default_factory=list)
    evaluation_notes: str = ""
    limitations: list[str] = field(default_factory=list)
    rebuild: str = ""
    rebuild_note: str = ""
    packages: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a model card needs a name")
        if not self.licence.strip():
            raise ValueError(f"the model card of {self.name!r} needs a licence")
        self.tables = [CardTable(*t) for t in self.tables]


def package_versions(distributions: Iterable[str] = DEFAULT_DISTRIBUTIONS) -> dict[str, str]:
    """``{"python": "3.11.7", "numpy": "2.4.6", ...}``: Python's version and each distribution's
    (pip's names), ``"not installed"`` for a missing one."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in distributions:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _is_number(cell: Cell) -> bool:
    try:
        float(str(cell))  # not a bool: float("True") fails
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
    """A Markdown pipe table, without a trailing newline; ``align`` ("l" or "r" per column)
    defaults to right for columns of numbers (or strings that read as numbers), else left."""
    n = len(header)
    if any(len(r) != n for r in rows):
        raise ValueError(f"every row needs {n} cells")
    if align is None:
        align = ["r" if rows and all(_is_number(r[c]) for r in rows) else "l" for c in range(n)]
    elif len(align) != n or set(align) - {"l", "r"}:
        raise ValueError(f"align needs {n} entries of 'l' or 'r', got {align!r}")
    cells = [[float_format.format(v) if isinstance(v, float) else str(v) for v in r] for r in rows]
    head, *body = ["| " + " | ".join(r) + " |" for r in [header, *cells]]
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return "\n".join([head, rule, *body])


def render_card(card: ModelCard, *, base: str | os.PathLike[str] | None = None) -> str:
    """The card as Markdown: title, summary, licence, then the sections that are not empty;
    absolute figure paths are linked relative to ``base`` (the card's folder)."""

    def section(title: str, items: list[str], sep: str = "\n\n") -> str:
        items = [x for x in items if x]
        return f"## {title}\n" + sep.join(items) if items else ""

    def bullets(items: Sequence[str]) -> str:
        return "\n".join(f"- {x}" for x in items)

    model = card.model.strip() if isinstance(card.model, str) else bullets(card.model)
    evaluation = [card.evaluation.strip()]
    for t in card.tables:
        table = markdown_table(t.header, t.rows, float_format=t.float_format)
        evaluation.append(f"{t.title.strip()}\n\n{table}" if t.title.strip() else table)
    for path, caption in card.figures:
        p = Path(path)
        link = Path(os.path.relpath(p, base)) if base is not None and p.is_absolute() else p
        evaluation.append(f"![{caption}]({link.as_posix()})\n\n*{caption}*")
    packages = "".join(f"\n- {k} {v}" for k, v in card.packages.items())
    parts = [
        f"# Model card: `{card.name}`",
        card.summary.strip(),
        f"**Licence: {card.licence}.** The model inherits the licence of its training data.",
        section("Model", [model]),
        section("Training data", [card.training_data.strip()]),
        section("Evaluation", [*evaluation, card.evaluation_notes.strip()]),
        section("Limitations", [bullets(card.limitations)]),
        section(
            "Rebuild",
            [
                f"```sh\n{card.rebuild.strip()}\n```" if card.rebuild.strip() else "",
                card.rebuild_note.strip(),
                f"Package versions:{packages}" if packages else "",
            ],
            "\n",
        ),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def write_card(card: ModelCard, path: str | os.PathLike[str]) -> Path:
    """Render ``card`` and write it to ``path`` (atomically; usually ``models/<name>.md``);
    FileNotFoundError if a figure's file (relative: to the card's folder) does not exist."""
    path = Path(path)
    for f, _ in card.figures:
        if not (path.parent / f).is_file():  # an absolute f is itself
            raise FileNotFoundError(f"figure {Path(f)} of the model card {path} does not exist")
    text = render_card(card, base=path.parent.resolve())
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    logger.info("model card written to %s", path)
    return path


# -- the publisher -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupTable:
    """A per-group table of ``cv.json`` (key ``name``) and of the card.

    ``key`` names ``Data.groups``; ``order`` the groups in order (None: sorted; absent ones are
    left out). ``of="learners"``: every tabled learner's MAE per group (2 decimals);
    ``of="shipped"``: the shipped learner's PC, MAE and RMSE (4 decimals). ``title`` is a
    template (:func:`fill`); ``entry``: also in the manifest entry's metrics.
    """

    name: str
    key: str
    title: str
    order: tuple[str, ...] | None = None
    of: str = "learners"
    entry: bool = False


@dataclass(frozen=True)
class Figure:
    """A figure of the card: ``<out>.<name>.png`` drawn by ``FIGURES[kind](run, path, **options)``
    (option values that are strings are templates, :func:`fill`)."""

    name: str
    kind: str
    caption: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Shipped:
    """What a recipe's final fit gives the publisher: the model (``save(path) -> Path``) and
    its file's ``suffix``; the recipe's fields of ``cv.json`` (or ``cv(model_path) -> dict``,
    called once the file and its manifest entry are written); ``entry(model_path)``, the
    manifest entry's fields besides name, file and sha256; ``card(model_path, figures)``
    (default :func:`make_card`); the card templates' ``fields`` besides :meth:`Recipe.fields`
    and ``cv.json``'s; ``tables`` after the learners' and per-group ones; ``cv.json``'s
    ``indent`` (the classical model's has always been 2)."""

    model: Any
    suffix: str
    cv: dict[str, Any] | Callable[[Path], dict[str, Any]]
    entry: Callable[[Path], dict[str, Any]]
    card: Callable[[Path, list[tuple[Path, str]]], Any] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    tables: list[Any] = field(default_factory=list)
    indent: int = 1


@dataclass
class Published:
    """The files :func:`publish` wrote, and the ``cv.json`` document."""

    cv: dict[str, Any]
    model_path: Path
    cv_path: Path
    card_path: Path
    manifest_path: Path
    seconds: dict[str, float]


def rounded(v: Any) -> Any:
    """``v`` as ``cv.json`` keeps it: numbers other than ints (also inside dicts and lists) to
    4 decimals, NaN as None."""
    if isinstance(v, dict):
        return {k: rounded(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [rounded(x) for x in v]
    if v is None or isinstance(v, int | str):
        return v
    return None if v != v else round(float(v), 4)


def fill(template: Any, fields: dict[str, Any]) -> Any:
    """A card template (str, or a sequence of them) with ``fields`` filled in
    (``str.format``: ``{n}``, ``{extra[rule]}``, ``{calibration[knots]:.3f}``)."""
    if isinstance(template, str):
        return template.format(**fields)
    return [fill(t, fields) for t in template]


def group_docs(run: Any) -> dict[str, dict[str, Any]]:
    """The recipe's per-group tables as ``cv.json`` keeps them: ``{name: {group: {...}}}``."""
    from facecore.metrics import regression_metrics

    y, out = run.data.y, {}
    for gt in run.recipe.group_tables:
        key = run.data.groups[gt.key]
        order = gt.order or sorted(set(key.tolist()))
        doc = {}
        for g in order:
            sel = key == g
            if not sel.any():
                continue
            if gt.of == "learners":
                maes = {k: np.mean(np.abs(run.oof[k].values[sel] - y[sel])) for k in run.table}
                doc[g] = {"n": int(sel.sum())} | {k: round(float(v), 2) for k, v in maes.items()}
            else:
                m = regression_metrics(y[sel], run.oof[run.chosen].values[sel])
                doc[g] = {k: round(float(v), 4) for k, v in m.items()} | {"n": int(sel.sum())}
        out[gt.name] = doc
    return out


#: Groups smaller than this are left out of the worst-group comparison (their error is noise).
WORST_GROUP_MIN_N = 30


def worst_groups(run: Any, groups: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per group table, the group of at least :data:`WORST_GROUP_MIN_N` photos where the shipped
    learner errs most (MAE), with that MAE over the overall one."""
    overall, out = float(run.table[run.chosen]["mae"]), {}
    for name, doc in groups.items():
        maes = {
            g: float(d["mae"] if "mae" in d else d[run.chosen])
            for g, d in doc.items()
            if d["n"] >= WORST_GROUP_MIN_N
        }
        if maes:
            g = max(maes, key=maes.get)
            out[name] = {"group": g, "mae": maes[g], "overall_mae": round(overall, 4)}
            out[name]["ratio"] = round(maes[g] / overall, 3)
    return out


def _group_table(
    gt: GroupTable, doc: dict[str, Any], fields: dict[str, Any], worst: dict[str, Any] | None
) -> Any:
    title = fill(gt.title, fields)
    if worst:
        title += (
            f" (worst group of at least {WORST_GROUP_MIN_N} photos for the shipped learner: "
            f"{worst['group']}, MAE {worst['mae']:.4g} = {worst['ratio']:.2f}x the overall "
            f"{worst['overall_mae']:.4g})"
        )
    if gt.of == "learners":
        names = [k for k in next(iter(doc.values()), {}) if k != "n"]
        rows = [[g, d["n"], *(d[k] for k in names)] for g, d in doc.items()]
        return CardTable(title, [gt.key, "n", *names], rows, "{:.2f}")
    rows = [[g, m["n"], m["pc"], m["mae"], m["rmse"]] for g, m in doc.items()]
    return CardTable(title, [gt.key, "n", "PC", "MAE", "RMSE"], rows)


def make_card(
    recipe: Any, fields: dict[str, Any], tables: list[Any], figures: list[tuple[Path, str]]
) -> Any:
    """The card of ``recipe``'s ``card_text`` filled with ``fields``, with ``tables``."""
    text = {k: fill(v, fields) for k, v in recipe.card_text.items()}
    return ModelCard(
        name=fields["name"],
        licence=fields["licence"],
        rebuild=fields["rebuild"],
        tables=tables,
        figures=figures,
        packages=package_versions(),
        **text,
    )


def publish(run: Any, shipped: Shipped, out: str | Path) -> Published:
    """Write the model file, ``cv.json``, the manifest entry, the figures and the card."""
    from facecore.model_store import sha256_file, write_manifest_entry

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recipe, data = run.recipe, run.data
    model_path = Path(shipped.model.save(out.with_name(out.name + shipped.suffix)))
    entry = {"name": out.name, "file": model_path.name, "sha256": sha256_file(model_path)}
    entry |= shipped.entry(model_path)
    cv: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    if run.folds and recipe.cv_header:  # the data's fingerprint, the folds, the learners
        summary = recipe.summary(run)
        groups = group_docs(run)
        cv = {
            "name": out.name,
            "dataset": data.title,
            "dataset_sha256": data.data_hash,
            "n_photos": data.n_photos,
            "n_with_face": int(len(data.y)),
            "folds": recipe.folds,
            "seed": recipe.seed,
            "rows": [{"name": k, "learner": k, **rounded(v)} for k, v in run.table.items()],
            "chosen": run.chosen,
            "model_file_mb": round(model_path.stat().st_size / 1e6, 2),
            "protocol": summary["protocol"],
            "learners": {k: rounded(v) for k, v in run.table.items()},
            **groups,
            "worst_groups": worst_groups(run, groups),
        }
        entry["metrics"] = {
            "cv": summary,
            **{g.name: groups[g.name] for g in recipe.group_tables if g.entry},
        }
    manifest_path = write_manifest_entry(entry, out.parent)
    cv |= shipped.cv(model_path) if callable(shipped.cv) else shipped.cv
    cv_path = out.with_name(out.name + ".cv.json")
    cv_path.write_text(json.dumps(cv, indent=shipped.indent) + "\n", encoding="utf-8")
    fields = {
        **cv,
        **recipe.fields(run),
        "name": out.name,
        "file": model_path.name,
        "file_mb": model_path.stat().st_size / 1e6,
        **shipped.fields,
    }
    figures = []
    for f in recipe.figures:
        options = {k: fill(v, fields) if isinstance(v, str) else v for k, v in f.options.items()}
        path = FIGURES[f.kind](run, out.with_name(f"{out.name}.{f.name}.png"), **options)
        figures.append((path.resolve(), f.caption))
    if shipped.card is not None:
        card = shipped.card(model_path, figures)
    else:
        tables = []
        if recipe.columns:
            rows = [
                [k, *("" if (v := rounded(m).get(c)) is None else v for _, c in recipe.columns)]
                for k, m in run.table.items()
            ]
            head = ["learner", *(h for h, _ in recipe.columns)]
            tables.append(CardTable(recipe.table_title, head, rows, recipe.table_format))
        worst = cv.get("worst_groups", {})
        tables += [
            _group_table(g, groups[g.name], fields, worst.get(g.name)) for g in recipe.group_tables
        ]
        card = make_card(recipe, fields, tables + list(shipped.tables), figures)
    card_path = write_card(card, out.with_name(out.name + ".md"))
    return Published(cv, model_path, cv_path, card_path, manifest_path, dict(run.seconds))


# -- figures ------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


def scatter_png(
    run: Any,
    path: Path,
    *,
    title: str,
    by: str | None = None,
    labels: tuple[str, str] = ("rated", "predicted"),
    limits: tuple[float, float] | None = None,
) -> Path:
    """The shipped learner's out-of-fold values against the true ones, one panel per group of
    ``Data.groups[by]`` (or one panel)."""
    plt = _plt()
    y, pred, one = run.data.y, run.oof[run.chosen].values, by is None
    groups = np.full(len(y), "all") if one else run.data.groups[by]
    names = sorted(set(groups.tolist()))
    cols = min(len(names), 4)
    rows = int(np.ceil(len(names) / cols))
    size, dpi, font = (5.0, 100, None) if one else (3.2, 90, 8)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), dpi=dpi, squeeze=False)
    lo, hi = limits or (float(min(y.min(), pred.min())), float(max(y.max(), pred.max())))
    for ax, g in zip(axes.ravel(), names, strict=False):
        sel = groups == g
        ax.scatter(y[sel], pred[sel], s=3 if one else 4, alpha=0.3)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        if one:
            ax.set_title(title, fontsize=9)
            ax.set_xlim(lo, hi + 5)
            ax.set_ylim(lo, hi + 5)
        else:
            r = np.corrcoef(y[sel], pred[sel])[0, 1] if sel.sum() > 2 else float("nan")
            ax.set_title(f"{g} (n={int(sel.sum())}, r={r:.3f})", fontsize=8)
        ax.set_xlabel(labels[0], fontsize=font)
        ax.set_ylabel(labels[1], fontsize=font)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    if not one:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def group_bars_png(run: Any, path: Path, *, table: str, xlabel: str, ylabel: str) -> Path:
    """Every learner's MAE per group of the per-group table ``table`` (``of="learners"``)."""
    plt = _plt()
    doc = group_docs(run)[table]
    names = list(run.table)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    x = np.arange(len(doc))
    w = 0.8 / len(names)
    for j, name in enumerate(names):
        ax.bar(x + j * w, [d[name] for d in doc.values()], w, label=name)
    ax.set_xticks(x + w * (len(names) - 1) / 2, list(doc))
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    return _save(fig, path)


def distributions_png(run: Any, path: Path, *, n: int = 5) -> Path:
    """``n`` faces across the range of ``y``: the target distribution against the shipped
    learner's out-of-fold one (titled by ``Data.extra["names"]``)."""
    plt = _plt()
    y, bins = run.data.y, np.asarray(run.recipe.bins, np.float64)
    pick = np.argsort(y)[np.linspace(0, len(y) - 1, n).round().astype(int)]
    true, pred = run.data.targets[pick], run.oof[run.chosen].distributions[pick]
    names = [run.data.extra["names"][i] for i in pick]
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 2.6), dpi=90, squeeze=False)
    w = 0.4 * float(bins[1] - bins[0])
    for ax, t, p, name in zip(axes[0], true, pred, names, strict=True):
        ax.bar(bins - w / 2, t, w, label="target")
        ax.bar(bins + w / 2, p, w, label="predicted")
        ax.set_title(name, fontsize=7)
        ax.set_xticks(bins[:: max(1, len(bins) // 5)])
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


#: The figures a recipe may ask for (:class:`Figure` ``kind``).
FIGURES: dict[str, Callable[..., Path]] = {
    "scatter": scatter_png,
    "group_bars": group_bars_png,
    "distributions": distributions_png,
}
