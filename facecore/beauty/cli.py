"""``facecore beautify`` and ``facecore average``: the beautification verbs on the command line.

:func:`register` adds both commands to the main ``facecore`` Typer app. Exit codes are those of
:mod:`facecore.cli`: 0 done; 1 an input could not be read or has no face (it is named on
stderr); 2 usage (bad option value, unsupported output extension, unwritable output); 3 a model
file is missing or corrupt.

This module implements no paper; see :mod:`facecore.beauty`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facecore.errors import FacecoreError, ModelFileError

__all__ = ["OUTPUT_FORMATS", "register", "save_image"]

# The exit codes of facecore.cli (not imported from it: that module imports this one).
EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3

#: Output file extensions and the PIL format each is written in.
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def _err(msg: str) -> None:
    typer.echo(f"facecore: error: {msg}", err=True)


def _output_format(out: Path) -> str:
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        _err(f"cannot tell the image format of {out}; use one of {', '.join(OUTPUT_FORMATS)}")
        raise typer.Exit(EXIT_USAGE)
    return fmt


def save_image(rgb, out: Path, fmt: str) -> None:
    """Write an RGB uint8 array to ``out`` in the PIL format ``fmt`` (JPEG at quality 95)."""
    from PIL import Image

    options = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(rgb).save(out, format=fmt, **options)


def _save_or_exit(rgb, out: Path, fmt: str) -> None:
    try:
        save_image(rgb, out, fmt)
    except OSError as e:
        _err(f"cannot write {out}: {e.strerror or e}")
        raise typer.Exit(EXIT_USAGE) from None


def _analyzer(detector: str, stages: tuple[str, ...]):
    from facecore.analyzer import FaceAnalyzer

    try:
        return FaceAnalyzer(detector=detector, stages=stages)
    except ModelFileError as e:
        _err(str(e))
        raise typer.Exit(EXIT_MODEL) from None
    except (ValueError, TypeError) as e:
        _err(str(e))
        raise typer.Exit(EXIT_USAGE) from None


def _fail_input(path: Path, e: Exception) -> typer.Exit:
    if isinstance(e, ModelFileError):
        _err(str(e))
        return typer.Exit(EXIT_MODEL)
    msg = f"cannot read file: {e.strerror or e}" if isinstance(e, OSError) else str(e)
    _err(f"{path}: {msg}")
    return typer.Exit(EXIT_BAD_INPUT)


def beautify_cmd(
    image: Annotated[Path, typer.Argument(help="The photo to beautify (its largest face).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    warp: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Shape strength, 0-1 (0: keep the shape).")
    ] = 0.75,
    smooth: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Skin-smoothing strength, 0-1.")
    ] = 0.5,
    detector: Annotated[str, typer.Option(help="hog, mtcnn or auto.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Beautify the largest face: warp its shape towards better-rated similar faces (SCUT-FBP5500
    references) and smooth its skin; print the attractiveness before and after."""
    from facecore.beauty.pipeline import SCORE_STAGE, beautify

    fmt = _output_format(output)
    analyzer = _analyzer(detector, (SCORE_STAGE,))
    try:
        result = beautify(image, warp=warp, smooth=smooth, analyzer=analyzer)
    except (FacecoreError, OSError) as e:
        raise _fail_input(image, e) from None
    _save_or_exit(result.image, output, fmt)
    record = {
        "path": str(image),
        "output": str(output),
        "score_before": round(result.score_before, 4),
        "score_after": None if result.score_after is None else round(result.score_after, 4),
        "landmark_shift_mean": round(result.landmark_shift_mean, 3),
        "landmark_shift_max": round(result.landmark_shift_max, 3),
        "identity_distance": None
        if result.identity_distance is None
        else round(result.identity_distance, 4),
        "box": list(result.box.as_tuple()),
        "warp": result.warp,
        "smooth": result.smooth,
        "steps": list(result.steps),
    }
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    after = "n/a" if result.score_after is None else f"{result.score_after:.3f}"
    typer.echo(f"{image}: attractiveness {result.score_before:.3f} -> {after}")
    typer.echo(
        f"  landmarks moved {result.landmark_shift_mean:.2f} px mean, "
        f"{result.landmark_shift_max:.2f} px max; "
        + (
            f"descriptor distance {result.identity_distance:.3f}; "
            if result.identity_distance is not None
            else ""
        )
        + f"written to {output}"
    )


def average_cmd(
    images: Annotated[list[Path], typer.Argument(help="Photos to average (largest face each).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the average.")],
    size: Annotated[int, typer.Option(min=32, max=2048, help="Side of the output, px.")] = 300,
    detector: Annotated[str, typer.Option(help="hog, mtcnn or auto.")] = "auto",
) -> None:
    """The average face of the photos: each warped onto the mean shape, then the pixel mean."""
    from facecore.beauty.average import average_of_aligned

    fmt = _output_format(output)
    analyzer = _analyzer(detector, ("landmarks",))
    rgbs, marks = [], []
    for path in images:
        try:
            rgb, faces = analyzer.analyze_image(path, stages=("landmarks",))
        except (FacecoreError, OSError) as e:
            raise _fail_input(path, e) from None
        if not faces:
            _err(f"{path}: no face found")
            raise typer.Exit(EXIT_BAD_INPUT)
        rgbs.append(rgb)
        marks.append(faces[0].landmarks)
    _save_or_exit(average_of_aligned(rgbs, marks, size), output, fmt)
    typer.echo(f"average of {len(images)} face(s) written to {output}")


def register(cli: typer.Typer) -> None:
    """Add ``beautify`` and ``average`` to the ``facecore`` command line."""
    cli.command("beautify")(beautify_cmd)
    cli.command("average")(average_cmd)
