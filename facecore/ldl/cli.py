"""``facecore pairwise fit``: rating distributions from a CSV of pairwise preferences.

:func:`register` adds the ``pairwise`` command group to the main ``facecore`` Typer app.

Input: a CSV file with a header row naming the columns ``winner`` and ``loser`` (item ids, any
strings; the header is matched after stripping spaces, case-insensitively) and optionally
``weight`` (a finite number >= 0); other columns are ignored. Output: a CSV with the header
``item,mean,p1,...,pK`` and one row per item in order of first appearance, the distribution
fitted by :func:`facecore.ldl.pairwise_to_distribution` on the bins 1..K.

Exit codes are those of :mod:`facecore.cli`: 0 done; 2 usage or bad input (missing file or
columns, an empty file, a malformed row, a self-comparison, a non-numeric, negative or
non-finite weight, comparisons that leave items unplaced, an unwritable output); every message
names the file and, for a row, its line.

This module implements no paper; see :mod:`facecore.ldl.pairwise`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

__all__ = ["ComparisonFileError", "Comparisons", "read_comparisons", "register"]

# The exit codes of facecore.cli (not imported from it: that module imports this one).
EXIT_OK, EXIT_USAGE = 0, 2

# facecore.ldl.pairwise.DEFAULT_LAMBDA and DEFAULT_ALPHA, repeated so that the command line does
# not import scikit-learn before a command runs (tests/ldl/test_cli.py checks they agree).
DEFAULT_LAMBDA = 1.0
DEFAULT_ALPHA = 1.0


class ComparisonFileError(ValueError):
    """A comparisons file cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Comparisons:
    """Comparisons read from a file.

    Attributes
    ----------
    items : tuple of str, length n
        Item ids in order of first appearance.
    winners, losers : ndarray of shape (M,), int64
        Indices into ``items``.
    weights : ndarray of shape (M,), float64
        1 where the file has no ``weight`` column.
    """

    items: tuple[str, ...]
    winners: np.ndarray
    losers: np.ndarray
    weights: np.ndarray


def read_comparisons(path: str | Path) -> Comparisons:
    """Read a ``winner,loser[,weight]`` CSV file (see the module notes).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Comparisons

    Raises
    ------
    ComparisonFileError
        If the file is empty, lacks a column, or a row is malformed (the message names the
        line).
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ComparisonFileError(f"{path}: the file is empty (expected a header row)")
        names = [h.strip().lower() for h in header]
        missing = [c for c in ("winner", "loser") if c not in names]
        if missing:
            raise ComparisonFileError(
                f"{path}: line 1: missing column(s) {missing}; the header has {header}"
            )
        iw, il = names.index("winner"), names.index("loser")
        iwt = names.index("weight") if "weight" in names else None
        index: dict[str, int] = {}
        win: list[int] = []
        lose: list[int] = []
        wts: list[float] = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise ComparisonFileError(
                    f"{path}: line {line}: expected {len(header)} fields, got {len(row)}"
                )
            a, b = row[iw].strip(), row[il].strip()
            for col, val in (("winner", a), ("loser", b)):
                if not val:
                    raise ComparisonFileError(f"{path}: line {line}: empty {col}")
            if a == b:
                raise ComparisonFileError(
                    f"{path}: line {line}: self-comparison (winner and loser are both {a!r})"
                )
            weight = 1.0
            if iwt is not None:
                cell = row[iwt].strip()
                try:
                    weight = float(cell)
                except ValueError:
                    raise ComparisonFileError(
                        f"{path}: line {line}: weight {cell!r} is not a number"
                    ) from None
                if not math.isfinite(weight) or weight < 0:
                    raise ComparisonFileError(
                        f"{path}: line {line}: weight {cell!r} must be finite and >= 0"
                    )
            win.append(index.setdefault(a, len(index)))
            lose.append(index.setdefault(b, len(index)))
            wts.append(weight)
    if not win:
        raise ComparisonFileError(f"{path}: no comparisons after the header")
    if not sum(wts) > 0:
        raise ComparisonFileError(f"{path}: every weight is 0")
    return Comparisons(
        items=tuple(index),
        winners=np.array(win, dtype=np.int64),
        losers=np.array(lose, dtype=np.int64),
        weights=np.array(wts, dtype=np.float64),
    )


def _err(msg: str) -> None:
    typer.echo(f"facecore: error: {msg}", err=True)


pairwise_cli = typer.Typer(
    help="Rating distributions from pairwise preferences (Ren & Geng, IJCAI 2017).",
    no_args_is_help=True,
)


@pairwise_cli.command("fit")
def fit_cmd(
    comparisons: Annotated[
        Path, typer.Argument(help="CSV with a header: winner,loser[,weight] (item ids).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write item,mean,p1..pK (CSV).")
    ],
    bins: Annotated[int, typer.Option(min=2, max=100, help="K: the bins are 1..K.")] = 5,
    lam: Annotated[
        float, typer.Option("--lambda", min=0.0, help="Weight of the variance penalty.")
    ] = DEFAULT_LAMBDA,
    alpha: Annotated[
        float, typer.Option(min=0.0, help="Dirichlet pseudo-count per bin (0: none).")
    ] = DEFAULT_ALPHA,
) -> None:
    """Fit one rating distribution per item from "winner is preferred to loser" rows."""
    from facecore.ldl.pairwise import DisconnectedComparisonsError, pairwise_to_distribution

    try:
        data = read_comparisons(comparisons)
    except ComparisonFileError as e:
        _err(str(e))
        raise typer.Exit(EXIT_USAGE) from None
    except (OSError, UnicodeDecodeError) as e:
        _err(f"{comparisons}: cannot read: {getattr(e, 'strerror', None) or e}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        d, info = pairwise_to_distribution(
            data.winners,
            data.losers,
            len(data.items),
            bins=bins,
            lam=lam,
            alpha=alpha,
            weights=data.weights,
            item_ids=data.items,
        )
    except DisconnectedComparisonsError as e:
        _err(f"{comparisons}: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        with output.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["item", "mean", *(f"p{k}" for k in range(1, bins + 1))])
            for item, mean, row in zip(data.items, info["means"], d, strict=True):
                writer.writerow([item, f"{mean:.6f}", *(f"{p:.6f}" for p in row)])
    except OSError as e:
        _err(f"cannot write {output}: {e.strerror or e}")
        raise typer.Exit(EXIT_USAGE) from None
    if not info["converged"]:
        typer.echo(f"facecore: warning: the optimiser stopped early ({info['message']})", err=True)
    typer.echo(
        f"{len(data.items)} items, {info['n_pairs']} comparisons, {bins} bins: "
        f"{info['n_iter']} iterations, {info['pair_accuracy']:.1%} of the comparisons agree "
        f"with the fitted distributions; written to {output}"
    )


def register(cli: typer.Typer) -> None:
    """Add the ``pairwise`` command group (``facecore pairwise fit``) to a Typer app."""
    cli.add_typer(pairwise_cli, name="pairwise")
