"""VGG-Face: architecture, preprocessing and the loaders for the original weight files.

No real weights are available offline, so the tests write files in the release's own formats:

* a MatConvNet ``vgg_face.mat`` built from random numpy arrays in MatConvNet layout (filters
  ``H x W x in x out``, fully-connected layers as convolutions), and checked against an
  independent numpy implementation of MatConvNet's SimpleNN forward pass (correlation, ReLU,
  2x2 max-pool, fc as "valid" convolution on the H x W x C map). Agreement proves the filter
  transposition and the fc6 flattening order without relying on the loader's own inverse;
* a PyTorch state dict with the pytorch-mcn key names (``conv1_1.weight`` ... ``fc8.bias``).

A small configuration with a non-square input (pool5 is 2 x 3) keeps it fast and would expose
any H/W swap; the full-size network is only built on the ``meta`` device.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from numpy.lib.stride_tricks import sliding_window_view

from facecore.errors import ModelCorruptError, ModelNotFoundError
from facecore.nn.registry import create_model, is_model
from facecore.nn.resnet import resnet_tiny
from facecore.nn.vggface import (
    VGGFACE_MEAN_RGB,
    VGGFace,
    load_vggface_weights,
    read_vggface_weights,
    vgg_face,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module

SMALL: dict[str, Any] = {
    "widths": (4, 6, 8, 8, 8),
    "depths": (2, 2, 3, 3, 3),
    "fc_width": 16,
    "num_classes": 5,
    "input_size": (64, 96),
}
POOL5_HW = (2, 3)
CLASS_NAMES = ("Alice", "Bob", "Carol", "Dan", "Eve")


def _conv_names(depths: tuple[int, ...]) -> list[str]:
    return [f"conv{b}_{i}" for b, d in enumerate(depths, start=1) for i in range(1, d + 1)]


# ------------------------------------------------------------------ MatConvNet-layout fixtures


def _random_mcn_params(seed: int = 0, cfg: dict[str, Any] = SMALL) -> dict[str, tuple]:
    """Random float32 (filters H x W x in x out, biases) per layer, in MatConvNet layout."""
    rng = np.random.default_rng(seed)
    params: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    in_ch = 3
    for b, (w, d) in enumerate(zip(cfg["widths"], cfg["depths"], strict=True), start=1):
        for i in range(1, d + 1):
            scale = math.sqrt(2.0 / (9 * in_ch))
            f = rng.normal(0.0, scale, (3, 3, in_ch, w)).astype(np.float32)
            params[f"conv{b}_{i}"] = (f, rng.normal(0.0, 0.1, w).astype(np.float32))
            in_ch = w
    fc, k = cfg["fc_width"], cfg["num_classes"]
    h, w = POOL5_HW
    params["fc6"] = (
        rng.normal(0.0, math.sqrt(2.0 / (h * w * in_ch)), (h, w, in_ch, fc)).astype(np.float32),
        rng.normal(0.0, 0.1, fc).astype(np.float32),
    )
    params["fc7"] = (
        rng.normal(0.0, math.sqrt(2.0 / fc), (1, 1, fc, fc)).astype(np.float32),
        rng.normal(0.0, 0.1, fc).astype(np.float32),
    )
    params["fc8"] = (
        rng.normal(0.0, math.sqrt(1.0 / fc), (1, 1, fc, k)).astype(np.float32),
        rng.normal(0.0, 0.1, k).astype(np.float32),
    )
    return params


def _cell(items: list[Any]) -> np.ndarray:
    c = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        c[0, i] = item
    return c


def _simplenn_layers(
    params: dict[str, tuple], depths: tuple[int, ...], pad_override: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """The release's layer list: convs, relus, pools, fc6..fc8 as convolutions, softmax."""
    pad_override = pad_override or {}
    layers: list[dict[str, Any]] = []

    def conv(name: str, pad: int) -> dict[str, Any]:
        f, b = params[name]
        return {
            "name": name,
            "type": "conv",
            "weights": _cell([f, b.reshape(1, -1)]),
            "stride": np.array([[1.0, 1.0]]),
            "pad": np.full((1, 4), float(pad_override.get(name, pad))),
            "precious": False,
        }

    for b, d in enumerate(depths, start=1):
        for i in range(1, d + 1):
            if f"conv{b}_{i}" in params:
                layers.append(conv(f"conv{b}_{i}", 1))
            layers.append({"name": f"relu{b}_{i}", "type": "relu"})
        layers.append(
            {
                "name": f"pool{b}",
                "type": "pool",
                "method": "max",
                "pool": np.array([[2.0, 2.0]]),
                "stride": np.array([[2.0, 2.0]]),
                "pad": np.zeros((1, 4)),
            }
        )
    for n, name in enumerate(("fc6", "fc7", "fc8"), start=6):
        if name in params:
            layers.append(conv(name, 0))
        if name != "fc8":
            layers.append({"name": f"relu{n}", "type": "relu"})
    layers.append({"name": "prob", "type": "softmax"})
    return layers


def _write_mat(
    path: Path,
    params: dict[str, tuple],
    layout: str = "release",
    mean: tuple[float, float, float] = VGGFACE_MEAN_RGB,
    depths: tuple[int, ...] = SMALL["depths"],
    pad_override: dict[str, int] | None = None,
) -> Path:
    """Save ``params`` the way the original ``vgg_face.mat`` (or MatConvNet's copy) is laid out."""
    layers = _cell(_simplenn_layers(params, depths, pad_override))
    normalization = {
        "averageImage": np.array(mean, dtype=np.float32).reshape(1, 1, 3),
        "imageSize": np.array([[*SMALL["input_size"], 3]], dtype=np.float64),
        "interpolation": "bilinear",
        "keepAspect": True,
        "border": np.zeros((1, 2)),
    }
    classes = {"name": _cell(list(CLASS_NAMES)), "description": _cell(list(CLASS_NAMES))}
    if layout == "release":  # vgg_face_matconvnet/data/vgg_face.mat
        content = {"net": {"layers": layers, "normalization": normalization, "classes": classes}}
    else:  # vlfeat.org/matconvnet/models/vgg-face.mat, saved with -struct
        content = {
            "layers": layers,
            "meta": {"normalization": normalization, "classes": classes},
        }
    scipy.io.savemat(str(path), content, do_compression=True)
    return path


def _mcn_forward(params: dict[str, tuple], image_hwc: np.ndarray) -> dict[str, np.ndarray]:
    """MatConvNet SimpleNN semantics in numpy (float64), independent of the loader.

    ``vl_nnconv``: y(i, j, o) = b(o) + sum_{u, v, c} f(u, v, c, o) x(i + u, j + v, c) (a
    correlation; fc layers are the same with no padding over the whole map); ``vl_nnpool``: 2x2
    max with stride 2.
    """
    out: dict[str, np.ndarray] = {}

    def conv(x: np.ndarray, name: str, pad: int) -> np.ndarray:
        f, b = params[name]
        f = f.astype(np.float64)
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
        win = sliding_window_view(x, f.shape[:2], axis=(0, 1))  # (H', W', C, kh, kw)
        return np.einsum("ijcuv,uvco->ijo", win, f) + b.astype(np.float64)

    x = image_hwc.astype(np.float64)
    for b, d in enumerate(SMALL["depths"], start=1):
        for i in range(1, d + 1):
            x = np.maximum(conv(x, f"conv{b}_{i}", 1), 0.0)
        h, w, c = x.shape
        x = x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
        out[f"pool{b}"] = x
    x = conv(x, "fc6", 0)
    out["fc6"] = x.reshape(-1)
    x = conv(np.maximum(x, 0.0), "fc7", 0)
    out["fc7"] = x.reshape(-1)
    out["fc8"] = conv(np.maximum(x, 0.0), "fc8", 0).reshape(-1)
    return out


def _mcn_state_dict(model: VGGFace) -> dict[str, torch.Tensor]:
    """The model's parameters under the pytorch-mcn (``vgg_face_dag.pth``) key names."""
    return {
        (k.split(".", 1)[1] if k.startswith("block") else k): v.clone()
        for k, v in model.state_dict().items()
    }


def _images(n: int = 2, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *SMALL["input_size"], 3), dtype=np.uint8)


def _params_of(model: VGGFace) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def mcn_params() -> dict[str, tuple]:
    return _random_mcn_params()


@pytest.fixture(scope="module")
def release_mat(tmp_path_factory: pytest.TempPathFactory, mcn_params: dict) -> Path:
    return _write_mat(tmp_path_factory.mktemp("mat") / "vgg_face.mat", mcn_params)


# ------------------------------------------------------------------ architecture


def test_full_network_has_the_published_layout() -> None:
    with torch.device("meta"):
        model = VGGFace()
        stages = model.forward_stages(torch.empty(1, 3, 224, 224))
        logits = model(torch.empty(1, 3, 224, 224))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["block1.conv1_1.weight"] == (64, 3, 3, 3)
    assert shapes["block3.conv3_3.weight"] == (256, 256, 3, 3)
    assert shapes["block5.conv5_3.weight"] == (512, 512, 3, 3)
    assert shapes["fc6.weight"] == (4096, 512 * 7 * 7)
    assert shapes["fc7.weight"] == (4096, 4096)
    assert shapes["fc8.weight"] == (2622, 4096)
    assert len(model.layer_names) == 16  # 13 conv + 3 fc: VGG-16
    assert sum(p.numel() for p in model.parameters()) == 145_002_878
    assert model.default_input_size == (3, 224, 224)
    assert model.num_features == 512
    assert [i["num_chs"] for i in model.feature_info] == [64, 128, 256, 512, 512]
    assert [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16, 32]
    for stage, info in zip(stages, model.feature_info, strict=True):
        side = 224 // info["reduction"]
        assert tuple(stage.shape) == (1, info["num_chs"], side, side)
        assert isinstance(model.get_submodule(info["module"]), torch.nn.Sequential)
    assert tuple(logits.shape) == (1, 2622)


def test_small_network_stages_features_head_and_embed() -> None:
    torch.manual_seed(0)
    model = VGGFace(**SMALL).eval()
    x = model.preprocess(_images())
    with torch.no_grad():
        stages = model.forward_stages(x)
        features = model.forward_features(x)
        logits = model(x)
        pre = model.forward_head(features, pre_logits=True)
        fc7 = model.embed(x)
        fc6_raw = model.embed(x, layer="fc6", relu=False)
        unit = model.embed(x, normalize=True)
    h, w = SMALL["input_size"]
    for stage, info in zip(stages, model.feature_info, strict=True):
        r = info["reduction"]
        assert tuple(stage.shape) == (2, info["num_chs"], h // r, w // r)
    assert tuple(features.shape) == (2, 8, *POOL5_HW)
    torch.testing.assert_close(stages[-1], features)
    torch.testing.assert_close(model.forward_head(features), logits)
    assert tuple(logits.shape) == (2, 5)
    torch.testing.assert_close(pre, fc7)  # eval: dropout is the identity
    torch.testing.assert_close(fc6_raw, model.fc6(features.flatten(1)))
    assert (fc7 >= 0).all() and (fc6_raw < 0).any()
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="fc6 or 'fc7'|'fc6' or 'fc7'"):
        model.embed(x, layer="fc8")  # type: ignore[arg-type]


def test_dropout_only_in_training_and_headless_variant() -> None:
    torch.manual_seed(0)
    model = VGGFace(**{**SMALL, "fc_width": 64})
    x = model.preprocess(_images(1))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    headless = VGGFace(**{**SMALL, "num_classes": 0})
    assert tuple(headless(x).shape) == (1, SMALL["fc_width"])
    assert "fc8" not in headless.layer_names


def test_head_rejects_a_map_of_the_wrong_size() -> None:
    model = VGGFace(**SMALL)
    with pytest.raises(ValueError, match=r"pool5 map of shape \(N, 8, 2, 3\)"):
        model.forward_head(torch.zeros(1, 8, 3, 3))
    with pytest.raises(ValueError, match="multiple of 32"):
        VGGFace(input_size=100)
    with pytest.raises(ValueError, match="5 entries"):
        VGGFace(widths=(64, 128))


# ------------------------------------------------------------------ preprocessing


def test_preprocess_subtracts_the_rgb_mean_without_scaling() -> None:
    model = VGGFace(**SMALL)
    img = np.zeros((*SMALL["input_size"], 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 50  # R, G, B
    x = model.preprocess(img)
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 3, *SMALL["input_size"])
    expected = torch.tensor([200 - 129.1863, 100 - 104.7624, 50 - 93.5940])
    torch.testing.assert_close(x[0, :, 5, 7], expected)
    batch = model.preprocess(torch.from_numpy(np.stack([img, img])))
    torch.testing.assert_close(batch[1], x[0])
    with pytest.raises(ValueError, match="uint8"):
        model.preprocess(img.astype(np.float32))
    with pytest.raises(ValueError, match=r"shape \(N, 64, 96, 3\)"):
        model.preprocess(np.zeros((2, 96, 64, 3), dtype=np.uint8))
    assert VGGFace.default_input_size == (3, 224, 224)


# ------------------------------------------------------------------ MatConvNet .mat files


@pytest.mark.parametrize("layout", ["release", "matconvnet-page"])
def test_mat_file_matches_a_matconvnet_reference_forward(
    tmp_path: Path, mcn_params: dict, layout: str
) -> None:
    path = _write_mat(tmp_path / "weights.bin", mcn_params, layout=layout)  # name says nothing
    model = VGGFace(**SMALL)
    assert load_vggface_weights(model, path) is model
    assert not model.training
    assert model.class_names == CLASS_NAMES

    image = _images(1)[0]
    x = model.preprocess(image)
    with torch.no_grad():
        stages = model.forward_stages(x)
        fc6 = model.embed(x, layer="fc6", relu=False)
        fc7 = model.embed(x, layer="fc7", relu=False)
        logits = model(x)
    ref = _mcn_forward(mcn_params, image.astype(np.float64) - np.array(VGGFACE_MEAN_RGB))
    for b, stage in enumerate(stages, start=1):
        got = stage[0].permute(1, 2, 0).double().numpy()  # (C, H, W) -> MatConvNet's (H, W, C)
        np.testing.assert_allclose(got, ref[f"pool{b}"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fc6[0].double().numpy(), ref["fc6"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fc7[0].double().numpy(), ref["fc7"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits[0].double().numpy(), ref["fc8"], rtol=1e-4, atol=1e-4)


def test_fc6_flatten_order_is_h_w_c_in_the_file(tmp_path: Path, mcn_params: dict) -> None:
    """One fc6 filter entry f(h, w, c, o) must multiply pool5 at (c, h, w) in PyTorch."""
    params = dict(mcn_params)
    f6 = np.zeros_like(params["fc6"][0])
    f6[1, 2, 5, 3] = 1.0  # h=1, w=2, c=5 -> output 3
    params["fc6"] = (f6, np.zeros_like(params["fc6"][1]))
    model = load_vggface_weights(VGGFace(**SMALL), _write_mat(tmp_path / "w.mat", params))
    pool5 = torch.randn(1, 8, *POOL5_HW)
    with torch.no_grad():
        out = model.fc6(pool5.flatten(1))
    expected = torch.zeros(1, SMALL["fc_width"])
    expected[0, 3] = pool5[0, 5, 1, 2]
    torch.testing.assert_close(out, expected)


def test_mat_mean_replaces_the_default(tmp_path: Path, mcn_params: dict) -> None:
    path = _write_mat(tmp_path / "w.mat", mcn_params, mean=(1.0, 2.0, 3.0))
    weights = read_vggface_weights(path)
    assert weights.format == "matconvnet"
    assert weights.mean_rgb == (1.0, 2.0, 3.0)
    model = load_vggface_weights(VGGFace(**SMALL), path)
    x = model.preprocess(np.full((*SMALL["input_size"], 3), 10, dtype=np.uint8))
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([9.0, 8.0, 7.0]))


# ------------------------------------------------------------------ PyTorch state dicts


def test_pytorch_mcn_state_dict_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = VGGFace(**SMALL).eval()
    state = _mcn_state_dict(source)
    assert "conv1_1.weight" in state and "fc6.weight" in state
    torch.save(state, tmp_path / "vgg_face_dag.pth")
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pt"
    )
    torch.save(source.state_dict(), tmp_path / "facecore.pth")
    conv_fc = dict(state)
    conv_fc["fc6.weight"] = state["fc6.weight"].reshape(SMALL["fc_width"], 8, *POOL5_HW)
    conv_fc["fc7.weight"] = state["fc7.weight"][:, :, None, None]
    torch.save(conv_fc, tmp_path / "fc_as_conv.pth")

    x = source.preprocess(_images())
    with torch.no_grad():
        expected = source(x)
    for name in ("vgg_face_dag.pth", "wrapped.pt", "facecore.pth", "fc_as_conv.pth"):
        model = load_vggface_weights(VGGFace(**SMALL), tmp_path / name)
        assert read_vggface_weights(tmp_path / name).format == "torch"
        with torch.no_grad():
            assert torch.equal(model(x), expected), name


def test_mat_and_pth_of_the_same_weights_agree(tmp_path: Path, release_mat: Path) -> None:
    from_mat = load_vggface_weights(VGGFace(**SMALL), release_mat)
    torch.save(_mcn_state_dict(from_mat), tmp_path / "converted.pth")
    from_pth = load_vggface_weights(VGGFace(**SMALL), tmp_path / "converted.pth")
    x = from_mat.preprocess(_images())
    with torch.no_grad():
        assert torch.equal(from_mat(x), from_pth(x))


# ------------------------------------------------------------------ registry and transfer


def test_registry_factory_loads_weights(release_mat: Path) -> None:
    assert is_model("vgg_face")
    small = {k: v for k, v in SMALL.items() if k != "num_classes"}
    direct = load_vggface_weights(VGGFace(**SMALL), release_mat)
    built = create_model(
        "vgg_face", weights=str(release_mat), num_classes=5, load_classifier=True, **small
    )
    x = direct.preprocess(_images(1))
    with torch.no_grad():
        assert torch.equal(built(x), direct(x))

    # Another num_classes: everything but fc8 comes from the file (transfer learning).
    torch.manual_seed(0)
    transfer = vgg_face(weights=release_mat, num_classes=3, **small)
    assert transfer.fc8.weight.shape == (3, 16)
    for name in ("conv1_1", "conv5_3", "fc6", "fc7"):
        assert torch.equal(transfer.layer(name).weight, direct.layer(name).weight), name
    assert transfer.class_names is None
    with torch.no_grad():
        torch.testing.assert_close(transfer.embed(x), direct.embed(x))
    with pytest.raises(ModelCorruptError, match="fc8.*load_classifier=False"):
        vgg_face(weights=release_mat, num_classes=3, load_classifier=True, **small)


# ------------------------------------------------------------------ bad files


def _assert_unchanged(model: VGGFace, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        load_vggface_weights(VGGFace(**SMALL), tmp_path / "vgg_face.mat")
    with pytest.raises(TypeError, match="VGGFace"):
        load_vggface_weights(resnet_tiny(), tmp_path / "vgg_face.mat")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("truncated_mat", "not a readable MATLAB"),
        ("garbage", "neither a MATLAB .mat file"),
        ("v73", "v7.3"),
        ("no_fc7", r"missing VGG-Face layers \['fc7'\]"),
        ("no_convs", r"missing VGG-Face layers \['conv1_1', 'conv1_2'"),
        ("wrong_shape", r"conv3_2: file has filters 3x3x8x6 \(H x W x in x out\)"),
        ("wrong_pad", r"conv2_1: stride \(1, 1\) / pad \(0, 0, 0, 0\)"),
        ("other_mat", r"no MatConvNet network.*\['weights'\]"),
        ("truncated_pth", "not a readable PyTorch state dict"),
        ("resnet_pth", "no VGG-Face layer"),
        ("luatorch_pth", "LuaTorch"),
        ("model_pth", "not a state dict of tensors"),
        ("wrong_classes", r"fc8: file has filters 1x1x16x5 .* model needs weight \(7, 16\)"),
    ],
)
def test_bad_files_give_clear_errors_and_leave_the_model_unchanged(
    tmp_path: Path, mcn_params: dict, release_mat: Path, make: str, message: str
) -> None:
    path = tmp_path / f"{make}.file"
    model_kwargs = SMALL
    if make == "truncated_mat":
        data = release_mat.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif make == "garbage":
        path.write_bytes(b"\x00\x01not a model" * 100)
    elif make == "v73":
        path.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" ") + b"\x89HDF")
    elif make == "no_fc7":
        _write_mat(path, {k: v for k, v in mcn_params.items() if k != "fc7"})
    elif make == "no_convs":
        _write_mat(path, {k: v for k, v in mcn_params.items() if not k.startswith("conv1")})
    elif make == "wrong_shape":
        bad = dict(mcn_params)
        bad["conv3_2"] = (np.zeros((3, 3, 8, 6), np.float32), np.zeros(6, np.float32))
        _write_mat(path, bad)
    elif make == "wrong_pad":
        _write_mat(path, mcn_params, pad_override={"conv2_1": 0})
    elif make == "other_mat":
        scipy.io.savemat(str(path), {"weights": np.zeros((3, 3))})
    elif make == "truncated_pth":
        torch.save(_mcn_state_dict(VGGFace(**SMALL)), tmp_path / "full.pth")
        data = (tmp_path / "full.pth").read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif make == "resnet_pth":
        torch.save(resnet_tiny().state_dict(), path)
    elif make == "luatorch_pth":
        state = _mcn_state_dict(VGGFace(**SMALL))
        torch.save({k.replace("conv1_1", "conv_1_1"): v for k, v in state.items()}, path)
    elif make == "model_pth":
        torch.save({"epoch": 3}, path)
    elif make == "wrong_classes":
        model_kwargs = {**SMALL, "num_classes": 7}
        path = release_mat
    model = VGGFace(**model_kwargs)
    before = _params_of(model)
    mean_before = model.input_mean.clone()
    with pytest.raises(ModelCorruptError, match=message) as info:
        load_vggface_weights(model, path)
    assert str(path) in str(info.value)
    _assert_unchanged(model, before)
    assert torch.equal(model.input_mean, mean_before)


def test_missing_classifier_is_fine_without_load_classifier(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {k: v for k, v in _mcn_state_dict(VGGFace(**SMALL)).items() if not k.startswith("fc8")}
    torch.save(state, tmp_path / "no_fc8.pth")
    with pytest.raises(ModelCorruptError, match=r"missing VGG-Face layers \['fc8'\]"):
        load_vggface_weights(VGGFace(**SMALL), tmp_path / "no_fc8.pth")
    model = VGGFace(**SMALL)
    fc8 = model.fc8.weight.detach().clone()
    load_vggface_weights(model, tmp_path / "no_fc8.pth", load_classifier=False)
    assert torch.equal(model.fc8.weight, fc8)
    assert torch.equal(model.fc7.weight, state["fc7.weight"])
