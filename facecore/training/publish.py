"""The one publisher: model file, ``cv.json``, manifest entry, figures and card of a run.

:func:`publish` takes a cross-validated :class:`~facecore.training.runner.Run` and what its
recipe shipped (:class:`Shipped`) and writes, beside ``out``:

* ``<out><suffix>`` - ``Shipped.model.save(path)`` (``.pt`` or ``.joblib``);
* the manifest entry ``<out>`` in ``<out's folder>/manifest.json``
  (:func:`facecore.model_store.write_manifest_entry`, the file's sha256 by
  :func:`facecore.model_store.sha256_file`);
* ``<out>.cv.json`` - for a cross-validation the data's fingerprint, the folds, one row per
  learner and the chosen one (unless the recipe's ``cv_header`` is False); the file size; and
  the recipe's own fields (:data:`Shipped.cv`);
* the figures ``<out>.<name>.png`` and the card ``<out>.md``
  (:func:`facecore.training.card.write_card`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Published", "Shipped", "publish", "rounded", "scatter_png", "top_entry"]


@dataclass
class Shipped:
    """What a recipe's final fit gives the publisher.

    Attributes
    ----------
    model : object with ``save(path) -> Path``
    suffix : str
        The model file's suffix (``".pt"``, ``".joblib"``).
    cv : dict or callable
        The recipe's fields of ``cv.json`` (protocol, per-group tables, settings...), or
        ``cv(model_path) -> dict``, called once the file and its manifest entry are written
        (e.g. to time the model served through the model store).
    entry : callable
        ``entry(model_path) -> dict``: the manifest entry's fields besides name, file, sha256.
    figures : dict
        ``name -> (draw(path) -> path, caption)``; drawn to ``<out>.<name>.png``.
    card : callable
        ``card(model_path, figures) -> ModelCard``; ``figures`` a list of (path, caption).
    indent : int
        Indentation of ``cv.json``.
    """

    model: Any
    suffix: str
    cv: dict[str, Any] | Callable[[Path], dict[str, Any]]
    entry: Callable[[Path], dict[str, Any]]
    card: Callable[[Path, list[tuple[Path, str]]], Any]
    figures: dict[str, tuple[Callable[[Path], Path], str]] = field(default_factory=dict)
    #: Indentation of ``cv.json`` (the classical model's has always been 2).
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


def publish(run: Any, shipped: Shipped, out: str | Path) -> Published:
    """Write the model file, ``cv.json``, the manifest entry, the figures and the card."""
    from facecore.model_store import sha256_file, write_manifest_entry
    from facecore.training.card import write_card

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model_path = Path(shipped.model.save(out.with_name(out.name + shipped.suffix)))
    entry = {"name": out.name, "file": model_path.name, "sha256": sha256_file(model_path)}
    manifest_path = write_manifest_entry({**entry, **shipped.entry(model_path)}, out.parent)
    data = run.data
    cv: dict[str, Any] = {}
    if run.folds and run.recipe.cv_header:  # the data's fingerprint, the folds, the learners
        cv = {
            "name": out.name,
            "dataset": data.title,
            "dataset_sha256": data.data_hash,
            "n_photos": data.n_photos,
            "n_with_face": int(len(data.y)),
            "folds": run.recipe.folds,
            "seed": run.recipe.seed,
            "rows": [{"name": k, "learner": k, **rounded(v)} for k, v in run.table.items()],
            "chosen": run.chosen,
            "model_file_mb": round(model_path.stat().st_size / 1e6, 2),
        }
    cv |= shipped.cv(model_path) if callable(shipped.cv) else shipped.cv
    cv_path = out.with_name(out.name + ".cv.json")
    cv_path.write_text(json.dumps(cv, indent=shipped.indent) + "\n", encoding="utf-8")
    figures = [
        (draw(out.with_name(f"{out.name}.{name}.png")).resolve(), caption)
        for name, (draw, caption) in shipped.figures.items()
    ]
    card_path = write_card(shipped.card(model_path, figures), out.with_name(out.name + ".md"))
    return Published(cv, model_path, cv_path, card_path, manifest_path, dict(run.seconds))


def rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    """A table row as ``cv.json`` keeps it: floats to 4 decimals, NaN as None."""
    return {
        k: v if isinstance(v, int) else (None if v != v else round(float(v), 4))
        for k, v in metrics.items()
    }


def top_entry(task: str, output: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The manifest fields of a fine-tuned trunk top's file (a ``TopDistributionModel``): the
    task, the architecture, the trunk's input and chip, the one ``output`` and ``fields``."""
    from facecore.heads.distribution import TOP_ARCHITECTURE

    return {
        "kind": task,
        "task": task,
        "architecture": TOP_ARCHITECTURE,
        "input_size": [150, 150],
        "normalisation": None,
        "chip": {"method": "dlib", "size": 150, "padding": 0.25},
        "outputs": [{**output, "dim": output.get("dim")}],
        **fields,
    }


def scatter_png(
    path: Path,
    y: np.ndarray,
    pred: np.ndarray,
    title: str,
    *,
    groups: np.ndarray | None = None,
    labels: tuple[str, str] = ("rated", "predicted"),
    limits: tuple[float, float] | None = None,
) -> Path:
    """Out-of-fold predicted against true values, one panel per group (or one panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["all"] if groups is None else sorted(set(groups.tolist()))
    cols = min(len(names), 4)
    rows = int(np.ceil(len(names) / cols))
    size, dpi = (5.0, 100) if groups is None else (3.2, 90)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), dpi=dpi, squeeze=False)
    lo, hi = limits or (float(min(y.min(), pred.min())), float(max(y.max(), pred.max())))
    for ax, g in zip(axes.ravel(), names, strict=False):
        sel = np.ones(len(y), bool) if groups is None else groups == g
        ax.scatter(y[sel], pred[sel], s=3 if groups is None else 4, alpha=0.3)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        if groups is None:
            ax.set_title(title, fontsize=9)
            ax.set_xlim(lo, hi + 5)
            ax.set_ylim(lo, hi + 5)
        else:
            r = np.corrcoef(y[sel], pred[sel])[0, 1] if sel.sum() > 2 else float("nan")
            ax.set_title(f"{g} (n={int(sel.sum())}, r={r:.3f})", fontsize=8)
        ax.set_xlabel(labels[0], fontsize=8 if groups is not None else None)
        ax.set_ylabel(labels[1], fontsize=8 if groups is not None else None)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    if groups is not None:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
