"""A small numpy interpreter of TF.js graph models, the independent reference for the ports.

It executes a graph read by :func:`facecore.nn.tfjs.read_graph_model` node by node, in NHWC and
float64, with TensorFlow's own semantics written out here (SAME padding split as TensorFlow
splits it, convolutions as sliding-window sums): nothing of PyTorch or of the ports is used, so
a port that matches it to 1e-4 computes what the graph computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from facecore.nn.tfjs import GraphModel, Node

__all__ = ["run_graph"]


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_input(x: np.ndarray, kh: int, kw: int, node: Node, value: float = 0.0) -> np.ndarray:
    strides = node.attrs.get("strides", [1, 1, 1, 1])
    dil = node.attrs.get("dilations", [1, 1, 1, 1])
    if node.attrs.get("padding", "VALID") != "SAME":
        return x
    ph = _same_pads(x.shape[1], kh, strides[1], dil[1])
    pw = _same_pads(x.shape[2], kw, strides[2], dil[2])
    return np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kh: int, kw: int, node: Node) -> np.ndarray:
    """(N, OH, OW, C, kh, kw) windows of the padded input."""
    strides = node.attrs.get("strides", [1, 1, 1, 1])
    dil = node.attrs.get("dilations", [1, 1, 1, 1])
    if dil[1:3] != [1, 1]:
        raise NotImplementedError("dilated convolution")
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))
    return win[:, :: strides[1], :: strides[2]]


def _conv2d(x: np.ndarray, w: np.ndarray, node: Node) -> np.ndarray:
    kh, kw = w.shape[:2]
    win = _windows(_pad_input(x, kh, kw, node), kh, kw, node)
    return np.einsum("nhwcij,ijco->nhwo", win, w, optimize=True)


def _depthwise(x: np.ndarray, w: np.ndarray, node: Node) -> np.ndarray:
    kh, kw, c, m = w.shape
    win = _windows(_pad_input(x, kh, kw, node), kh, kw, node)
    out = np.einsum("nhwcij,ijcm->nhwcm", win, w, optimize=True)
    return out.reshape(*out.shape[:3], c * m)


def _activation(x: np.ndarray, name: str, node: Node) -> np.ndarray:
    if name == "Relu":
        return np.maximum(x, 0.0)
    if name == "Relu6":
        return np.clip(x, 0.0, 6.0)
    if name == "Elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "LeakyRelu":
        return np.where(x > 0, x, x * node.attrs.get("leakyrelu_alpha", 0.2))
    raise NotImplementedError(f"fused activation {name}")


def _fused(x: np.ndarray, args: Sequence[np.ndarray], node: Node) -> np.ndarray:
    ops = node.attrs.get("fused_ops", [])
    rest = list(args)
    for op in ops:
        if op == "BiasAdd":
            x = x + rest.pop(0)
        elif op == "FusedBatchNorm":
            scale, offset, mean, var = rest[:4]
            rest = rest[4:]
            x = (x - mean) / np.sqrt(var + node.attrs.get("epsilon", 0.0)) * scale + offset
        else:
            x = _activation(x, op, node)
    return x


def _max_pool(x: np.ndarray, node: Node) -> np.ndarray:
    _, kh, kw, _ = node.attrs["ksize"]
    win = _windows(_pad_input(x, kh, kw, node, value=-np.inf), kh, kw, node)
    return win.max(axis=(-2, -1))


def _strided_slice(x: np.ndarray, begin, end, strides, node: Node) -> np.ndarray:
    if node.attrs.get("ellipsis_mask", 0) or node.attrs.get("new_axis_mask", 0):
        raise NotImplementedError("StridedSlice masks")
    idx = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
        b = None if node.attrs.get("begin_mask", 0) >> i & 1 else int(b)
        e = None if node.attrs.get("end_mask", 0) >> i & 1 else int(e)
        if node.attrs.get("shrink_axis_mask", 0) >> i & 1:
            idx.append(int(b))
        else:
            idx.append(slice(b, e, int(s)))
    return x[tuple(idx)]


def _run(node: Node, a: list[Any]) -> Any:
    op = node.op
    if op in ("Identity", "StopGradient"):
        return a[0]
    if op == "Conv2D":
        return _conv2d(a[0], a[1], node)
    if op == "_FusedConv2D":
        return _fused(_conv2d(a[0], a[1], node), a[2:], node)
    if op == "DepthwiseConv2dNative":
        return _depthwise(a[0], a[1], node)
    if op == "FusedDepthwiseConv2dNative":
        return _fused(_depthwise(a[0], a[1], node), a[2:], node)
    if op in ("Add", "AddV2", "BiasAdd"):
        return a[0] + a[1]
    if op == "Sub":
        return a[0] - a[1]
    if op == "Mul":
        return a[0] * a[1]
    if op == "Relu":
        return np.maximum(a[0], 0.0)
    if op == "Relu6":
        return np.clip(a[0], 0.0, 6.0)
    if op == "Minimum":
        return np.minimum(a[0], a[1])
    if op == "Maximum":
        return np.maximum(a[0], a[1])
    if op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-a[0]))
    if op == "Softmax":
        e = np.exp(a[0] - a[0].max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if op == "Mean":
        axes = tuple(int(i) for i in np.atleast_1d(a[1]))
        return a[0].mean(axis=axes, keepdims=bool(node.attrs.get("keep_dims", False)))
    if op == "_FusedMatMul":
        x = a[0].T if node.attrs.get("transpose_a") else a[0]
        w = a[1].T if node.attrs.get("transpose_b") else a[1]
        return _fused(x @ w, a[2:], node)
    if op == "MatMul":
        return a[0] @ a[1]
    if op == "MaxPool":
        return _max_pool(a[0], node)
    if op == "Pad":
        return np.pad(a[0], [tuple(int(v) for v in p) for p in a[1]])
    if op == "Reshape":
        return a[0].reshape(tuple(int(s) for s in np.atleast_1d(a[1])))
    if op == "Shape":
        return np.array(a[0].shape, dtype=np.int64)
    if op == "StridedSlice":
        return _strided_slice(a[0], a[1], a[2], a[3], node)
    if op == "Pack":
        return np.stack([np.asarray(v) for v in a], axis=node.attrs.get("axis", 0))
    if op == "ConcatV2":
        return np.concatenate(a[:-1], axis=int(a[-1]))
    raise NotImplementedError(f"op {op} ({node.name})")


def run_graph(
    graph: GraphModel, inputs: dict[str, np.ndarray], outputs: Sequence[str]
) -> dict[str, np.ndarray]:
    """Execute ``graph`` on ``inputs`` (placeholder name -> NHWC array); return ``outputs``.

    Computes in float64. Only the nodes the outputs need are run.
    """
    by_name = {n.name: n for n in graph.nodes}
    values: dict[str, Any] = {}

    def value(name: str) -> Any:
        name = name.removesuffix(":0")
        if name in values:
            return values[name]
        stack = [name]
        while stack:  # iterative post-order: graphs are deeper than Python's recursion limit
            top = stack[-1]
            if top in values:
                stack.pop()
                continue
            node = by_name[top]
            missing = [i for i in node.inputs if i not in values]
            if node.op in ("Const", "Placeholder") or not missing:
                stack.pop()
                if node.op == "Const":
                    w = graph.weights[top]
                    values[top] = w.astype(np.float64) if w.dtype == np.float32 else w
                elif node.op == "Placeholder":
                    values[top] = np.asarray(inputs[top], dtype=np.float64)
                else:
                    values[top] = _run(node, [values[i] for i in node.inputs])
            else:
                stack.extend(missing)
        return values[name]

    return {o: value(o) for o in outputs}
