"""facecore.studies.age_attractiveness.study: the table, the per-photo rows and their resumption."""

import csv

import numpy as np
import pytest

from facecore.studies.age_attractiveness.study import PAPER_R, correlation_row, run_study


def test_correlation_row_on_a_known_line():
    rng = np.random.default_rng(0)
    age = rng.uniform(18, 60, 500)
    score = 2.0 + 0.03 * age + rng.normal(0, 0.2, 500)
    row = correlation_row("d", "rated", "female", age, score)
    assert row.n == 500 and row.paper_r == PAPER_R["female"]
    assert row.r_low < row.r < row.r_high and row.r > 0.8
    assert row.slope == pytest.approx(0.03, abs=0.003) and row.intercept == pytest.approx(
        2, abs=0.2
    )
    flat = correlation_row("d", "rated", "all", age[:3], score[:3])  # too few: no figures
    assert np.isnan(flat.r) and flat.paper_r is None


@pytest.mark.data
def test_study_accounts_for_every_photo_and_resumes(tmp_path, data_root):
    res = run_study(
        data_root,
        tmp_path,
        datasets=("scut-fbp5500",),
        limit=6,
        models={"scut-fbp5500": "attractiveness_scut"},
    )
    assert res.accounted["scut-fbp5500"] == {"photos": 6, "rows": 6, "with_face": 6}
    assert res.plot.stat().st_size > 1000 and res.table_md.read_text().count("|") > 20
    with res.table_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["source"], r["sex"]) for r in rows} == {
        (s, x) for s in ("rated", "model:attractiveness_scut") for x in ("female", "male", "all")
    }
    faces = (tmp_path / "scut-fbp5500.faces.csv").read_text().splitlines()
    again = run_study(
        data_root,
        tmp_path,
        datasets=("scut-fbp5500",),
        limit=6,
        models={"scut-fbp5500": "attractiveness_scut"},
    )
    assert (tmp_path / "scut-fbp5500.faces.csv").read_text().splitlines() == faces
    assert [r.r for r in again.rows] == pytest.approx([r.r for r in res.rows], nan_ok=True)


@pytest.mark.data
def test_a_missing_model_is_reported_not_fatal(tmp_path, data_root):
    res = run_study(
        data_root, tmp_path, datasets=("mebeauty",), limit=4, models={"mebeauty": "no_such"}
    )
    assert res.skipped == ["mebeauty: model 'no_such' is not in the manifest"]
    assert {r.source for r in res.rows} == {"rated"}
