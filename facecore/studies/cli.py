"""``facecore study ...``: the offline studies (:mod:`facecore.studies`).

``facecore study age-attractiveness`` runs the dating-site paper's study
(:mod:`facecore.studies.age_attractiveness.study`). :func:`register` adds the ``study`` command
group to the main ``facecore`` Typer app. Exit codes are those of :mod:`facecore.cli`: 0 done,
2 bad input (a missing data folder, an unknown model, a malformed ``--model``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

EXIT_USAGE = 2

study_cli = typer.Typer(help="Studies run on the rated face sets.", no_args_is_help=True)


def _err(message: str) -> None:
    typer.echo(f"facecore: error: {message}", err=True)


@study_cli.command("age-attractiveness")
def age_attractiveness(
    data: Annotated[
        Path, typer.Option(help="Data root holding scut-fbp5500/ and mebeauty/.")
    ] = Path("../shared/data"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "study/age-attractiveness"
    ),
    dataset: Annotated[
        list[str] | None,
        typer.Option(help="scut-fbp5500 and/or mebeauty (repeatable; default both)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="DATASET=MODEL: the attractiveness model studied on a dataset."),
    ] = None,
    age_model: Annotated[str, typer.Option(help="Age model (manifest name).")] = "age_utkface",
    workers: Annotated[int, typer.Option(min=1, help="Batch worker processes.")] = 1,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N photos per dataset.")
    ] = None,
) -> None:
    """Correlation of estimated age with attractiveness, per sex, set against the paper's."""
    from facecore.studies.age_attractiveness.study import DEFAULT_MODELS, run_study

    names = tuple(dataset or ("scut-fbp5500", "mebeauty"))
    bad = [n for n in names if n not in DEFAULT_MODELS]
    if bad:
        _err(f"unknown dataset {bad[0]!r}; choose from {', '.join(DEFAULT_MODELS)}")
        raise typer.Exit(EXIT_USAGE)
    models = dict(DEFAULT_MODELS)
    for pair in model or ():
        name, sep, value = pair.partition("=")
        if not sep or name not in DEFAULT_MODELS or not value:
            _err(
                f"--model {pair!r}: expected DATASET=MODEL with DATASET in "
                f"{', '.join(DEFAULT_MODELS)}"
            )
            raise typer.Exit(EXIT_USAGE)
        models[name] = value
    from facecore.errors import FacecoreError

    try:
        res = run_study(
            data,
            out,
            datasets=names,
            models=models,
            age_model=age_model,
            workers=workers,
            limit=limit,
            progress=True,
        )
    except (FileNotFoundError, ValueError, FacecoreError) as e:
        _err(str(e))
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(res.table_md.read_text(encoding="utf-8"))
    typer.echo(f"written: {res.table_csv}, {res.table_md}, {res.plot}")


def register(cli: typer.Typer) -> None:
    """Add the ``study`` command group to a Typer app."""
    cli.add_typer(study_cli, name="study")
