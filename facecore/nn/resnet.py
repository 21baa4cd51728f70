"""One configurable residual network: ResNet, SE-ResNet, EraseReLU and dilated (DRN-A, DRN-C).

Papers implemented, all through arguments of the single :class:`ResNet` class:

* K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 —
  the BasicBlock / Bottleneck residual units (Fig. 5) and the 18/34/50-layer layouts (Table 1).
* J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018 — ``attn_layer="se"``:
  the SE block of Sec. 3 (Eq. 2 squeeze, Eq. 3 excitation, Eq. 4 scaling) with reduction ratio
  ``se_reduction`` (the paper's *r*), applied to the residual branch before the addition
  (the "SE-ResNet module" of Fig. 3).
* X. Dong, G. Kang, K. Zhan, Y. Yang, "EraseReLU: A Simple Way to Ease the Training of Deep
  Convolution Neural Networks", arXiv 1709.07634, 2017 — ``erase_relu=True`` removes the last
  ReLU of each residual module, the one that follows the residual addition (the paper states the
  method in words and a figure; it has no numbered equation).
* F. Yu, V. Koltun, T. Funkhouser, "Dilated Residual Networks", CVPR 2017 —
  ``output_stride=8`` gives DRN-A (Sec. 2, "Dilated Residual Networks"): the striding of the
  first layer of the last two stages (the paper's groups G4, G5) is removed and their
  convolutions are dilated by 2 and 4; the first 3x3 convolution of a newly dilated stage keeps
  the previous stage's dilation (G4: 1 then 2; G5: 2 then 4), as in the authors' code.
  ``stem_type="drn"`` plus ``degrid_layers`` give the degridding of DRN-C (section
  "Degridding"): the max-pooling is removed, the 7x7 stem conv has stride 1 and is followed by
  two residual levels of ``drn_widths`` channels (the second one strided), and extra stages with
  dilation halving towards 1 and *no residual connection* are appended at the end (levels 7 and
  8 of DRN-C-26).

Departures from the papers, and why:

* Bottleneck stride sits on the 3x3 convolution ("ResNet v1.5", as torchvision/timm) rather than
  on the first 1x1 convolution of He et al.; it is the variant everybody trains and it is more
  accurate for the same cost.
* The residual levels that replace max-pooling in DRN-C are always BasicBlocks, as in the
  paper's DRN-C-26/42; the degridding stages are BasicBlocks without the skip connection
  (two 3x3 conv-BN-ReLU). With a Bottleneck network they keep the final width
  (``widths[-1] * 4``), which the paper never defines.
* EraseReLU only acts on residual modules. A degridding block has no addition, so its final
  ReLU is kept (it is the only non-linearity between consecutive degridding blocks).
* The SE block, when enabled, is used in every block including degridding blocks; the hidden
  width is ``max(1, channels // se_reduction)`` so tiny test networks stay valid.
* The head is global average pooling, dropout and one linear layer with ``num_outputs`` outputs
  (regression or classification logits). DRN's segmentation head is out of scope.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from facecore.nn.registry import register_model

__all__ = [
    "StagedBackbone",
    "SqueezeExcite",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet_tiny",
    "resnet18",
    "resnet34",
    "resnet50",
    "se_resnet18",
    "se_resnet50",
    "erase_resnet18",
    "drn_a_18",
    "drn_c_26",
]

logger = logging.getLogger(__name__)

BlockName = Literal["basic", "bottleneck"]
StemType = Literal["default", "drn"]


class StagedBackbone(nn.Module):
    """A ``stem`` followed by the named ``stages``, then a head (``forward_head``).

    Shared forward passes of :class:`ResNet` and :class:`facecore.nn.binary.BinaryResNet`;
    subclasses build ``stem``, ``stages`` and ``feature_info`` and define :meth:`forward_head`.
    """

    stem: nn.Module
    stages: nn.ModuleDict

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Feature maps after every stage, in the order of :attr:`feature_info`.

        Parameters
        ----------
        x : Tensor
            Images, shape (B, in_chans, H, W).
        """
        x = self.stem(x)
        outs = []
        for stage in self.stages.values():
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: Tensor) -> Tensor:
        """Final feature map, shape (B, num_features, H / r, W / r) with r the output stride."""
        x = self.stem(x)
        for stage in self.stages.values():
            x = stage(x)
        return x

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Outputs (or pooled features with ``pre_logits``) from the final feature map."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Outputs of shape (B, num_outputs) for images of shape (B, in_chans, H, W)."""
        return self.forward_head(self.forward_features(x))


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation gate (Hu et al. 2018, Eqs. 2-4).

    Parameters
    ----------
    channels : int
        Channels of the feature map to recalibrate.
    reduction : int
        Reduction ratio *r* of the bottleneck MLP; hidden width is ``max(1, channels // r)``.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"se_reduction must be >= 1, got {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Scale each channel of ``x`` (B, C, H, W) by a gate in (0, 1)."""
        s = x.mean(dim=(2, 3), keepdim=True)
        s = self.fc2(self.act(self.fc1(s)))
        return x * torch.sigmoid(s)


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
    )


class _ResidualUnit(nn.Module):
    """Shared tail of both blocks: optional SE, optional residual addition, optional final ReLU."""

    expansion = 1

    def __init__(
        self,
        out_ch: int,
        downsample: nn.Module | None,
        se_reduction: int | None,
        erase_relu: bool,
        residual: bool,
    ) -> None:
        super().__init__()
        self.se = SqueezeExcite(out_ch, se_reduction) if se_reduction else None
        self.downsample = downsample
        self.residual = residual
        # EraseReLU removes the ReLU after the addition; a block without addition keeps it.
        self.final_act = nn.ReLU(inplace=True) if (not erase_relu or not residual) else None

    def _finish(self, out: Tensor, x: Tensor) -> Tensor:
        if self.se is not None:
            out = self.se(out)
        if self.residual:
            shortcut = x if self.downsample is None else self.downsample(x)
            out = out + shortcut
        if self.final_act is not None:
            out = self.final_act(out)
        return out


class BasicBlock(_ResidualUnit):
    """Two 3x3 convolutions (He et al. 2016, Fig. 5 left).

    Parameters
    ----------
    in_ch, planes : int
        Input channels and output channels (``expansion`` is 1).
    stride : int
        Stride of the first convolution.
    dilation, first_dilation : int
        Dilation of the second and of the first 3x3 convolution (DRN schedule).
    downsample : nn.Module or None
        Projection of the shortcut when shape changes.
    se_reduction : int or None
        Enables a Squeeze-and-Excitation gate with this ratio.
    erase_relu : bool
        Drop the ReLU after the residual addition (EraseReLU).
    residual : bool
        ``False`` gives the DRN-C degridding block (no skip connection).
    """

    expansion = 1

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        first_dilation: int | None = None,
        downsample: nn.Module | None = None,
        se_reduction: int | None = None,
        erase_relu: bool = False,
        residual: bool = True,
    ) -> None:
        super().__init__(planes, downsample, se_reduction, erase_relu, residual)
        first_dilation = dilation if first_dilation is None else first_dilation
        self.conv1 = _conv3x3(in_ch, planes, stride, first_dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to ``x`` of shape (B, in_ch, H, W)."""
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self._finish(out, x)


class Bottleneck(_ResidualUnit):
    """1x1 - 3x3 - 1x1 bottleneck with 4x expansion (He et al. 2016, Fig. 5 right).

    Parameters are those of :class:`BasicBlock`; the output has ``planes * 4`` channels and the
    stride and the dilation sit on the 3x3 convolution.
    """

    expansion = 4

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        first_dilation: int | None = None,
        downsample: nn.Module | None = None,
        se_reduction: int | None = None,
        erase_relu: bool = False,
        residual: bool = True,
    ) -> None:
        out_ch = planes * self.expansion
        super().__init__(out_ch, downsample, se_reduction, erase_relu, residual)
        first_dilation = dilation if first_dilation is None else first_dilation
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, stride, first_dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to ``x`` of shape (B, in_ch, H, W)."""
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self._finish(out, x)


_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNet(StagedBackbone):
    """Residual network whose variants are chosen by arguments.

    Parameters
    ----------
    block : {"basic", "bottleneck"}
        Residual unit of the four main stages.
    layers : sequence of 4 int
        Blocks per main stage (``layer1`` ... ``layer4``).
    widths : sequence of 4 int
        Planes of the main stages (output channels are ``width * expansion``).
    in_chans : int
        Channels of the input image.
    num_outputs : int
        Outputs of the linear head; ``0`` replaces the head by the identity (pooled features).
    drop_rate : float
        Dropout probability before the linear layer.
    attn_layer : {None, "se"}
        Channel attention inside every block.
    se_reduction : int
        Reduction ratio *r* of the SE block.
    erase_relu : bool
        Remove the ReLU after the residual addition of every residual block (EraseReLU).
    output_stride : {32, 16, 8}
        Total stride of the final feature map; 16 and 8 dilate the last one or two stages instead
        of striding them (8 is DRN-A).
    stem_type : {"default", "drn"}
        ``"default"``: 7x7/2 conv and 3x3/2 max-pool. ``"drn"``: 7x7/1 conv, no pooling, and two
        residual levels of ``drn_widths`` channels, the second with stride 2 (DRN-C).
    drn_widths : pair of int
        Channels of the two DRN stem levels.
    degrid_layers : sequence of int
        Blocks of each extra degridding stage (DRN-C uses ``(1, 1)``); dilations halve from the
        last stage's dilation down to 1 and those blocks have no residual connection.

    Attributes
    ----------
    num_features : int
        Channels of :meth:`forward_features`' output.
    feature_info : list of dict
        One dict per stage returned by :meth:`forward_stages`: ``module`` (stage name),
        ``num_chs`` (channels) and ``reduction`` (total stride w.r.t. the input).
    """

    def __init__(
        self,
        block: BlockName = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        in_chans: int = 3,
        num_outputs: int = 1000,
        drop_rate: float = 0.0,
        attn_layer: str | None = None,
        se_reduction: int = 16,
        erase_relu: bool = False,
        output_stride: int = 32,
        stem_type: StemType = "default",
        drn_widths: Sequence[int] = (16, 32),
        degrid_layers: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {block!r}")
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError("layers and widths must each have 4 entries (one per stage)")
        if attn_layer not in (None, "se"):
            raise ValueError(f"attn_layer must be None or 'se', got {attn_layer!r}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if stem_type not in ("default", "drn"):
            raise ValueError(f"stem_type must be 'default' or 'drn', got {stem_type!r}")
        if num_outputs < 0:
            raise ValueError(f"num_outputs must be >= 0, got {num_outputs}")
        block_cls = _BLOCKS[block]
        se = se_reduction if attn_layer == "se" else None
        self._block_kwargs: dict[str, Any] = {"se_reduction": se, "erase_relu": erase_relu}
        self.num_outputs = num_outputs
        self.drop_rate = drop_rate
        self.feature_info: list[dict[str, Any]] = []
        self.stages = nn.ModuleDict()

        if stem_type == "default":
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, widths[0], 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(widths[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
            in_ch, reduction, first_stride = widths[0], 4, 1
        else:
            if len(drn_widths) != 2:
                raise ValueError("drn_widths must have 2 entries")
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, drn_widths[0], 7, stride=1, padding=3, bias=False),
                nn.BatchNorm2d(drn_widths[0]),
                nn.ReLU(inplace=True),
            )
            in_ch, reduction = drn_widths[0], 1
            for i, (w, stride) in enumerate(zip(drn_widths, (1, 2), strict=True)):
                in_ch = self._add_stage(f"level{i + 1}", BasicBlock, in_ch, w, 1, stride, 1, 1)
                reduction *= stride
                self.feature_info.append(
                    {"module": f"level{i + 1}", "num_chs": in_ch, "reduction": reduction}
                )
            first_stride = 2

        dilation = 1
        for i, (n, w) in enumerate(zip(layers, widths, strict=True)):
            stride = first_stride if i == 0 else 2
            prev_dilation = dilation
            if stride > 1 and reduction * stride > output_stride:
                dilation *= stride
                stride = 1
            reduction *= stride
            in_ch = self._add_stage(
                f"layer{i + 1}", block_cls, in_ch, w, n, stride, dilation, prev_dilation
            )
            self.feature_info.append(
                {"module": f"layer{i + 1}", "num_chs": in_ch, "reduction": reduction}
            )

        for i, n in enumerate(degrid_layers):
            d = max(1, dilation // 2 ** (i + 1))
            in_ch = self._add_stage(
                f"degrid{i + 1}", BasicBlock, in_ch, in_ch, n, 1, d, d, residual=False
            )
            self.feature_info.append(
                {"module": f"degrid{i + 1}", "num_chs": in_ch, "reduction": reduction}
            )

        self.num_features = in_ch
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = (
            nn.Linear(self.num_features, num_outputs) if num_outputs > 0 else nn.Identity()
        )
        self._init_weights()
        logger.debug(
            "built ResNet(block=%s, layers=%s, output_stride=%d, stem=%s, degrid=%s)",
            block,
            tuple(layers),
            output_stride,
            stem_type,
            tuple(degrid_layers),
        )

    def _add_stage(
        self,
        name: str,
        block_cls: type[BasicBlock] | type[Bottleneck],
        in_ch: int,
        planes: int,
        num_blocks: int,
        stride: int,
        dilation: int,
        first_dilation: int,
        residual: bool = True,
    ) -> int:
        if num_blocks < 1:
            raise ValueError(f"stage {name} needs at least one block, got {num_blocks}")
        out_ch = planes * block_cls.expansion
        blocks: list[nn.Module] = []
        for b in range(num_blocks):
            downsample = None
            if residual and b == 0 and (stride != 1 or in_ch != out_ch):
                downsample = nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_ch),
                )
            blocks.append(
                block_cls(
                    in_ch,
                    planes,
                    stride=stride if b == 0 else 1,
                    dilation=dilation,
                    first_dilation=first_dilation if b == 0 else dilation,
                    downsample=downsample,
                    residual=residual,
                    **self._block_kwargs,
                )
            )
            in_ch = out_ch
        self.stages[name] = nn.Sequential(*blocks)
        return out_ch

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Global average pooling, dropout and the linear layer.

        Parameters
        ----------
        features : Tensor
            Output of :meth:`forward_features`.
        pre_logits : bool
            Return the pooled (and dropped-out) features, shape (B, num_features).
        """
        x = self.head_drop(torch.flatten(self.global_pool(features), 1))
        return x if pre_logits else self.fc(x)


def _build(defaults: dict[str, Any], kwargs: dict[str, Any]) -> ResNet:
    return ResNet(**{**defaults, **kwargs})


@register_model
def resnet_tiny(**kwargs: Any) -> ResNet:
    """A one-block-per-stage BasicBlock ResNet with widths 8-64, for tests and toy data."""
    return _build({"block": "basic", "layers": (1, 1, 1, 1), "widths": (8, 16, 32, 64)}, kwargs)


@register_model
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (He et al. 2016, Table 1)."""
    return _build({"block": "basic", "layers": (2, 2, 2, 2)}, kwargs)


@register_model
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34 (He et al. 2016, Table 1)."""
    return _build({"block": "basic", "layers": (3, 4, 6, 3)}, kwargs)


@register_model
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (He et al. 2016, Table 1), stride on the 3x3 convolution."""
    return _build({"block": "bottleneck", "layers": (3, 4, 6, 3)}, kwargs)


@register_model
def se_resnet18(**kwargs: Any) -> ResNet:
    """SE-ResNet-18 with reduction ratio 16 (Hu et al. 2018)."""
    return _build({"block": "basic", "layers": (2, 2, 2, 2), "attn_layer": "se"}, kwargs)


@register_model
def se_resnet50(**kwargs: Any) -> ResNet:
    """SE-ResNet-50 with reduction ratio 16 (Hu et al. 2018)."""
    return _build({"block": "bottleneck", "layers": (3, 4, 6, 3), "attn_layer": "se"}, kwargs)


@register_model
def erase_resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 with the post-addition ReLU of every block erased (Dong et al. 2017)."""
    return _build({"block": "basic", "layers": (2, 2, 2, 2), "erase_relu": True}, kwargs)


@register_model
def drn_a_18(**kwargs: Any) -> ResNet:
    """DRN-A-18: ResNet-18 with output stride 8 by dilation (Yu et al. 2017, Sec. 2)."""
    return _build({"block": "basic", "layers": (2, 2, 2, 2), "output_stride": 8}, kwargs)


@register_model
def drn_c_26(**kwargs: Any) -> ResNet:
    """DRN-C-26 (Yu et al. 2017): DRN stem levels, output stride 8, two degridding levels."""
    return _build(
        {
            "block": "basic",
            "layers": (2, 2, 2, 2),
            "output_stride": 8,
            "stem_type": "drn",
            "drn_widths": (16, 32),
            "degrid_layers": (1, 1),
        },
        kwargs,
    )
