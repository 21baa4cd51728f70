"""A new head end to end: its recipe (tests/training/demo_recipe_train.py, the head's whole
training) is trained by the runner on a few UTKFace photos and published into a temporary
models folder; its stage, registered here, then runs through the analyzer, the service and the
batch runner without any edit to them. It proves the seams; the head is never shipped."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facecore import model_store, stages
from facecore.heads.base import ModelHead

sys.path.insert(0, str(Path(__file__).parent))
from demo_recipe_train import BINS, DemoAgeRecipe  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")


class DemoAgeStage(ModelHead):
    """The head that serves the demo model (what a head's serving module holds)."""

    name = "demo_age"
    task = "demo_age"
    unit = "years"
    default_model = "demo_age"
    requires = ("trunk",)
    prediction_names = ("demo_age",)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, data_root):
    """The models folder (the bundled models and the demo head's), the published run."""
    from facecore.training.runner import train

    tmp = tmp_path_factory.mktemp("demo")
    bundled = model_store.models_dir()
    models = tmp / "models"
    models.mkdir()
    for f in bundled.iterdir():
        if f.name == "manifest.json":
            (models / f.name).write_bytes(f.read_bytes())
        elif f.is_file():
            os.symlink(f, models / f.name)
    recipe = DemoAgeRecipe(work_dir=tmp / "work")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the module fixture is set up before the per-test thread fixture
    torch.manual_seed(0)  # the tops' new output layers draw from torch's global generator
    published = train(recipe, data_root, models / "demo_age")
    torch.set_num_threads(threads)
    model_store.set_models_dir(models)
    stages.register_stage(DemoAgeStage)
    yield models, published
    stages._STAGES.pop("demo_age", None)
    model_store.set_models_dir(None)


def test_the_recipe_is_one_small_file():
    lines = (Path(__file__).parent / "demo_recipe_train.py").read_text().splitlines()
    assert len(lines) <= 150


def test_the_runner_and_publisher_write_every_artefact(demo):
    models, published = demo
    cv = json.loads(published.cv_path.read_text())
    assert [r["name"] for r in cv["rows"]] == ["average", "top", "top + correction"]
    assert cv["chosen"] in ("top", "top + correction") and cv["n_photos"] == 24
    # Three epochs on 16 photos per fold: the top is barely better than the average
    # distribution (measured: 23.80, 25.10 and 25.82 against 27.33 years; the correction, fitted on
    # 16 out-of-fold predictions, overfits: 28.46). The rule ships the lower of the two tops.
    # The top's new output layer draws from torch's global generator, seeded above, but how
    # many draws came before depends on what the session loaded already: hence the range.
    mae = {k: v["mae"] for k, v in cv["learners"].items()}
    assert mae["average"] == pytest.approx(27.33, abs=0.01)
    assert 23.0 < mae["top"] < 26.5  # below the average distribution's 27.33
    assert cv["chosen"] == min(("top", "top + correction"), key=mae.get)
    spec = model_store.get_spec("demo_age", models)
    assert spec.sha256 == model_store.sha256_file(published.model_path)
    card = published.card_path.read_text()
    assert "demo_age.scatter.png" in card and "non-commercial" in card
    assert (models / "demo_age.scatter.png").is_file()


def test_the_head_runs_in_the_analyzer(demo, fixtures):
    from facecore.analyzer import FaceAnalyzer
    from facecore.io import load_image

    image = load_image(fixtures / "obama_small.jpg")
    faces = FaceAnalyzer(stages=("demo_age",)).analyze(image)
    pred = faces[0].predictions["demo_age"]
    assert pred.bins == BINS and abs(float(np.sum(pred.probabilities)) - 1.0) < 1e-4
    assert 0.0 <= pred.value <= 100.0
    assert "demo_age" in [s.name for s in stages.list_stages()]


def test_the_head_runs_in_the_service(demo, fixtures):
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.main import create_app

    settings = Settings(worker_mode="thread", workers=1, preload=False)
    with TestClient(create_app(settings)) as client:
        body = (fixtures / "obama_small.jpg").read_bytes()
        r = client.post("/v1/analyze?stages=demo_age", files={"file": ("a.jpg", body)})
        assert r.status_code == 200, r.text
        (face,) = r.json()["faces"]
        assert 0.0 <= face["predictions"]["demo_age"]["value"] <= 100.0
        assert "demo_age" in [s["name"] for s in client.get("/v1/stages").json()]


def test_the_head_runs_in_the_batch(demo, fixtures, tmp_path):
    from facecore.cli import EXIT_OK, main

    out = tmp_path / "out.csv"
    argv = ["batch", str(fixtures / "obama_small.jpg"), "--output", str(out)]
    assert main([*argv, "--stages", "demo_age", "--no-progress"]) == EXIT_OK
    with open(out, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert 0.0 <= float(row["demo_age"]) <= 100.0 and "demo_age_dist" in row
