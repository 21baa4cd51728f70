"""facecore.beauty.cli: ``facecore beautify`` and ``facecore average``."""

import json

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from facecore import cli as main_cli
from facecore.beauty import cli as bcli
from facecore.beauty import shape
from facecore.errors import ModelNotFoundError


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    bcli.register(app)
    return app


def run(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_exit_codes_are_the_main_clis():
    assert (bcli.EXIT_OK, bcli.EXIT_BAD_INPUT, bcli.EXIT_USAGE, bcli.EXIT_MODEL) == (
        main_cli.EXIT_OK,
        main_cli.EXIT_BAD_INPUT,
        main_cli.EXIT_USAGE,
        main_cli.EXIT_MODEL,
    )


def test_register_adds_both_commands(app):
    names = sorted(c.name for c in app.registered_commands)
    assert names == ["average", "beautify"]


def test_beautify_writes_the_image_and_prints_the_scores(app, tmp_path, one_face_photo):
    out = tmp_path / "out.png"
    r = run(app, "beautify", one_face_photo, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    record = json.loads(r.output)
    assert record["score_before"] == pytest.approx(2.778, abs=0.01)
    assert record["score_after"] == pytest.approx(2.924, abs=0.01)
    assert record["warp"] == 0.75 and record["smooth"] == 0.5
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (910, 1137)


def test_beautify_text_output(app, tmp_path, one_face_photo):
    out = tmp_path / "out.jpg"
    r = run(app, "beautify", one_face_photo, "-o", out, "--warp", "0", "--smooth", "0")
    assert r.exit_code == 0, r.output
    assert "attractiveness 2.778 -> 2.778" in r.output and f"written to {out}" in r.output
    with Image.open(out) as im:
        assert im.format == "JPEG"


@pytest.mark.parametrize(
    "args, code",
    [
        (["--warp", "1.5"], 2),
        (["--smooth", "-1"], 2),
    ],
)
def test_beautify_usage_errors(app, tmp_path, one_face_photo, args, code):
    r = run(app, "beautify", one_face_photo, "-o", tmp_path / "o.png", *args)
    assert r.exit_code == code, r.output


def test_beautify_bad_output_extension(app, tmp_path, one_face_photo):
    r = run(app, "beautify", one_face_photo, "-o", tmp_path / "o.txt")
    assert r.exit_code == 2
    assert "cannot tell the image format" in r.output


def test_beautify_bad_inputs(app, tmp_path, no_face_photo):
    r = run(app, "beautify", tmp_path / "missing.jpg", "-o", tmp_path / "o.png")
    assert r.exit_code == 1 and "cannot read file" in r.output
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    assert run(app, "beautify", text, "-o", tmp_path / "o.png").exit_code == 1
    r = run(app, "beautify", no_face_photo, "-o", tmp_path / "o.png")
    assert r.exit_code == 1 and "no face" in r.output
    assert not (tmp_path / "o.png").exists()


def test_beautify_missing_model_exits_3(app, tmp_path, one_face_photo, monkeypatch):
    def missing(name, *args, **kwargs):
        raise ModelNotFoundError(f"model file {name}.npz is missing")

    monkeypatch.setattr(shape, "load", missing)  # the router, as the reference set asks it
    r = run(app, "beautify", one_face_photo, "-o", tmp_path / "o.png")
    assert r.exit_code == 3 and "beauty_reference_scut.npz" in r.output


def test_average(app, tmp_path, one_face_photo, fixtures, no_face_photo):
    out = tmp_path / "avg.png"
    r = run(app, "average", one_face_photo, fixtures / "biden.jpg", "-o", out, "--size", "128")
    assert r.exit_code == 0, r.output
    assert "average of 2 face(s)" in r.output
    assert np.asarray(Image.open(out)).shape == (128, 128, 3)
    r = run(app, "average", one_face_photo, no_face_photo, "-o", out)
    assert r.exit_code == 1 and f"{no_face_photo}: no face found" in r.output
    assert run(app, "average", one_face_photo, "-o", out, "--size", "8").exit_code == 2
