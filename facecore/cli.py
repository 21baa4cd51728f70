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

from facecore.beauty.cli import register as register_beautify
from facecore.errors import FacecoreError, ModelFileError
from facecore.ldl.cli import register as register_pairwise
from facecore.serialize import FaceOut
from facecore.stages import parse_model_choices, parse_stage_list
from facecore.studies.cli import register as register_study

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


def _usage(msg: str) -> typer.Exit:
    _err(msg)
    return typer.Exit(EXIT_USAGE)


def parse_models(pairs: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--model HEAD=NAME`` values -> stage options (a usage error otherwise)."""
    try:
        return parse_model_choices(pairs or ())
    except ValueError as e:
        raise _usage(f"--model: {e}") from None


def _merge_options(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for stage, opts in layer.items():
            out[stage] = {**out.get(stage, {}), **opts}
    return out


def _make_analyzer(
    *,
    detector: str = "auto",
    upsample: int = 0,
    max_faces: int = 20,
    stages: tuple[str, ...] | None = None,
    models: list[str] | None = None,
    stage_options: dict[str, dict[str, Any]] | None = None,
    threads: str = "auto",
) -> Any:
    """The analyzer of a command: ``--model`` choices merged into ``stage_options``."""
    from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
    from facecore.detect import DetectorConfig

    try:
        config = AnalyzerConfig(
            detector=DetectorConfig(name=detector, hog_upsample=upsample),  # type: ignore[arg-type]
            max_faces=max_faces,
            stages=stages,
            stage_options=_merge_options(stage_options or {}, parse_models(models)),
            threads=threads,
        )
        return FaceAnalyzer(config)
    except ModelFileError as e:
        _err(str(e))
        raise typer.Exit(EXIT_MODEL) from None
    except (ValueError, TypeError) as e:
        raise _usage(str(e)) from None


def _fmt_face(i: int, face: FaceOut) -> str:
    x1, y1, x2, y2 = face.box
    s = f"  face {i}: box=({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) detector={face.detector}"
    s += f" detector_score={face.detector_score:.3f}"
    if face.landmarks is not None:
        s += f" landmarks={len(face.landmarks)}"
    for name, p in face.predictions.items():
        s += f" {name}={p.value:.3f}"
        if p.interval is not None:
            s += f" ({p.interval[0]:g}-{p.interval[1]:g})"
    return s


def _run_images(
    analyzer: Any,
    images: list[Path],
    as_json: bool,
    to_record: Callable[[Face], FaceOut],
    stages: tuple[str, ...] | None = None,
) -> None:
    """Analyse each image, print text or one JSON document, exit 0, 1 (bad input) or 3.

    The warnings the stages put on the faces (e.g. below the quality threshold) are listed
    under ``warnings``, as in the service's responses."""
    from facecore.serialize import WarningOut

    results, failed = [], 0
    for path in images:
        try:
            faces = analyzer.analyze(path, stages=stages)
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
        records = [to_record(f) for f in faces]
        warnings = WarningOut.for_faces(faces)
        results.append(
            {
                "path": str(path),
                "faces": [r.model_dump(mode="json") for r in records],
                "warnings": [w.model_dump(mode="json") for w in warnings],
            }
        )
        if not as_json:
            typer.echo(f"{path}: {len(faces)} face(s)")
            for i, r in enumerate(records):
                typer.echo(_fmt_face(i, r))
            for w in warnings:
                typer.echo(f"  warning: {w.message}")
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    raise typer.Exit(EXIT_BAD_INPUT if failed else EXIT_OK)


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (one document).")]
DetectorOpt = Annotated[
    str, typer.Option(help="hog, mtcnn, auto, blazeface_back or blazeface_short.")
]
MaxFacesOpt = Annotated[int, typer.Option(help="At most this many faces per image.")]
ModelOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="HEAD=NAME: the model a head uses (manifest name); repeatable. "
        "E.g. --model attractiveness=attractiveness_scut",
    ),
]
ThreadsOpt = Annotated[
    str,
    typer.Option(
        help="torch threads per image: N, or auto (the thread count while the cores are free, "
        "fewer while other processes use them)."
    ),
]
StagesOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated stages (default: every default head); see `facecore stages`."
    ),
]


@cli.command()
def detect(
    images: Annotated[list[Path], typer.Argument(help="Image files to analyse.")],
    as_json: AsJson = False,
    detector: DetectorOpt = "auto",
    upsample: Annotated[int, typer.Option(help="HOG upsampling steps (small faces).")] = 0,
    max_faces: MaxFacesOpt = 20,
    landmarks: Annotated[bool, typer.Option(help="Also predict 68 landmarks.")] = True,
    threads: ThreadsOpt = "auto",
) -> None:
    """Detect faces (largest first) and print boxes, detector scores and landmarks."""
    stages = ("landmarks",) if landmarks else ()
    analyzer = _make_analyzer(
        detector=detector, upsample=upsample, max_faces=max_faces, stages=stages, threads=threads
    )
    _run_images(analyzer, images, as_json, lambda f: FaceOut.from_face(f))


@cli.command()
def analyze(
    images: Annotated[list[Path], typer.Argument(help="Image files to analyse.")],
    as_json: AsJson = False,
    stages: StagesOpt = None,
    model: ModelOpt = None,
    detector: DetectorOpt = "auto",
    max_faces: MaxFacesOpt = 20,
    descriptor: Annotated[bool, typer.Option(help="Include the 128-D descriptor.")] = False,
    quality_threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Warn about faces whose quality is below this (default: the quality "
            "model's recommended threshold).",
        ),
    ] = None,
    threads: ThreadsOpt = "auto",
) -> None:
    """Every face with every prediction of the chosen stages (as POST /v1/analyze)."""
    warn = {} if quality_threshold is None else {"quality": {"warn_below": quality_threshold}}
    analyzer = _make_analyzer(
        detector=detector,
        max_faces=max_faces,
        stages=parse_stage_list(stages),
        models=model,
        stage_options=warn,
        threads=threads,
    )
    _run_images(analyzer, images, as_json, lambda f: FaceOut.from_face(f, embedding=descriptor))


@cli.command()
def score(
    images: Annotated[list[Path], typer.Argument(help="Image files to score.")],
    as_json: AsJson = False,
    detector: DetectorOpt = "auto",
    model: Annotated[str | None, typer.Option(help="Attractiveness model (manifest name).")] = None,
    threads: ThreadsOpt = "auto",
) -> None:
    """Attractiveness of every face (default model: 1 (low) to 5 (high), SCUT-FBP5500's scale)."""
    models = [f"attractiveness={model}"] if model else None
    analyzer = _make_analyzer(
        detector=detector, stages=("attractiveness",), models=models, threads=threads
    )
    _run_images(
        analyzer,
        images,
        as_json,
        lambda f: FaceOut.from_face(f, points=False, predictions=("attractiveness",)),
    )


@cli.command("stages")
def list_stages_cmd(as_json: AsJson = False) -> None:
    """The stages the analyzer can run: what each requires, provides and takes as options."""
    from facecore.stages import list_stages

    infos = list_stages()
    if as_json:
        rows = [s.to_dict() for s in infos]
        typer.echo(json.dumps(rows, indent=2))
        return
    for s in infos:
        mark = " (default head)" if s.default else ""
        typer.echo(f"{s.name}{mark}: {s.summary}")
        typer.echo(f"  requires: {', '.join(s.requires) or '-'}")
        typer.echo(f"  provides: {', '.join(s.provides) or '-'}")
        if s.options:
            typer.echo("  options: " + ", ".join(f"{k}={v!r}" for k, v in s.options.items()))


train_cli = typer.Typer(help="Train and ship models from labelled data.", no_args_is_help=True)
cli.add_typer(train_cli, name="train")
register_pairwise(cli)
register_study(cli)
register_beautify(cli)


@train_cli.command("attractiveness")
def train_attractiveness(
    data: Annotated[Path, typer.Option(help="Data root holding scut-fbp5500/.")] = Path(
        "../shared/data"
    ),
    out: Annotated[
        Path, typer.Option(help="Output prefix, e.g. models/attractiveness_scut_classical.")
    ] = (Path("models/attractiveness_scut_classical")),
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (folds, learners).")] = 0,
) -> None:
    """5-fold CV of every feature set x learner and fusion, then fit and ship the best fusion."""
    from facecore.attractiveness.train import ClassicalRecipe
    from facecore.training.runner import train

    if not (data / "scut-fbp5500").is_dir():
        _err(f"{data / 'scut-fbp5500'} not found; pass --data DIR")
        raise typer.Exit(EXIT_USAGE)
    try:
        train(ClassicalRecipe(folds=folds, seed=seed, progress=True, report=typer.echo), data, out)
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
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="CSV file to write/resume; a .parquet name writes Parquet (its CSV journal "
            "<name>.csv beside it is what a rerun resumes from).",
        ),
    ],
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    stages: StagesOpt = None,
    model: ModelOpt = None,
    detector: DetectorOpt = "auto",
    max_faces: MaxFacesOpt = 20,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    engine: Annotated[
        str,
        typer.Option(help="local (worker processes here) or ray (actors on a Ray cluster)."),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address (auto, ray://HOST:10001); default: local Ray."),
    ] = None,
) -> None:
    """Analyse many images into one CSV: a row per face, or a row saying why there is none.

    Rerunning with the same --output resumes: finished images are skipped and kept.
    """
    from facecore.batch import run_batch

    if workers < 1:
        raise _usage("--workers must be at least 1")
    analyzer = _make_analyzer(
        detector=detector, max_faces=max_faces, stages=parse_stage_list(stages), models=model
    )
    try:
        summary = run_batch(
            inputs,
            output,
            config=analyzer.config,
            workers=workers,
            progress=progress,
            engine=engine,
            address=address,
        )
    except ModelFileError as e:
        _err(str(e))
        raise typer.Exit(EXIT_MODEL) from None
    except (ValueError, OSError) as e:
        raise _usage(str(e)) from None
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
