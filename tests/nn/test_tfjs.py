"""The TF.js graph-model reader: attributes, weight shards and quantization, the vendored files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from facecore.nn.tfjs import decode_attr, read_graph_model, read_weights


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"i": "2"}, 2),
        ({"f": 0.5}, 0.5),
        ({"b": True}, True),
        ({"s": _b64("SAME")}, "SAME"),
        ({"type": "DT_FLOAT"}, "DT_FLOAT"),
        ({"shape": {"dim": [{"size": "-1"}, {"size": "224"}]}}, [-1, 224]),
        ({"list": {"i": ["1", "2", "2", "1"]}}, [1, 2, 2, 1]),
        ({"list": {"s": [_b64("BiasAdd"), _b64("Relu")]}}, ["BiasAdd", "Relu"]),
        ({"list": {}}, []),
    ],
)
def test_decode_attr(value: dict, expected: object) -> None:
    assert decode_attr(value) == expected


def _write_model(folder: Path, shards: list[bytes], weights: list[dict]) -> Path:
    names = []
    for i, data in enumerate(shards):
        names.append(f"group1-shard{i + 1}of{len(shards)}.bin")
        (folder / names[-1]).write_bytes(data)
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
        *({"name": w["name"], "op": "Const"} for w in weights),
        {
            "name": "y",
            "op": "Conv2D",
            "input": ["x:0", "k", "^x", "k:1"],
            "attr": {"padding": {"s": _b64("SAME")}, "strides": {"list": {"i": [1, 2, 2, 1]}}},
        },
    ]
    doc = {
        "format": "graph-model",
        "modelTopology": {"node": nodes},
        "weightsManifest": [{"paths": names, "weights": weights}],
        "signature": {"outputs": {"y:0": {"name": "y:0"}}},
    }
    path = folder / "model.json"
    path.write_text(json.dumps(doc))
    return path


def test_weights_span_shards_and_are_dequantized(tmp_path: Path) -> None:
    k = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    idx = np.array([1, 2], dtype=np.int32)
    half = np.array([0.1, -2.5, 3.0], dtype=np.float16)
    codes = np.array([0, 128, 255], dtype=np.uint8)
    data = k.tobytes() + idx.tobytes() + half.tobytes() + codes.tobytes()
    weights = [
        {"name": "k", "shape": [2, 3], "dtype": "float32"},
        {"name": "idx", "shape": [2], "dtype": "int32"},
        {"name": "h", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {
            "name": "q",
            "shape": [3],
            "dtype": "float32",
            "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
        },
    ]
    # Two shards cut inside the float32 weight: the reader must join them first.
    path = _write_model(tmp_path, [data[:10], data[10:]], weights)
    g = read_graph_model(path)
    np.testing.assert_array_equal(g.weights["k"], k)
    assert g.weights["idx"].dtype == np.int32 and list(g.weights["idx"]) == [1, 2]
    assert g.weights["h"].dtype == np.float32
    np.testing.assert_array_equal(g.weights["h"], half.astype(np.float32))
    np.testing.assert_allclose(g.weights["q"], [-1.0, 63.0, 126.5])
    y = g.node("y:0")
    assert y.inputs == ("x", "k", "k:1")  # ":0" dropped, control input "^x" left out
    assert y.attrs == {"padding": "SAME", "strides": [1, 2, 2, 1]}
    assert [n.name for n in g.ops("Const")] == ["k", "idx", "h", "q"]
    assert g.output_names == ["y"]
    with pytest.raises(KeyError, match="no node 'z'"):
        g.node("z")


def test_topological_order_puts_inputs_first(tmp_path: Path) -> None:
    path = _write_model(tmp_path, [np.zeros(1, np.float32).tobytes()], [])
    doc = json.loads(path.read_text())
    doc["weightsManifest"][0]["weights"] = [{"name": "k", "shape": [1], "dtype": "float32"}]
    doc["modelTopology"]["node"] = list(reversed(doc["modelTopology"]["node"]))
    doc["modelTopology"]["node"].append({"name": "k", "op": "Const"})
    path.write_text(json.dumps(doc))
    order = [n.name for n in read_graph_model(path).topological()]
    assert order.index("x") < order.index("y") and order.index("k") < order.index("y")
    assert sorted(order) == ["k", "x", "y"]


def test_bad_weight_files_are_clear_errors(tmp_path: Path) -> None:
    w = [{"name": "k", "shape": [4], "dtype": "float32"}]
    with pytest.raises(ValueError, match="too short for weight 'k'"):
        read_weights([{"paths": ["a.bin"], "weights": w}], _shard(tmp_path, 12))
    with pytest.raises(ValueError, match="4 bytes left"):
        read_weights([{"paths": ["a.bin"], "weights": w}], _shard(tmp_path, 20))
    bad = [{"name": "s", "shape": [1], "dtype": "string"}]
    with pytest.raises(ValueError, match="unsupported dtype 'string'"):
        read_weights([{"paths": ["a.bin"], "weights": bad}], _shard(tmp_path, 4))
    (tmp_path / "m.json").write_text(json.dumps({"format": "layers-model"}))
    with pytest.raises(ValueError, match="not a TensorFlow.js graph model"):
        read_graph_model(tmp_path / "m.json")


def _shard(folder: Path, size: int) -> Path:
    (folder / "a.bin").write_bytes(bytes(size))
    return folder


def test_vendored_faceres_graph(vendor: Path) -> None:
    g = read_graph_model(vendor / "faceres.json")
    assert len(g.nodes) == 283 and len(g.weights) == 128
    assert g.output_names == ["age_pred/Softmax", "gender_pred/Sigmoid", "global_pooling/Mean"]
    first = g.node("conv1_bn/batchnorm_1/mul_1")
    assert first.op == "Conv2D" and first.attrs["strides"] == [1, 2, 2, 1]
    assert first.attrs["padding"] == "SAME"
    kernel = g.weights[first.inputs[1]]
    assert kernel.shape == (3, 3, 3, 32) and kernel.dtype == np.float32
    # Stored as float16: every value is exactly a float16.
    np.testing.assert_array_equal(kernel.astype(np.float16).astype(np.float32), kernel)
    assert list(g.weights["global_pooling/Mean/reduction_indices"]) == [1, 2]
    fused = g.node("feats/Relu")
    assert fused.op == "_FusedMatMul" and fused.attrs["fused_ops"] == ["BiasAdd", "Relu"]
