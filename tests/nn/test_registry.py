"""Every registered model builds, trains one step on CPU and describes its features truthfully."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys

import pytest
import torch

from facecore import model_store
from facecore.nn import create_model, default_weights, is_model, list_models, register_model
from facecore.nn.registry import BUILTIN_MODELS

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module

MODELS = list_models()

#: Smaller configurations for models whose full size would make a CPU smoke test slow
#: (VGG-Face is 145M parameters); the architecture code path is the same.
SMOKE_KWARGS = {"vgg_face": {"widths": (8, 16, 32, 32, 32), "fc_width": 64, "input_size": 64}}


def _input_shape(model: torch.nn.Module) -> tuple[int, int, int]:
    """(C, H, W) from the model's ``default_input_size`` if it has one, else (3, 64, 64)."""
    size = getattr(model, "default_input_size", None)
    if size is None:
        return (3, 64, 64)
    size = tuple(int(s) for s in size)
    return size if len(size) == 3 else (3, *size)


def test_registry_lists_the_backbone_family() -> None:
    expected = {
        "resnet_tiny",
        "resnet18",
        "resnet34",
        "resnet50",
        "se_resnet18",
        "se_resnet50",
        "erase_resnet18",
        "drn_a_18",
        "drn_c_26",
        "coupled_ensemble",
        "hierarchical_binary_resnet",
        "dlib_face_resnet",
        "vgg_face",
    }
    assert expected <= set(MODELS)
    assert sorted(MODELS) == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_model_forward_backward_and_feature_info(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **SMOKE_KWARGS.get(name, {}))
    c, h, w = _input_shape(model)
    x = torch.randn(2, c, h, w)

    model.train()
    out = model(x)
    assert out.shape[0] == 2
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)

    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        stages = model.forward_stages(x)
        head = model.forward_head(features)
        full = model(x)
    assert features.dim() == 4 and features.shape[:2] == (2, model.num_features)
    torch.testing.assert_close(head, full)

    info = model.feature_info
    assert len(info) == len(stages) >= 1
    assert stages[-1].shape == features.shape
    reductions = [i["reduction"] for i in info]
    assert reductions == sorted(reductions)
    for stage, i in zip(stages, info, strict=True):
        assert {"module", "num_chs", "reduction"} <= set(i)
        assert stage.shape[:2] == (2, i["num_chs"]), i["module"]
        r = i["reduction"]
        for got, size in ((stage.shape[-2], h), (stage.shape[-1], w)):
            # Exact for "same"-padded networks; valid convolutions may lose a couple of pixels.
            assert math.floor(size / r) - 2 <= got <= math.ceil(size / r), (i["module"], got)


def test_builtin_table_names_the_module_of_every_builtin_model() -> None:
    # In a fresh interpreter: importing the package registers nothing and imports no network;
    # list_models() then registers exactly the table's models.
    code = (
        "import json, sys; import facecore.nn as nn; "
        "before = sorted(m for m in sys.modules if m.startswith('facecore.nn.')); "
        "print(json.dumps([before, nn.list_models()]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    before, names = json.loads(r.stdout)
    assert before == ["facecore.nn.registry"]
    assert names == sorted(BUILTIN_MODELS)
    for name, module in BUILTIN_MODELS.items():
        assert getattr(importlib.import_module(module), name).__module__ == module, name


def test_a_model_imports_only_its_own_module() -> None:
    code = (
        "import json, sys; from facecore.nn import create_model, is_model; "
        "known = is_model('vgg_face'); create_model('resnet_tiny'); "
        "print(json.dumps([known, sorted(m for m in sys.modules if m.startswith('facecore.nn.'))]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    known, loaded = json.loads(r.stdout)
    assert known is True  # a built-in model is known before its module is imported
    assert loaded == ["facecore.nn.registry", "facecore.nn.resnet"]


def test_nn_imports_nothing_of_the_face_pipeline() -> None:
    code = (
        "import json, sys; import facecore.nn, facecore.nn.features; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('facecore', 'app')))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = set(json.loads(r.stdout))
    assert "facecore.nn.dlib_resnet" in loaded and "facecore.model_store" in loaded
    pipeline = ("align", "analyzer", "descriptor", "landmarks", "detect", "attractiveness")
    leaked = sorted(
        m
        for m in loaded
        if any(m == f"facecore.{p}" or m.startswith(f"facecore.{p}.") for p in pipeline)
    )
    assert not leaked, f"facecore.nn imports the face pipeline: {leaked}"
    assert not any(m == "app" or m.startswith("app.") for m in loaded)


def test_every_network_in_the_manifest_loads_pretrained() -> None:
    entries = [s for s in model_store.load_manifest().values() if is_model(s.architecture)]
    assert {s.name for s in entries} >= {"dlib_face_recognition_resnet"}
    for spec in entries:
        model = create_model(spec.architecture, pretrained=spec.name)
        assert isinstance(model, torch.nn.Module), spec.name
        if spec.input_size is not None:
            assert tuple(model.default_input_size)[-2:] == spec.input_size, spec.name
    for name in MODELS:
        entry = default_weights(name)
        if entry is not None:
            assert model_store.get_spec(entry).architecture == name


def test_pretrained_needs_weights_the_model_can_take() -> None:
    with pytest.raises(ValueError, match="cannot load pretrained weights"):
        create_model("resnet_tiny", pretrained=True)
    with pytest.raises(ValueError, match="cannot load pretrained weights"):
        create_model("resnet_tiny", pretrained="dlib_face_recognition_resnet")
    with pytest.raises(TypeError, match="pretrained must be"):
        create_model("dlib_face_resnet", pretrained=1.0)
    with pytest.raises(ValueError, match="unknown model 'no_such_net'"):
        create_model("no_such_net", pretrained=True)
    assert default_weights("resnet_tiny") is None

    def net_without_weights_argument() -> torch.nn.Module:
        return torch.nn.Identity()

    with pytest.raises(ValueError, match="no weights_path argument"):
        register_model(default_weights="dlib_face_recognition_resnet")(net_without_weights_argument)
    assert not is_model("net_without_weights_argument")
