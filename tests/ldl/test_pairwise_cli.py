import csv

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from facecore.ldl import pairwise_to_distribution
from facecore.ldl.cli import ComparisonFileError, read_comparisons, register


@pytest.fixture()
def app():
    cli = typer.Typer()
    register(cli)
    return cli


@pytest.fixture()
def runner():
    return CliRunner()


def _write(tmp_path, text, name="pairs.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _rows(path):
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


CHAIN = "winner,loser\nb,a\nc,b\nd,c\nb,a\nc,b\nd,c\n"


def test_fit_writes_item_mean_and_distribution(app, runner, tmp_path):
    src = _write(tmp_path, CHAIN)
    out = tmp_path / "out.csv"
    res = runner.invoke(app, ["pairwise", "fit", str(src), "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "4 items, 6 comparisons, 5 bins" in res.stdout
    rows = _rows(out)
    assert rows[0] == ["item", "mean", "p1", "p2", "p3", "p4", "p5"]
    assert [r[0] for r in rows[1:]] == ["b", "a", "c", "d"]  # order of first appearance
    table = {r[0]: np.array(r[1:], dtype=float) for r in rows[1:]}
    means = [table[k][0] for k in "abcd"]
    assert np.all(np.diff(means) > 0)
    for v in table.values():
        assert v[1:].sum() == pytest.approx(1.0, abs=1e-5)
        assert v[0] == pytest.approx(v[1:] @ np.arange(1, 6), abs=1e-5)
    # the same numbers as the library
    d, info = pairwise_to_distribution([0, 2, 3] * 2, [1, 0, 2] * 2, 4)
    np.testing.assert_allclose(table["b"][1:], d[0], atol=1e-6)
    np.testing.assert_allclose(table["d"][0], info["means"][3], atol=1e-6)


def test_bins_lambda_and_weights(app, runner, tmp_path):
    src = _write(tmp_path, " Winner , LOSER ,weight,note\nx,y,2,hi\ny,z,0.5,\nx,z,1e0,\n")
    out = tmp_path / "out.csv"
    args = ["pairwise", "fit", str(src), "-o", str(out), "--bins", "3", "--lambda", "0.5"]
    res = runner.invoke(app, [*args, "--alpha", "0.2"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert rows[0] == ["item", "mean", "p1", "p2", "p3"]
    d, _ = pairwise_to_distribution(
        [0, 1, 0], [1, 2, 2], 3, bins=3, lam=0.5, alpha=0.2, weights=[2, 0.5, 1]
    )
    np.testing.assert_allclose(np.array([r[2:] for r in rows[1:]], dtype=float), d, atol=1e-6)


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("winner,other\na,b\n", "line 1: missing column(s) ['loser']"),
        ("winner,loser\n", "no comparisons"),
        ("winner,loser\na,b\nc,c\n", "line 3: self-comparison"),
        ("winner,loser,weight\na,b,1\nb,c,heavy\n", "line 3: weight 'heavy' is not a number"),
        ("winner,loser,weight\na,b,\n", "line 2: weight '' is not a number"),
        ("winner,loser,weight\na,b,-1\n", "line 2: weight '-1' must be finite and >= 0"),
        ("winner,loser,weight\na,b,nan\n", "line 2: weight 'nan' must be finite"),
        ("winner,loser,weight\na,b,0\n", "every weight is 0"),
        ("winner,loser\na,b\n\nb\n", "line 4: expected 2 fields, got 1"),
        ("winner,loser\na, \n", "line 2: empty loser"),
        ("winner,loser\na,b\nc,d\nd,e\n", "have no position relative to the others"),
    ],
)
def test_bad_input_exits_2_naming_the_line(app, runner, tmp_path, text, message):
    src = _write(tmp_path, text)
    out = tmp_path / "out.csv"
    res = runner.invoke(app, ["pairwise", "fit", str(src), "--output", str(out)])
    assert res.exit_code == 2
    assert message in res.stderr
    assert str(src) in res.stderr
    assert not out.exists()


def test_disconnected_groups_name_the_items(app, runner, tmp_path):
    src = _write(tmp_path, "winner,loser\na,b\nb,c\nd,e\n")
    res = runner.invoke(app, ["pairwise", "fit", str(src), "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert "2 of 5 items" in res.stderr and "['d', 'e']" in res.stderr


def test_missing_file_and_unwritable_output(app, runner, tmp_path):
    res = runner.invoke(app, ["pairwise", "fit", str(tmp_path / "nope.csv"), "-o", "x.csv"])
    assert res.exit_code == 2 and "cannot read" in res.stderr
    src = _write(tmp_path, CHAIN)
    res = runner.invoke(app, ["pairwise", "fit", str(src), "-o", str(tmp_path / "no" / "o.csv")])
    assert res.exit_code == 2 and "cannot write" in res.stderr


def test_usage_errors(app, runner, tmp_path):
    src = _write(tmp_path, CHAIN)
    res = runner.invoke(app, ["pairwise", "fit", str(src)])  # --output is required
    assert res.exit_code == 2
    res = runner.invoke(app, ["pairwise", "fit", str(src), "-o", "o.csv", "--bins", "1"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["pairwise", "fit", str(src), "-o", "o.csv", "--lambda", "-1"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["pairwise", "--help"])
    assert res.exit_code == 0 and "fit" in res.stdout


def test_defaults_agree_with_the_library_and_the_import_is_light():
    import subprocess
    import sys

    from facecore.ldl import cli, pairwise

    assert (cli.DEFAULT_LAMBDA, cli.DEFAULT_ALPHA) == (
        pairwise.DEFAULT_LAMBDA,
        pairwise.DEFAULT_ALPHA,
    )
    code = "import sys, facecore.ldl.cli; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_read_comparisons(tmp_path):
    data = read_comparisons(_write(tmp_path, "\ufeffloser,winner\nb,a\nc,a\n"))
    assert data.items == ("a", "b", "c")
    np.testing.assert_array_equal(data.winners, [0, 0])
    np.testing.assert_array_equal(data.losers, [1, 2])
    np.testing.assert_array_equal(data.weights, [1.0, 1.0])
    with pytest.raises(ComparisonFileError, match="line 2"):
        read_comparisons(_write(tmp_path, "winner,loser\na,a\n"))
    assert issubclass(ComparisonFileError, ValueError)
