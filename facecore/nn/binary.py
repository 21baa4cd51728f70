"""Binarized convolutions and the hierarchical, parallel & multi-scale binary block.

Paper: A. Bulat, G. Tzimiropoulos, "Binarized Convolutional Landmark Localizers for Human Pose
Estimation and Face Alignment with Limited Resources", ICCV 2017 (extended as "Hierarchical
binary CNNs for landmark localization with limited resources", TPAMI 2020).

The paper gives the block as a figure, not as an equation, and builds its binarization on
XNOR-Net (M. Rastegari et al., "XNOR-Net: ImageNet Classification Using Binary Convolutional
Neural Networks", ECCV 2016). What is implemented:

* Binarization of weights and activations with ``sign`` and a straight-through estimator whose
  gradient is clipped to ``|x| <= 1`` (BNN / XNOR-Net): :class:`SignSTE`, :func:`binarize`.
* Binary weights scaled by a real per-output-channel factor ``alpha = mean |W|`` (the XNOR-Net
  approximation ``W ~ alpha * sign(W)``).
* Each binary layer is applied in XNOR-Net's order batch-norm -> binarize -> binary convolution:
  :class:`BinaryConv2d`.
* The proposed block: three binary 3x3 convolutions in a hierarchy, each fed by the previous
  one, with output widths ``C/2``, ``C/4``, ``C/4``; their outputs are
  concatenated (multi-scale: receptive fields 3, 5, 7) and added to the block input (identity, or
  a 1x1 projection when the width changes): :class:`HierarchicalBinaryBlock`.
* The first and the last layer stay real-valued, as in the paper (the 7x7 stem convolution and
  the linear head), as do batch-norm layers and the 1x1 shortcut projections.

Departures from the paper, and why:

* The paper stacks these blocks into an hourglass for heatmap regression; here the registered
  ``hierarchical_binary_resnet`` is a small ResNet-like classifier/regressor (stem, four stages of
  blocks separated by 2x2 max-pooling as between the hourglass's blocks, global pooling, linear
  head) so that it fits the backbone interface of :mod:`facecore.nn`.
* ``sign(0)`` is taken as +1 so that binarized values are strictly in {-1, +1}; the zero padding
  of binary convolutions still brings zeros at the border, as in every framework implementation.
* Shortcut projections (1x1) are real-valued: they cost almost nothing and keep the residual
  path exact.
* XNOR-Net's activation scaling ``K`` (a real convolution of the mean input magnitude at every
  layer) is not used, so that binary layers stay purely binary apart from ``alpha``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.nn.registry import register_model
from facecore.nn.resnet import StagedBackbone

__all__ = [
    "SignSTE",
    "binarize",
    "BinaryConv2d",
    "HierarchicalBinaryBlock",
    "BinaryResNet",
    "hierarchical_binary_resnet",
]

logger = logging.getLogger(__name__)


class SignSTE(torch.autograd.Function):
    """``sign`` in the forward pass, clipped straight-through gradient in the backward pass.

    Forward: ``+1`` where ``x >= 0`` and ``-1`` elsewhere. Backward: ``grad * 1[|x| <= 1]``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


def binarize(x: Tensor) -> Tensor:
    """Binarize ``x`` to {-1, +1} with the clipped straight-through estimator."""
    return SignSTE.apply(x)


class BinaryConv2d(nn.Conv2d):
    """Convolution with binary weights and (optionally) binary inputs.

    The stored weights are real ("latent") and updated by the optimizer; the forward pass uses
    ``alpha * sign(W)`` with ``alpha`` the mean absolute weight of each output channel.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As for :class:`torch.nn.Conv2d` (``bias`` defaults to ``False``).
    binarize_input : bool
        Binarize the input activations with :func:`binarize` before convolving.
    scale_weights : bool
        Multiply the binary weights by the per-channel ``alpha`` (XNOR-Net).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
        binarize_input: bool = True,
        scale_weights: bool = True,
    ) -> None:
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.binarize_input = binarize_input
        self.scale_weights = scale_weights

    def binary_weight(self) -> Tensor:
        """The weight used in the forward pass: ``alpha * sign(W)``."""
        w = binarize(self.weight)
        if self.scale_weights:
            w = w * self.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
        return w

    def forward(self, x: Tensor) -> Tensor:
        """Binary convolution of ``x`` (B, in_channels, H, W)."""
        if self.binarize_input:
            x = binarize(x)
        return F.conv2d(
            x,
            self.binary_weight(),
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )


class _BinaryUnit(nn.Sequential):
    """Batch-norm -> sign -> binary 3x3 convolution (the paper's layer ordering)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.BatchNorm2d(in_ch), BinaryConv2d(in_ch, out_ch, 3))


class HierarchicalBinaryBlock(nn.Module):
    """Hierarchical, parallel & multi-scale binary residual block (Bulat & Tzimiropoulos 2017).

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels; must be divisible by 4 (branch widths C/2, C/4, C/4).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"out_channels must be divisible by 4, got {out_channels}")
        half, quarter = out_channels // 2, out_channels // 4
        self.unit1 = _BinaryUnit(in_channels, half)
        self.unit2 = _BinaryUnit(half, quarter)
        self.unit3 = _BinaryUnit(quarter, quarter)
        self.shortcut: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(
                nn.BatchNorm2d(in_channels),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to ``x`` (B, in_channels, H, W); the spatial size is kept."""
        a = self.unit1(x)
        b = self.unit2(a)
        c = self.unit3(b)
        return torch.cat([a, b, c], dim=1) + self.shortcut(x)


class BinaryResNet(StagedBackbone):
    """Small ResNet-like network of :class:`HierarchicalBinaryBlock` with real first/last layers.

    ``forward_stages``, ``forward_features`` and ``forward`` are those of
    :class:`~facecore.nn.resnet.StagedBackbone`.

    Parameters
    ----------
    layers : sequence of int
        Blocks per stage.
    widths : sequence of int
        Channels per stage (each divisible by 4).
    in_chans : int
        Input channels.
    num_outputs : int
        Outputs of the real-valued linear head; ``0`` for the identity.
    drop_rate : float
        Dropout before the linear layer.

    Attributes
    ----------
    num_features, feature_info
        As for :class:`facecore.nn.resnet.ResNet`.
    """

    def __init__(
        self,
        layers: Sequence[int] = (1, 1, 1, 1),
        widths: Sequence[int] = (32, 64, 128, 256),
        in_chans: int = 3,
        num_outputs: int = 1000,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths) or not layers:
            raise ValueError("layers and widths must be non-empty and of equal length")
        if num_outputs < 0:
            raise ValueError(f"num_outputs must be >= 0, got {num_outputs}")
        self.num_outputs = num_outputs
        # Real-valued first layer.
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.ModuleDict()
        self.feature_info: list[dict[str, Any]] = []
        in_ch, reduction = widths[0], 2
        for i, (n, w) in enumerate(zip(layers, widths, strict=True)):
            if n < 1:
                raise ValueError(f"each stage needs at least one block, got {n}")
            blocks: list[nn.Module] = [nn.MaxPool2d(2)]
            for _ in range(n):
                blocks.append(HierarchicalBinaryBlock(in_ch, w))
                in_ch = w
            reduction *= 2
            self.stages[f"layer{i + 1}"] = nn.Sequential(*blocks)
            self.feature_info.append(
                {"module": f"layer{i + 1}", "num_chs": w, "reduction": reduction}
            )
        self.num_features = in_ch
        # The block output is a real-valued sum; normalise and rectify before pooling.
        self.final_norm = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        # Real-valued last layer.
        self.fc: nn.Module = nn.Linear(in_ch, num_outputs) if num_outputs > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not isinstance(m, BinaryConv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Batch-norm + ReLU, global average pooling, dropout and the real linear layer."""
        x = torch.flatten(self.global_pool(self.final_norm(features)), 1)
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)


@register_model
def hierarchical_binary_resnet(**kwargs: Any) -> BinaryResNet:
    """Four stages of one hierarchical binary block each, widths 32-256 (~0.5 M parameters)."""
    return BinaryResNet(**kwargs)
