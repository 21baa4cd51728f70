import json
import re
import subprocess
import sys

import pytest

from facecore.cli import EXIT_BAD_INPUT, EXIT_MODEL, EXIT_OK, EXIT_USAGE, main


def test_detect_json(two_face_photo, capsys):
    assert main(["detect", str(two_face_photo), "--json"]) == EXIT_OK
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["path"] == str(two_face_photo)
    assert len(entry["faces"]) == 2
    assert all(len(f["landmarks"]) == 68 for f in entry["faces"])


def test_detect_text_and_no_face(one_face_photo, no_face_photo, capsys):
    assert main(["detect", str(one_face_photo), str(no_face_photo)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 face(s)" in out and "0 face(s)" in out and "box=(366.0, 136.0, 625.0, 395.0)" in out


def test_bad_images_exit_1_and_the_rest_still_run(tmp_path, one_face_photo, png_bomb, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("just text")
    html = tmp_path / "page.jpg"
    html.write_text("<html><body>hi</body></html>")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(one_face_photo.read_bytes()[:5000])
    missing = tmp_path / "missing.jpg"
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb)
    args = [str(p) for p in (text, html, empty, trunc, missing, bomb, one_face_photo)]
    assert main(["detect", "--json", *args]) == EXIT_BAD_INPUT
    cap = capsys.readouterr()
    results = json.loads(cap.out)
    assert [("error" in r) for r in results] == [True] * 6 + [False]
    assert results[5]["error"]["code"] == "image_too_large"
    assert len(results[-1]["faces"]) == 1
    for p in args[:6]:
        assert f"facecore: error: {p}:" in cap.err
    assert "Traceback" not in cap.err


def test_usage_errors(capsys):
    assert main(["detect"]) == EXIT_USAGE
    assert main(["detect", "--detector", "haar", "x.jpg"]) == EXIT_USAGE
    assert main(["frobnicate"]) == EXIT_USAGE


def test_missing_models_exit_3(tmp_path, one_face_photo, monkeypatch, capsys):
    (tmp_path / "manifest.json").write_text('{"models": []}')
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    assert main(["detect", str(one_face_photo)]) == EXIT_MODEL
    assert "not in the manifest" in capsys.readouterr().err


@pytest.mark.parametrize("args,code", [(["--help"], 0), (["detect", "/no/such.jpg"], 1)])
def test_console_script(args, code):
    r = subprocess.run(
        [sys.executable, "-m", "facecore.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr


def test_score_json(two_face_photo, no_face_photo, golden_scores, capsys):
    assert main(["score", "--json", str(two_face_photo), str(no_face_photo)]) == EXIT_OK
    two, none = json.loads(capsys.readouterr().out)
    assert len(two["faces"]) == 2 and none["faces"] == []
    preds = [f["predictions"]["attractiveness"] for f in two["faces"]]
    assert [p["value"] for p in preds] == pytest.approx(golden_scores["two_people.jpg"], abs=1e-3)
    assert {p["model"] for p in preds} == {"attractiveness_scut"}
    assert all(f["landmarks"] is None for f in two["faces"])


def test_score_unknown_model_is_a_usage_error(one_face_photo, capsys):
    assert main(["score", "--model", "nope", str(one_face_photo)]) == EXIT_USAGE
    assert "no attractiveness model named 'nope'" in capsys.readouterr().err


def test_analyze_text_and_json_agree(one_face_photo, golden_scores, capsys):
    (golden,) = golden_scores["obama.jpg"]
    assert main(["analyze", str(one_face_photo)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "1 face(s)" in text and "landmarks=68" in text
    printed = float(re.search(r"attractiveness=(\d\.\d{3})", text).group(1))
    assert printed == pytest.approx(golden, abs=1e-3 + 5e-4)  # and the printed rounding
    assert main(["analyze", "--json", "--descriptor", str(one_face_photo)]) == EXIT_OK
    ((face,),) = [e["faces"] for e in json.loads(capsys.readouterr().out)]
    assert face["predictions"]["attractiveness"]["value"] == pytest.approx(golden, abs=1e-3)
    assert len(face["embedding"]) == 128 and len(face["landmarks"]) == 68
    assert face["box"] == [366.0, 136.0, 625.0, 395.0]


def test_analyze_stages_option(one_face_photo, capsys):
    assert main(["analyze", "--json", "--stages", "landmarks", str(one_face_photo)]) == EXIT_OK
    ((face,),) = [e["faces"] for e in json.loads(capsys.readouterr().out)]
    assert face["predictions"] == {} and len(face["landmarks"]) == 68
    assert main(["analyze", "--stages", "gender", str(one_face_photo)]) == EXIT_USAGE
    assert "unknown stage 'gender'" in capsys.readouterr().err


def test_threads_option(one_face_photo, monkeypatch, capsys):
    import contextlib

    import facecore.analyzer

    used = []

    @contextlib.contextmanager
    def record(setting):
        used.append(setting)
        yield

    monkeypatch.setattr(facecore.analyzer, "call_threads", record)
    args = ["--stages", "landmarks", str(one_face_photo)]
    assert main(["analyze", "--threads", "1", *args]) == EXIT_OK
    assert main(["analyze", *args]) == EXIT_OK
    assert used == [1, "auto"]
    assert main(["analyze", "--threads", "0", *args]) == EXIT_USAGE
    assert "threads must be 'auto' or a positive integer" in capsys.readouterr().err


def test_analyze_lists_the_warnings_the_quality_stage_made(one_face_photo, capsys):
    """``--quality-threshold`` is the quality stage's threshold; the warnings are the ones it
    put on the faces (the sharp photo is above the model's own threshold)."""
    assert main(["analyze", "--json", str(one_face_photo)]) == EXIT_OK
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["warnings"] == []
    quality = entry["faces"][0]["predictions"]["quality"]["value"]
    args = ["analyze", "--json", "--quality-threshold", "0.999", str(one_face_photo)]
    assert main(args) == EXIT_OK
    ((warning,),) = [e["warnings"] for e in json.loads(capsys.readouterr().out)]
    assert warning == {
        "face": 0,
        "code": "low_quality",
        "quality": round(quality, 4),
        "threshold": 0.999,
        "message": warning["message"],
    }
    assert warning["message"].startswith(f"face 0: image quality {quality:.2f} is below 1.00 (")
    assert main(["analyze", "--quality-threshold", "0.999", str(one_face_photo)]) == EXIT_OK
    assert "  warning: face 0: image quality" in capsys.readouterr().out


def test_stages_lists_the_registry(capsys):
    assert main(["stages", "--json"]) == EXIT_OK
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["attractiveness"]["requires"] == ["landmarks", "trunk"]
    assert rows["attractiveness"]["default"] is True
    assert main(["stages"]) == EXIT_OK
    assert "attractiveness (default head)" in capsys.readouterr().out
