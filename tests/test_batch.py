import csv
import json
import shutil

import pytest

from facecore.analyzer import AnalyzerConfig
from facecore.batch import expand_inputs, run_batch
from facecore.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main

CONFIG = AnalyzerConfig(stages=("landmarks",))


@pytest.fixture
def folder(tmp_path, fixtures):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    shutil.copy(fixtures / "two_people.jpg", d / "two.jpg")
    shutil.copy(fixtures / "obama_small.jpg", d / "sub" / "small.JPG")
    shutil.copy(fixtures / "dlib_dog.jpg", d / "dog.jpg")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (d / "notes.txt").write_text("not listed: wrong suffix inside a folder")
    return d


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_expand_inputs(folder, tmp_path):
    lst = tmp_path / "list.csv"
    lst.write_text("path\nimgs/two.jpg\nimgs/missing.jpg\n")
    paths = expand_inputs([folder, lst, folder / "two.jpg"])
    names = [p.split("/")[-1] for p in paths]
    assert names == ["broken.png", "dog.jpg", "small.JPG", "two.jpg", "missing.jpg"]


def test_every_input_gets_rows(folder, tmp_path):
    out = tmp_path / "out.csv"
    s = run_batch([folder, tmp_path / "nope.jpg"], out, config=CONFIG, progress=False)
    rows = _read(out)
    by = {}
    for r in rows:
        by.setdefault(r["path"].split("/")[-1], []).append(r)
    assert set(by) == {"two.jpg", "small.JPG", "dog.jpg", "broken.png", "nope.jpg"}
    assert len(by["two.jpg"]) == 2 and all(r["error"] == "" for r in by["two.jpg"])
    assert by["dog.jpg"][0]["error"].startswith("no_face")
    assert by["broken.png"][0]["error"].startswith("undecodable_image")
    assert by["nope.jpg"][0]["error"].startswith("file_not_found")
    assert (s.inputs, s.processed, s.faces, s.errors) == (5, 5, 3, 3)


def test_resume_skips_done_and_repairs_an_interrupted_file(folder, tmp_path):
    out = tmp_path / "out.csv"
    run_batch([folder], out, config=CONFIG, progress=False)
    full = _read(out)
    text = out.read_text()
    lines = text.splitlines(keepends=True)
    two = [i for i, line in enumerate(lines) if "two.jpg" in line]
    assert len(two) == 2
    # simulate a crash in the middle of writing two.jpg's second row, after other images
    cut = "".join(lines[: two[1]]) + lines[two[1]][:10]
    out.write_text(cut)
    s = run_batch([folder], out, config=CONFIG, progress=False)
    assert s.processed == 1  # only two.jpg again
    again = _read(out)
    key = lambda r: (r["path"], r["face_index"])  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, full))
    # a third run does nothing and loses nothing
    s = run_batch([folder], out, config=CONFIG, progress=False)
    assert s.processed == 0 and len(_read(out)) == len(full)


def test_workers_give_the_same_rows(folder, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    run_batch([folder], a, config=CONFIG, progress=False)
    run_batch([folder], b, config=CONFIG, workers=2, progress=False)
    key = lambda r: (r["path"], r["face_index"])  # noqa: E731
    assert sorted(_read(a), key=key) == sorted(_read(b), key=key)


def test_cli_batch(folder, tmp_path, capsys):
    out = tmp_path / "cli.csv"
    assert main(["batch", str(folder), "--output", str(out), "--no-progress"]) == EXIT_OK
    assert "4 input(s)" in capsys.readouterr().out
    assert main(["batch", str(folder), "--output", str(out), "--workers", "0"]) == EXIT_USAGE


def _ctrl_c_on_the_third_image(monkeypatch) -> list[str]:
    """Make the batch raise KeyboardInterrupt as it turns its third image into rows; returns
    the paths seen so far (a list that grows)."""
    import facecore.batch

    real, seen = facecore.batch.rows_for, []

    def stop(path, result):
        seen.append(path)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(path, result)

    monkeypatch.setattr(facecore.batch, "rows_for", stop)
    return seen


def test_ctrl_c_exits_130_keeps_finished_images_and_a_rerun_resumes(
    folder, tmp_path, monkeypatch, capsys
):
    import facecore.batch

    real = facecore.batch.rows_for
    seen = _ctrl_c_on_the_third_image(monkeypatch)
    out = tmp_path / "ctrl_c.csv"
    args = ["batch", str(folder), "--output", str(out), "--no-progress", "--stages", "landmarks"]
    assert EXIT_INTERRUPTED == 130
    assert main(args) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert f"interrupted; finished images are kept in {out}: rerun to resume" in err
    assert "Traceback" not in err
    kept = _read(out)
    assert sorted({r["path"] for r in kept}) == sorted(seen[:2])  # the two finished images

    monkeypatch.setattr(facecore.batch, "rows_for", real)
    assert main(args) == EXIT_OK
    assert "4 input(s): 2 already done, 2 processed" in capsys.readouterr().out
    rows = _read(out)
    keys = [(r["path"], r["face_index"]) for r in rows]
    assert len(keys) == len(set(keys))  # no duplicates
    assert rows[: len(kept)] == kept  # finished rows kept as they were
    per_image = {}
    for r in rows:
        per_image[r["path"].split("/")[-1]] = per_image.get(r["path"].split("/")[-1], 0) + 1
    assert per_image == {"broken.png": 1, "dog.jpg": 1, "small.JPG": 1, "two.jpg": 2}


def test_mismatched_existing_output_is_refused(folder, tmp_path, capsys):
    out = tmp_path / "other.csv"
    out.write_text("a,b\n1,2\n")
    assert main(["batch", str(folder), "--output", str(out), "--no-progress"]) == EXIT_USAGE
    assert "columns" in capsys.readouterr().err
    assert out.read_text() == "a,b\n1,2\n"


def test_default_batch_has_the_default_heads_columns(folder, tmp_path, golden_scores):
    out = tmp_path / "scores.csv"
    run_batch([folder / "two.jpg", folder / "dog.jpg"], out, progress=False)
    rows = _read(out)
    cols = ["attractiveness", "attractiveness_dist", "age", "age_dist", "quality", "error"]
    assert list(rows[0])[-6:] == cols
    assert "detector_score" in rows[0]
    faces = [r for r in rows if not r["error"]]
    for r in faces:  # the age head's distribution over 0..100 years, as JSON
        dist = json.loads(r["age_dist"])
        assert len(dist) == 101 and abs(sum(dist) - 1) < 1e-3 and 0 < float(r["age"]) < 100
        assert 0.0 <= float(r["quality"]) <= 1.0
    # the golden values of the shipped model on two_people.jpg (tests/fixtures/golden_scores.json)
    want = golden_scores["two_people.jpg"]
    assert [float(r["attractiveness"]) for r in faces] == pytest.approx(want, abs=1e-3)
    assert [r["attractiveness"] for r in rows if r["error"]] == [""]


def test_batch_rows_equal_the_library_and_the_cli(folder, tmp_path, capsys):
    import json

    import facecore

    photo = folder / "two.jpg"
    out = tmp_path / "same.csv"
    assert main(["batch", str(photo), "-o", str(out), "--no-progress"]) == EXIT_OK
    capsys.readouterr()
    rows = _read(out)
    lib = facecore.analyze(photo)
    assert main(["analyze", "--json", str(photo)]) == EXIT_OK
    (cli,) = json.loads(capsys.readouterr().out)
    for row, face, rec in zip(rows, lib, cli["faces"], strict=True):
        value = face.predictions["attractiveness"].value
        assert float(row["attractiveness"]) == pytest.approx(value, abs=5e-5)
        assert rec["predictions"]["attractiveness"]["value"] == pytest.approx(value, abs=1e-9)
        assert float(row["x1"]) == pytest.approx(face.box.x1, abs=5e-5)


def test_batch_model_option_and_its_errors(folder, tmp_path, capsys):
    out = tmp_path / "m.csv"
    args = ["batch", str(folder / "two.jpg"), "-o", str(out), "--no-progress"]
    assert main([*args, "--model", "attractiveness=attractiveness_scut"]) == EXIT_OK
    assert len(_read(out)) == 2
    assert main([*args, "--model", "attractiveness=nope"]) == EXIT_USAGE
    assert "no attractiveness model named 'nope'" in capsys.readouterr().err
    assert main([*args, "--model", "nonsense"]) == EXIT_USAGE
    assert "HEAD=NAME" in capsys.readouterr().err
    assert main([*args, "--stages", "landmarks,gender"]) == EXIT_USAGE
    assert "unknown stage 'gender'" in capsys.readouterr().err


# -- Parquet ------------------------------------------------------------------------------------
def test_parquet_output_has_the_csv_rows_typed(folder, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    ref = tmp_path / "ref.csv"
    run_batch([folder], ref, config=CONFIG, progress=False)
    out = tmp_path / "out.parquet"
    s = run_batch([folder], out, config=CONFIG, progress=False)
    assert s.output == out and s.processed == 4
    table = pq.read_table(out)
    assert table.column_names == list(_read(ref)[0])
    assert str(table.schema.field("face_index").type) == "int64"
    assert str(table.schema.field("x1").type) == "double"
    assert str(table.schema.field("error").type) == "string"
    rows = table.to_pylist()
    key = lambda r: (r["path"], str(r["face_index"]))  # noqa: E731
    want = sorted(_read(ref), key=key)
    got = sorted(rows, key=key)
    assert len(got) == len(want) == 5
    for g, w in zip(got, want, strict=True):
        assert g["path"] == w["path"] and g["n_faces"] == int(w["n_faces"])
        assert (g["error"] or "") == w["error"]
        assert (g["x1"] is None) == (w["x1"] == "") and (
            g["x1"] is None or g["x1"] == float(w["x1"])
        )


def test_parquet_resumes_and_rebuilds_a_lost_journal(folder, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from facecore.batch import journal_path

    out = tmp_path / "out.parquet"
    run_batch([folder / "two.jpg", folder / "dog.jpg"], out, config=CONFIG, progress=False)
    assert pq.read_table(out).num_rows == 3 and journal_path(out).is_file()
    # the journal is lost: the rerun rebuilds it from the Parquet file and adds only new images
    journal_path(out).unlink()
    s = run_batch([folder], out, config=CONFIG, progress=False)
    assert (s.skipped_done, s.processed) == (2, 2)
    rows = pq.read_table(out).to_pylist()
    keys = [(r["path"], r["face_index"]) for r in rows]
    assert len(rows) == 5 and len(set(keys)) == 5


def test_parquet_is_written_when_interrupted(folder, tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    seen = _ctrl_c_on_the_third_image(monkeypatch)
    out = tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):
        run_batch([folder], out, config=CONFIG, progress=False)
    assert sorted({r["path"] for r in pq.read_table(out).to_pylist()}) == sorted(seen[:2])
