"""ResNet family: blocks, SE, EraseReLU, DRN-A dilation schedule and DRN-C degridding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facecore.nn.resnet import BasicBlock, Bottleneck, ResNet, SqueezeExcite, drn_c_26, resnet_tiny

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module

TINY = {"layers": (1, 1, 1, 1), "widths": (4, 8, 8, 16), "num_outputs": 3}


def _x(h: int = 32) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 3, h, h)


def _blocks(model: ResNet) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BasicBlock | Bottleneck)]


def test_plain_resnet_shapes_and_feature_info() -> None:
    model = ResNet(**TINY)
    out = model(_x())
    assert out.shape == (2, 3)
    assert model.num_features == 16
    assert [i["reduction"] for i in model.feature_info] == [4, 8, 16, 32]
    assert [i["module"] for i in model.feature_info] == ["layer1", "layer2", "layer3", "layer4"]
    assert [s.shape[-1] for s in model.forward_stages(_x())] == [8, 4, 2, 1]


def test_bottleneck_expands_channels() -> None:
    model = ResNet(block="bottleneck", **TINY)
    assert model.num_features == 64
    assert [i["num_chs"] for i in model.feature_info] == [16, 32, 32, 64]
    assert model.forward_features(_x()).shape == (2, 64, 1, 1)


def test_head_options() -> None:
    model = ResNet(**{**TINY, "num_outputs": 0}, in_chans=1)
    x = torch.randn(2, 1, 32, 32)
    assert model(x).shape == (2, 16)  # identity head: pooled features
    model = ResNet(**TINY, drop_rate=0.5)
    pooled = model.forward_head(model.forward_features(_x()), pre_logits=True)
    assert pooled.shape == (2, 16)


def test_squeeze_excite_gates_channels() -> None:
    se = SqueezeExcite(8, reduction=4)
    assert se.fc1.out_channels == 2
    nn.init.zeros_(se.fc2.weight)
    nn.init.zeros_(se.fc2.bias)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(se(x), 0.5 * x)  # sigmoid(0) = 1/2
    model = ResNet(**TINY, attn_layer="se", se_reduction=2)
    assert all(b.se is not None for b in _blocks(model))
    assert all(b.se is None for b in _blocks(ResNet(**TINY)))
    assert model(_x()).shape == (2, 3)


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
def test_erase_relu_removes_only_the_post_addition_relu(block_cls: type) -> None:
    torch.manual_seed(0)
    kept = block_cls(16, 16 // block_cls.expansion)
    erased = block_cls(16, 16 // block_cls.expansion, erase_relu=True)
    erased.load_state_dict(kept.state_dict())
    kept.eval()
    erased.eval()
    x = torch.randn(2, 16, 6, 6)
    y_erased = erased(x)
    assert kept.final_act is not None and erased.final_act is None
    assert (y_erased < 0).any()
    torch.testing.assert_close(kept(x), torch.relu(y_erased))
    n_relu = sum(isinstance(m, nn.ReLU) for m in kept.modules())
    assert sum(isinstance(m, nn.ReLU) for m in erased.modules()) == n_relu - 1


def test_erase_resnet_blocks() -> None:
    model = ResNet(**TINY, erase_relu=True)
    assert all(b.final_act is None for b in _blocks(model))


def test_drn_a_dilation_schedule() -> None:
    model = ResNet(layers=(2, 2, 2, 2), widths=(4, 8, 8, 16), output_stride=8, num_outputs=2)
    assert [i["reduction"] for i in model.feature_info] == [4, 8, 8, 8]
    l3, l4 = model.stages["layer3"], model.stages["layer4"]
    # G4: first conv keeps dilation 1, then 2; G5: first conv 2, then 4 (Yu et al. Sec. 2).
    assert (l3[0].conv1.dilation, l3[0].conv2.dilation) == ((1, 1), (2, 2))
    assert (l3[1].conv1.dilation, l3[1].conv2.dilation) == ((2, 2), (2, 2))
    assert (l4[0].conv1.dilation, l4[0].conv2.dilation) == ((2, 2), (4, 4))
    assert (l4[1].conv1.dilation, l4[1].conv2.dilation) == ((4, 4), (4, 4))
    assert all(c.stride == (1, 1) for c in l3.modules() if isinstance(c, nn.Conv2d))
    assert model.forward_features(_x()).shape == (2, 16, 4, 4)
    bottleneck = ResNet(block="bottleneck", **TINY, output_stride=16)
    assert [i["reduction"] for i in bottleneck.feature_info] == [4, 8, 16, 16]
    assert bottleneck.stages["layer4"][0].conv2.dilation == (1, 1)
    assert bottleneck(_x()).shape == (2, 3)


def test_drn_c_degridding() -> None:
    model = ResNet(
        **TINY, output_stride=8, stem_type="drn", drn_widths=(4, 4), degrid_layers=(1, 1)
    )
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.stem[0].stride == (1, 1)
    names = [i["module"] for i in model.feature_info]
    assert names == ["level1", "level2", "layer1", "layer2", "layer3", "layer4"] + [
        "degrid1",
        "degrid2",
    ]
    assert [i["reduction"] for i in model.feature_info] == [1, 2, 4, 8, 8, 8, 8, 8]
    d1, d2 = model.stages["degrid1"][0], model.stages["degrid2"][0]
    assert (d1.conv1.dilation, d2.conv1.dilation) == ((2, 2), (1, 1))
    for block in (d1, d2):
        assert block.residual is False and block.downsample is None
        assert block.final_act is not None
    # A degridding block is two conv-BN-ReLU with no skip connection.
    model.eval()
    x = torch.randn(2, 16, 4, 4)
    expected = torch.relu(d1.bn2(d1.conv2(torch.relu(d1.bn1(d1.conv1(x))))))
    torch.testing.assert_close(d1(x), expected)
    assert model.forward_features(_x()).shape == (2, 16, 4, 4)


def test_registered_drn_c_26_layout() -> None:
    model = drn_c_26(num_outputs=1)
    blocks = [len(model.stages[n]) for n in model.stages]
    assert blocks == [1, 1, 2, 2, 2, 2, 1, 1]  # DRN-C-26 levels 1-8
    assert model.feature_info[0]["num_chs"] == 16 and model.num_features == 512


def test_variants_compose() -> None:
    model = ResNet(
        block="bottleneck",
        layers=(1, 1, 1, 1),
        widths=(4, 4, 8, 8),
        attn_layer="se",
        se_reduction=4,
        erase_relu=True,
        output_stride=8,
        stem_type="drn",
        drn_widths=(4, 8),
        degrid_layers=(1,),
        num_outputs=1,
    )
    out = model(_x())
    out.sum().backward()
    assert out.shape == (2, 1)
    assert model.num_features == 32


def test_factory_overrides() -> None:
    model = resnet_tiny(num_outputs=7, in_chans=1).eval()
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"block": "wide"},
        {"layers": (1, 1, 1)},
        {"attn_layer": "cbam"},
        {"output_stride": 4},
        {"stem_type": "deep"},
        {"num_outputs": -1},
        {"layers": (1, 0, 1, 1)},
    ],
)
def test_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ResNet(**{**TINY, **kwargs})
