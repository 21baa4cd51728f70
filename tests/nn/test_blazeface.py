"""The BlazeFace port computes what the vendored TF.js graphs compute, in both layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tfjs_reference import run_graph

from facecore import model_router, model_store
from facecore.nn.blazeface import BlazeFaceConfig, config_dict, from_graph, load_blazeface
from facecore.nn.tfjs import read_graph_model

pytestmark = pytest.mark.usefixtures("torch_single_thread")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: Vendored graph -> (manifest entry, input side).
GRAPHS = {
    "blazeface": ("blazeface_back", 256),
    "facemesh-detection-short": ("blazeface_short", 128),
}


def _reference(graph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, A) logits and (N, A, 16) regressors of the graph run node by node in numpy, one
    image at a time (blazeface.json's reshapes have batch 1 built in)."""
    runs = [run_graph(graph, {"input": x[i : i + 1]}, graph.output_names) for i in range(len(x))]
    out = {k: np.concatenate([r[k] for r in runs]) for k in runs[0]}
    if "Identity_3" in out:  # blazeface.json: four outputs, 16x16 map before 8x8
        scores = np.concatenate([out["Identity"], out["Identity_1"]], axis=1)[..., 0]
        return scores, np.concatenate([out["Identity_2"], out["Identity_3"]], axis=1)
    objects = out["Identity"]  # short range: (N, 896, 17), the score first
    return objects[..., 0], objects[..., 1:]


def _inputs(size: int) -> np.ndarray:
    """Two fixture photos squashed to the input size, scaled to [-1, 1] (N, S, S, 3)."""
    out = []
    for name in ("obama.jpg", "two_people.jpg"):
        rgb = cv2.cvtColor(cv2.imread(str(FIXTURES / name)), cv2.COLOR_BGR2RGB)
        out.append(cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA) / 127.5 - 1.0)
    return np.stack(out)


@pytest.mark.parametrize("graph_name", sorted(GRAPHS))
def test_port_matches_the_graph_executed_node_by_node(vendor: Path, graph_name: str) -> None:
    graph = read_graph_model(vendor / f"{graph_name}.json")
    model = from_graph(graph)
    size = GRAPHS[graph_name][1]
    assert model.config.input_size == size and model.config.num_anchors == 896
    assert model.config.grids() == [(16, 2), (8, 6)]
    x = _inputs(size)
    ref_scores, ref_boxes = _reference(graph, x)
    nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        scores64, boxes64 = model.double()(nchw)
        scores32, boxes32 = model.float()(nchw.float())
    # In float64 the port is the graph (1e-12 measured): same layers, padding, anchor order.
    np.testing.assert_allclose(scores64.numpy(), ref_scores, rtol=0, atol=1e-9)
    np.testing.assert_allclose(boxes64.numpy(), ref_boxes, rtol=0, atol=1e-9)
    # In float32 rounding accumulates over ~30 blocks whose activations reach the hundreds:
    # measured 5.5e-4 on logits of magnitude ~10 and 1.4e-4 on regressors of magnitude ~230.
    np.testing.assert_allclose(scores32.numpy(), ref_scores, rtol=0, atol=1e-3)
    np.testing.assert_allclose(boxes32.numpy(), ref_boxes, rtol=0, atol=1e-3)
    assert ref_scores.max() > 2.0  # a face is there: not a comparison of empty outputs


@pytest.mark.parametrize("graph_name", sorted(GRAPHS))
def test_shipped_file_holds_the_graph(vendor: Path, graph_name: str) -> None:
    entry, size = GRAPHS[graph_name]
    spec = model_store.get_spec(entry)
    assert spec.task == "face_detection" and spec.architecture == "blazeface"
    assert spec.input_size == (size, size)
    assert spec.extra["upstream"]["version"] == "3.0.4"
    model = load_blazeface(model_router.resolve(entry))
    expected = from_graph(read_graph_model(vendor / f"{graph_name}.json"))
    assert model.config == expected.config
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_config_round_trips_and_counts_anchors() -> None:
    config = BlazeFaceConfig(
        input_size=64,
        stem_kernel=5,
        stem_channels=8,
        blocks=((8, 1, True), (16, 2, True), (16, 2, False)),
        heads=((1, 2), (2, 3)),
    )
    assert config.grids() == [(16, 2), (8, 3)]
    assert config.num_anchors == 16 * 16 * 2 + 8 * 8 * 3
    assert BlazeFaceConfig.from_dict(config_dict(config)) == config
