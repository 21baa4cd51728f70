"""ModelHead: a head serves whatever model the router loads for its manifest entry."""

import json

import numpy as np
import pytest
import torch

from facecore.errors import UnknownModelError
from facecore.heads.base import ModelHead
from facecore.heads.distribution import TOP_ARCHITECTURE, TopDistributionModel
from facecore.model_router import register_loader
from facecore.model_store import sha256_file
from facecore.nn.dlib_resnet import DlibFaceResNet
from facecore.nn.top import BackboneTop
from facecore.trunk import map_key
from facecore.types import Box, Face

BINS = tuple(float(b) for b in range(1, 6))


class ToyHead(ModelHead):
    name = "toy"
    task = "toy_score"
    unit = "points"
    default_model = "toy_model"


def _face(seed):
    fmap = np.random.default_rng(seed).normal(size=(256, 4, 4)).astype(np.float32)
    return Face(
        box=Box(0, 0, 10, 10), detector_score=1, detector="hog", features={map_key("stage4"): fmap}
    )


def test_distribution_head_serves_the_model(tmp_path, monkeypatch):
    torch.manual_seed(0)
    top = BackboneTop(DlibFaceResNet(), start="stage5", num_outputs=len(BINS))
    path = TopDistributionModel(top, BINS).save(tmp_path / "toy.pt")
    entry = {
        "name": "toy_model",
        "file": "toy.pt",
        "sha256": sha256_file(path),
        "task": "toy_score",
        "architecture": TOP_ARCHITECTURE,
        "outputs": [{"name": "toy", "kind": "distribution", "bins": list(BINS), "scale": [1, 5]}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "models": [entry]}))
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    head = ToyHead()
    (out,) = head.provides
    assert out.distribution and out.scale == (1.0, 5.0)
    faces = head(np.zeros((8, 8, 3), np.uint8), [_face(2)])
    p = faces[0].predictions["toy"]
    assert p.model == "toy_model" and p.bins == BINS
    assert p.value == pytest.approx(float(p.probabilities @ np.array(BINS)), abs=1e-5)
    assert head(np.zeros((8, 8, 3), np.uint8), []) == []
    with pytest.raises(UnknownModelError):
        ToyHead(model="nope")


class ConstantModel:
    """A model of single values: every face gets ``value`` (read from the file)."""

    bins = None
    batching = "image"

    def __init__(self, value: float) -> None:
        self.value = value

    def serve(self, image, faces):
        return np.full(len(faces), self.value + image.mean()), None


@register_loader("test_constant_model")
def _load_constant(path, spec, precision="auto"):
    return ConstantModel(float(path.read_text()))


class ShiftedHead(ToyHead):
    def adjust(self, model, faces, values, probs):
        return values + 1.0, probs


def test_a_head_serves_any_architecture_the_router_reads(tmp_path):
    (tmp_path / "c.txt").write_text("2.5")
    entry = {"name": "c", "file": "c.txt", "sha256": sha256_file(tmp_path / "c.txt")}
    entry |= {"task": "toy_score", "architecture": "test_constant_model"}
    entry["outputs"] = [{"name": "toy", "kind": "scalar", "scale": [0, 10]}]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [entry]}))
    head = ShiftedHead(model="c", models_dir=tmp_path)
    (out,) = head.provides
    assert not out.distribution and out.scale == (0.0, 10.0) and out.unit == "points"
    assert head.batching == "image" and head.load() is head.load()
    (face,) = head(np.full((8, 8, 3), 2, np.uint8), [_face(0)])
    p = face.predictions["toy"]
    assert (p.value, p.model, p.bins, p.probabilities) == (5.5, "c", None, None)
    with pytest.raises(ValueError, match="precision"):
        ShiftedHead(model="c", models_dir=tmp_path, precision="int4")


def test_a_model_that_reads_another_stage_makes_its_head_require_it(tmp_path):
    (tmp_path / "c.txt").write_text("1.0")
    entry = {"name": "c", "file": "c.txt", "sha256": sha256_file(tmp_path / "c.txt")}
    entry |= {"task": "toy_score", "architecture": "test_constant_model"}
    entry["outputs"] = [{"name": "toy", "kind": "scalar", "scale": [0, 10]}]
    plain = dict(entry, name="plain")
    entry["stages"] = ["appearance"]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [entry, plain]}))
    assert ToyHead(model="c", models_dir=tmp_path).requires == ("trunk", "appearance")
    assert ToyHead(model="plain", models_dir=tmp_path).requires == ("trunk",)
    assert ToyHead.requires == ("trunk",)  # the class is unchanged
