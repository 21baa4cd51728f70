"""``facecore study ...`` (facecore.studies.cli): bad input is a usage error (exit 2)."""

from typer.testing import CliRunner

from facecore.cli import cli


def test_cli_refuses_bad_input(tmp_path):
    r = CliRunner().invoke(cli, ["study", "age-attractiveness", "--dataset", "nope"])
    assert r.exit_code == 2 and "unknown dataset" in r.output
    r = CliRunner().invoke(cli, ["study", "age-attractiveness", "--model", "x"])
    assert r.exit_code == 2 and "DATASET=MODEL" in r.output
    r = CliRunner().invoke(
        cli, ["study", "age-attractiveness", "--data", str(tmp_path / "none"), "--limit", "1"]
    )
    assert r.exit_code == 2 and "error" in r.output
