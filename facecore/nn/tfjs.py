"""Read a TensorFlow.js graph model (``model.json`` + ``.bin`` shards) without TensorFlow.

A TF.js *graph model* is a frozen TensorFlow graph written by ``tensorflowjs_converter``
(format ``"graph-model"``). ``model.json`` holds

* ``modelTopology.node``: the graph's nodes, each ``{"name", "op", "input", "attr"}`` as in
  TensorFlow's ``NodeDef`` in JSON form (attribute values are typed: ``{"i": "2"}``,
  ``{"s": <base64>}``, ``{"list": {"i": [...]}}``, ...);
* ``weightsManifest``: groups ``{"paths": [...], "weights": [{"name", "shape", "dtype",
  "quantization"?}, ...]}``. The group's files are concatenated and the weights follow each other
  in that byte stream, in the order listed. A weight with ``quantization`` is stored as
  ``float16`` (2 bytes per value) or as ``uint8`` / ``uint16`` codes ``q`` with the value
  ``q * scale + min``; it is returned as float32 here.

:func:`read_graph_model` returns the nodes with decoded attributes and the weights as numpy
arrays; what to do with them (a PyTorch port, a reference interpreter in the tests) is up to the
caller. Only what the vendored models use is supported: a weight of another dtype or
quantization, or a control-flow op a caller does not handle, is the caller's clear error.

This module implements no paper; the format is TensorFlow.js's (``tfjs-converter``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GraphModel", "Node", "decode_attr", "read_graph_model", "read_weights"]

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANTIZED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


@dataclass(frozen=True)
class Node:
    """One node of the graph.

    Attributes
    ----------
    name : str
        The node's (unique) name.
    op : str
        The TensorFlow op, e.g. ``"Conv2D"``, ``"_FusedConv2D"``, ``"Const"``.
    inputs : tuple of str
        Names of the nodes it reads. A ``:0`` output suffix is dropped (``"a:0"`` -> ``"a"``);
        other outputs keep theirs (``"split:1"``); control inputs (``"^a"``) are not listed.
    attrs : dict
        Decoded attributes (:func:`decode_attr`), e.g. ``{"strides": [1, 2, 2, 1],
        "padding": "SAME", "fused_ops": ["BiasAdd", "Relu"]}``.
    """

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphModel:
    """A TF.js graph model as read by :func:`read_graph_model`.

    Attributes
    ----------
    path : Path
        The ``model.json`` it was read from.
    nodes : tuple of Node
        In the file's order (TF.js writes them topologically sorted for the models read here,
        which :meth:`topological` does not rely on).
    weights : dict of str to ndarray
        Every weight of the manifest by node name (float32, int32 or bool arrays).
    signature : dict
        The file's ``signature`` (or ``userDefinedMetadata.signature``): input and output names
        and shapes, as stored.
    """

    path: Path
    nodes: tuple[Node, ...]
    weights: dict[str, np.ndarray]
    signature: dict[str, Any]

    def node(self, name: str) -> Node:
        """The node called ``name`` (an output suffix ``:0`` is ignored).

        Raises
        ------
        KeyError
            If the graph has no such node.
        """
        name = name.removesuffix(":0")
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"{self.path.name} has no node {name!r}")

    def ops(self, op: str) -> list[Node]:
        """The nodes whose op is ``op``, in file order."""
        return [n for n in self.nodes if n.op == op]

    def topological(self) -> Iterator[Node]:
        """The nodes, each after every node it reads (depth-first from the file's order)."""
        by_name = {n.name: n for n in self.nodes}
        done: set[str] = set()
        for root in self.nodes:
            stack: list[tuple[Node, bool]] = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if node.name in done:
                    continue
                if expanded:
                    done.add(node.name)
                    yield node
                    continue
                stack.append((node, True))
                for i in node.inputs:
                    parent = by_name.get(i.split(":")[0])
                    if parent is not None and parent.name not in done:
                        stack.append((parent, False))

    @property
    def output_names(self) -> list[str]:
        """The signature's output node names (suffix ``:0`` dropped), sorted."""
        outputs = self.signature.get("outputs", {})
        return sorted(str(o.get("name", k)).removesuffix(":0") for k, o in outputs.items())


def decode_attr(value: dict[str, Any]) -> Any:
    """One attribute value of a node in TensorFlow's JSON form, as a Python value.

    ``{"i": "2"}`` -> 2, ``{"f": 0.5}`` -> 0.5, ``{"b": true}`` -> True, ``{"s": base64}`` -> str,
    ``{"type": "DT_FLOAT"}`` -> ``"DT_FLOAT"``, ``{"shape": {"dim": [{"size": "-1"}, ...]}}`` ->
    ``[-1, ...]``, ``{"list": {"i": [...]}}`` -> list of int (likewise ``f``, ``s``, ``b``;
    ``{"list": {}}`` -> ``[]``), ``{"tensor": ...}`` -> the dict as stored (the tensor's values
    are in the weights).
    """
    if "list" in value:
        items = value["list"]
        for key in ("i", "f", "s", "b", "type"):
            if key in items:
                return [decode_attr({key: v}) for v in items[key]]
        return []
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8", errors="replace")
    if "type" in value:
        return str(value["type"])
    if "shape" in value:
        return [int(d.get("size", -1)) for d in value["shape"].get("dim", [])]
    return value


def _node(d: dict[str, Any]) -> Node:
    inputs = tuple(i.removesuffix(":0") for i in d.get("input", []) if not str(i).startswith("^"))
    attrs = {k: decode_attr(v) for k, v in d.get("attr", {}).items()}
    return Node(name=d["name"], op=d["op"], inputs=inputs, attrs=attrs)


def read_weights(manifest: list[dict[str, Any]], folder: Path) -> dict[str, np.ndarray]:
    """The weights of a ``weightsManifest`` whose shard files are in ``folder``.

    Parameters
    ----------
    manifest : list of dict
        The ``weightsManifest`` of ``model.json``.
    folder : Path
        The folder of ``model.json`` (shard paths are relative to it).

    Returns
    -------
    dict of str to ndarray
        float32 (also for quantized weights), int32 or bool arrays of the listed shapes.

    Raises
    ------
    ValueError
        A dtype or quantization this reader does not know, or shards shorter or longer than the
        weights they should hold.
    """
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = tuple(int(s) for s in w["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quant = w.get("quantization")
            if quant:
                qtype = _QUANTIZED.get(quant.get("dtype"))
                if qtype is None:
                    raise ValueError(f"weight {w['name']!r}: unknown quantization {quant!r}")
                stored = np.dtype(qtype)
            else:
                if w["dtype"] not in _DTYPES:
                    raise ValueError(f"weight {w['name']!r}: unsupported dtype {w['dtype']!r}")
                stored = np.dtype(_DTYPES[w["dtype"]])
            size = count * stored.itemsize
            if offset + size > len(buf):
                raise ValueError(f"{group['paths']}: too short for weight {w['name']!r}")
            raw = np.frombuffer(buf, dtype=stored.newbyteorder("<"), count=count, offset=offset)
            offset += size
            if quant and stored == np.float16:
                arr = raw.astype(np.float32)
            elif quant:
                arr = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
            else:
                arr = raw.astype(stored)  # a native-order copy
            if quant and w["dtype"] == "int32":
                arr = np.round(arr).astype(np.int32)
            weights[w["name"]] = arr.reshape(shape)
        if offset != len(buf):
            raise ValueError(f"{group['paths']}: {len(buf) - offset} bytes left after the weights")
    return weights


def read_graph_model(path: str | os.PathLike[str]) -> GraphModel:
    """Read a TF.js graph model: its nodes and its weights.

    Parameters
    ----------
    path : path-like
        The ``model.json`` file (e.g. ``../shared/vendor/human-models-3.0.4/faceres.json``); its
        weight shards are read from the same folder.

    Returns
    -------
    GraphModel

    Raises
    ------
    FileNotFoundError
        If ``path`` or a shard is missing.
    ValueError
        If the file is not a graph model, or its weights cannot be read (see
        :func:`read_weights`).
    """
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("format") != "graph-model" or "modelTopology" not in doc:
        raise ValueError(f"{path} is not a TensorFlow.js graph model")
    nodes = tuple(_node(d) for d in doc["modelTopology"].get("node", []))
    weights = read_weights(doc.get("weightsManifest", []), path.parent)
    signature = doc.get("signature") or doc.get("userDefinedMetadata", {}).get("signature") or {}
    return GraphModel(path=path, nodes=nodes, weights=weights, signature=signature)
