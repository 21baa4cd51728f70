"""facecore batch --engine ray: the local engine's rows, from a local Ray instance."""

import csv
import json
import shutil

import numpy as np
import pytest

from facecore.batch import run_batch
from facecore.cli import EXIT_USAGE, main

pytest.importorskip("ray.data")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module (Ray's start-up is most of this test's time)."""
    import os

    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, fixtures):
    d = tmp_path_factory.mktemp("imgs")
    shutil.copy(fixtures / "two_people.jpg", d / "two.jpg")
    shutil.copy(fixtures / "obama_small.jpg", d / "small.jpg")
    shutil.copy(fixtures / "dlib_dog.jpg", d / "dog.jpg")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return d


def _read(path):
    with open(path, newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: (r["path"], r["face_index"]))


#: Prediction columns, compared within a tolerance: the two runs batch different images
#: together, the trunk's float rounding depends on the batch (about 1e-6), and an int8 top
#: turns a value at a rounding edge into one quantization step (about 1e-4 of an age).
PREDICTIONS = ("attractiveness", "age", "quality")


def _assert_same_rows(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for k in g:
            name = k.removesuffix("_dist")
            if name in PREDICTIONS and g[k] and w[k]:
                a = json.loads(g[k]) if k.endswith("_dist") else [float(g[k])]
                b = json.loads(w[k]) if k.endswith("_dist") else [float(w[k])]
                np.testing.assert_allclose(a, b, atol=2e-3, err_msg=f"{w['path']} {k}")
            else:
                assert g[k] == w[k], (w["path"], k)


def test_ray_rows_equal_the_local_engines_and_resume(folder, tmp_path):
    local, on_ray = tmp_path / "local.csv", tmp_path / "ray.csv"
    run_batch([folder], local, progress=False)
    # Two images first, then the rest: the rerun on Ray resumes like the local engine.
    s1 = run_batch([folder / "two.jpg", folder / "dog.jpg"], on_ray, progress=False, engine="ray")
    s2 = run_batch([folder], on_ray, progress=False, engine="ray")
    assert (s1.processed, s2.skipped_done, s2.processed) == (2, 2, 2)
    _assert_same_rows(_read(on_ray), _read(local))
    assert len(_read(local)) == 5  # two faces + small + dog (no face) + broken


def test_unknown_engine_is_a_usage_error(folder, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["batch", str(folder), "-o", str(out), "--engine", "spark"]) == EXIT_USAGE
    assert "engine must be one of local, ray" in capsys.readouterr().err
