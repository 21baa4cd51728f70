"""Every registered model builds, trains one step on CPU and describes its features truthfully."""

from __future__ import annotations

import math

import pytest
import torch

from facecore.nn import create_model, list_models

torch.set_num_threads(1)

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
