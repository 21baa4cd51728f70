"""The ``facecore`` command line.

Exit codes
----------
0  every input was processed (an image without faces counts as processed)
1  at least one input could not be read or decoded (each is reported on stderr; the others are
   still processed)
2  usage error (unknown option, missing argument)
3  a model file is missing or corrupt
130 interrupted (Ctrl-C); ``batch`` keeps every finished image, rerun to resume
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from facecore.errors import FacecoreError, ModelFileError

if TYPE_CHECKING:
    from facecore.types import Face

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

cli = typer.Typer(
    name="facecore",
    help="Face analysis and facial-attractiveness estimation, offline on a CPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _err(msg: str) -> None:
    typer.echo(f"facecore: error: {msg}", err=True)


def _fmt_face(i: int, d: dict) -> str:
    x1, y1, x2, y2 = d["box"]
    s = f"  face {i}: box=({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) score={d['score']:.3f}"
    s += f" detector={d['detector']}"
    if d.get("landmarks") is not None:
        s += f" landmarks={len(d['landmarks'])}"
    for k, v in d.get("predictions", {}).items():
        s += f" {k}={v:.3f}"
    return s


def _make_analyzer(**kwargs: Any) -> Any:
    from facecore.analyzer import FaceAnalyzer

    try:
        return FaceAnalyzer(**kwargs)
    except ValueError as e:
        _err(str(e))
        raise typer.Exit(EXIT_USAGE) from None


def _run_images(
    analyzer: Any,
    images: list[Path],
    as_json: bool,
    to_entry: Callable[[list[Face]], dict[str, Any]],
    render: Callable[[dict[str, Any]], list[str]],
) -> None:
    """Analyse each image, print text or one JSON document, exit 0, 1 (bad input) or 3."""
    results, failed = [], 0
    for path in images:
        try:
            faces = analyzer.analyze(path)
        except ModelFileError as e:
            _err(str(e))
            raise typer.Exit(EXIT_MODEL) from None
        except (FacecoreError, OSError) as e:
            failed += 1
            code = getattr(e, "code", "unreadable_file")
            msg = str(e) if not isinstance(e, OSError) else f"cannot read file: {e.strerror or e}"
            _err(f"{path}: {msg}")
            results.append({"path": str(path), "error": {"code": code, "message": msg}})
            continue
        entry = {"path": str(path), **to_entry(faces)}
        results.append(entry)
        if not as_json:
            typer.echo(f"{path}: {len(faces)} face(s)")
            for line in render(entry):
                typer.echo(line)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    raise typer.Exit(EXIT_BAD_INPUT if failed else EXIT_OK)


@cli.command()
def detect(
    images: Annotated[list[Path], typer.Argument(help="Image files to analyse.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one document).")] = False,
    detector: Annotated[str, typer.Option(help="hog, mtcnn or auto.")] = "auto",
    upsample: Annotated[int, typer.Option(help="HOG upsampling steps (small faces).")] = 0,
    max_faces: Annotated[int, typer.Option(help="At most this many faces per image.")] = 20,
    landmarks: Annotated[bool, typer.Option(help="Also predict 68 landmarks.")] = True,
) -> None:
    """Detect faces (largest first) and print boxes, scores and landmarks."""
    analyzer = _make_analyzer(
        detector=detector,
        hog_upsample=upsample,
        max_faces=max_faces,
        stages=("landmarks",) if landmarks else (),
    )

    def to_entry(faces: list[Face]) -> dict[str, Any]:
        dicts = [f.to_dict() for f in faces]
        for d in dicts:
            d.pop("embedding", None)
        return {"faces": dicts}

    def render(entry: dict[str, Any]) -> list[str]:
        return [_fmt_face(i, f) for i, f in enumerate(entry["faces"])]

    _run_images(analyzer, images, as_json, to_entry, render)


@cli.command()
def score(
    images: Annotated[list[Path], typer.Argument(help="Image files to score.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one document).")] = False,
    detector: Annotated[str, typer.Option(help="hog, mtcnn or auto.")] = "auto",
    model: Annotated[str, typer.Option(help="Attractiveness model (manifest name).")] = (
        "attractiveness_scut"
    ),
) -> None:
    """Attractiveness of every face, 1 (low) to 5 (high) on SCUT-FBP5500's scale."""
    analyzer = _make_analyzer(
        detector=detector, stages=("attractiveness",), attractiveness_model=model
    )

    def to_entry(faces: list[Face]) -> dict[str, Any]:
        return {
            "model": model,
            "faces": [
                {"box": list(f.box.as_tuple()), "score": f.predictions["attractiveness"]}
                for f in faces
            ],
        }

    def render(entry: dict[str, Any]) -> list[str]:
        lines = []
        for i, f in enumerate(entry["faces"]):
            x1, y1, x2, y2 = f["box"]
            lines.append(
                f"  face {i}: score={f['score']:.2f} box=({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f})"
            )
        return lines

    _run_images(analyzer, images, as_json, to_entry, render)


train_cli = typer.Typer(help="Train and ship models from labelled data.", no_args_is_help=True)
cli.add_typer(train_cli, name="train")


@train_cli.command("attractiveness")
def train_attractiveness(
    data: Annotated[Path, typer.Option(help="Data root holding scut-fbp5500/.")] = Path(
        "../shared/data"
    ),
    out: Annotated[Path, typer.Option(help="Output prefix, e.g. models/attractiveness_scut.")] = (
        Path("models/attractiveness_scut")
    ),
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (folds, learners).")] = 0,
) -> None:
    """5-fold CV of every feature set x learner and fusion, then fit and ship the best fusion."""
    from facecore.attractiveness.train import main as train_main

    if not (data / "scut-fbp5500").is_dir():
        _err(f"{data / 'scut-fbp5500'} not found; pass --data DIR")
        raise typer.Exit(EXIT_USAGE)
    try:
        train_main(data, out, folds=folds, seed=seed, progress=True, report=typer.echo)
    except ModelFileError as e:
        _err(str(e))
        raise typer.Exit(EXIT_MODEL) from None
    except (ValueError, OSError) as e:  # missing or malformed label files, unwritable --out
        _err(str(e))
        raise typer.Exit(EXIT_USAGE) from None


@cli.command()
def batch(
    inputs: Annotated[
        list[Path], typer.Argument(help="Image files, folders (recursive) or CSV lists of paths.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write/resume.")],
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    detector: Annotated[str, typer.Option(help="hog, mtcnn or auto.")] = "auto",
    max_faces: Annotated[int, typer.Option(help="At most this many faces per image.")] = 20,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Analyse many images into one CSV: a row per face, or a row saying why there is none.

    Rerunning with the same --output resumes: finished images are skipped and kept.
    """
    from facecore.analyzer import AnalyzerConfig, default_stages
    from facecore.batch import run_batch

    if workers < 1:
        _err("--workers must be at least 1")
        raise typer.Exit(EXIT_USAGE)
    try:
        config = AnalyzerConfig(detector=detector, max_faces=max_faces, stages=default_stages())
    except ValueError as e:
        _err(str(e))
        raise typer.Exit(EXIT_USAGE) from None
    try:
        summary = run_batch(inputs, output, config=config, workers=workers, progress=progress)
    except ModelFileError as e:
        _err(str(e))
        raise typer.Exit(EXIT_MODEL) from None
    except (ValueError, OSError) as e:
        _err(str(e))
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        _err(f"interrupted; finished images are kept in {output}: rerun to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(
        f"{summary.inputs} input(s): {summary.skipped_done} already done, "
        f"{summary.processed} processed, {summary.faces} face row(s), "
        f"{summary.errors} without a face or unreadable -> {summary.output}"
    )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Start the HTTP API (see /docs once it runs)."""
    import uvicorn

    uvicorn.run("app.main:app", host=host, port=port, log_level=log_level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facecore`` script; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli(args=argv, prog_name="facecore")
    except SystemExit as e:  # click's standalone mode ends every run with SystemExit
        if e.code is None:
            return EXIT_OK
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    return EXIT_OK


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
