"""The dlib .dat reader, the PyTorch port of dlib's face ResNet and its sklearn feature transformer.

Parity is checked against dlib itself: chips cut by ``dlib.get_face_chip`` from real photos,
descriptors from ``dlib.face_recognition_model_v1.compute_face_descriptor``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import dlib
import numpy as np
import pytest
import torch
from sklearn.base import clone

from facecore import model_router, model_store
from facecore.errors import ModelCorruptError, ModelNotFoundError
from facecore.nn.dlib_format import (
    AffineParams,
    ConvParams,
    DlibReader,
    FcParams,
    parse_dlib_net,
    read_dlib_net,
)
from facecore.nn.dlib_resnet import (
    FEATURE_NODES,
    INPUT_SCALE,
    INPUT_SIZE,
    DlibFaceResNet,
    dlib_face_resnet,
    padded_add,
)
from facecore.nn.features import DlibResNetFeatures
from facecore.nn.registry import create_model, default_weights, is_model, resolve_weights

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BUNDLED = ("obama.jpg", "biden.jpg", "two_people.jpg", "obama_small.jpg")
SHARED = (
    "alex-lacamoire.png",
    "lin-manuel-miranda.png",
    "johnsnow_test1.jpg",
    "kit_with_rose.jpg",
    "obama_and_biden.jpg",
    "obama3.jpg",
)
PARITY_ATOL = 1e-5
EXPECTED_SHAPES = {
    "stem": (32, 35, 35),
    "stage1": (32, 35, 35),
    "stage2": (64, 17, 17),
    "stage3": (128, 8, 8),
    "stage4": (256, 4, 4),
    "stage5": (256, 2, 2),
    "pooled": (256,),
    "embedding": (128,),
}


# ------------------------------------------------------------------------------ fixtures


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return model_router.resolve("dlib_face_recognition_resnet")


@pytest.fixture(scope="module")
def dat_bytes(dat_path: Path) -> bytes:
    return dat_path.read_bytes()


@pytest.fixture(scope="module")
def model() -> DlibFaceResNet:
    return DlibFaceResNet.from_dlib_file()


@pytest.fixture(scope="module")
def dlib_tools() -> tuple[object, object, object]:
    m = _models_dir()
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(m / "shape_predictor_68_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(m / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def _chips_and_descriptors(
    paths: list[Path], tools: tuple[object, object, object]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every detected face's 150x150 chip and dlib's own descriptor of it."""
    detector, predictor, recognizer = tools
    chips, descriptors, names = [], [], []
    for path in paths:
        img = dlib.load_rgb_image(str(path))
        upsample = 1 if max(img.shape[:2]) < 600 else 0
        for box in detector(img, upsample):
            chip = dlib.get_face_chip(img, predictor(img, box), size=150, padding=0.25)
            chips.append(chip)
            descriptors.append(np.asarray(recognizer.compute_face_descriptor(chip)))
            names.append(path.name)
    return np.stack(chips), np.stack(descriptors), names


@pytest.fixture(scope="module")
def bundled_faces(dlib_tools) -> tuple[np.ndarray, np.ndarray, list[str]]:
    return _chips_and_descriptors([FIXTURES / n for n in BUNDLED], dlib_tools)


# ------------------------------------------------------------------------------ reader


def test_reader_parses_installed_file(dat_path: Path) -> None:
    net = read_dlib_net(dat_path)
    assert len(net.data_tensors) == 59
    assert net.num_parameters == 5_614_592
    assert len(net.wrapper_versions) == 130
    assert net.input.means == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert (net.input.nr, net.input.nc) == (150, 150)
    assert net.loss.margin == pytest.approx(0.04, abs=1e-6)
    assert net.loss.distance_threshold == pytest.approx(0.6, abs=1e-6)
    convs = [x for x in net.layers if isinstance(x, ConvParams)]
    assert len(convs) == 29
    assert len([x for x in net.layers if isinstance(x, AffineParams)]) == 29
    assert convs[0].weight.shape == (32, 3, 7, 7)
    assert convs[0].stride == (2, 2) and convs[0].padding == (0, 0)
    assert all(c.padding == ((1, 1) if c.stride == (1, 1) else (0, 0)) for c in convs)
    fc = net.layers[-1]
    assert isinstance(fc, FcParams) and fc.weight.shape == (256, 128)
    assert all(np.isfinite(t).all() for t in net.data_tensors)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"\x01\x00", 0),
        (b"\x01\x07", 7),
        (b"\x81\x1c", -28),
        (b"\x02\x00\x01", 256),
        (b"\x84\x01\x00\x00\x80", -(2**31 + 1)),
    ],
)
def test_reader_integers(raw: bytes, value: int) -> None:
    r = DlibReader(raw)
    assert r.read_int() == value
    assert r.remaining == 0


def test_reader_floats_strings_bools() -> None:
    # 0.04 = 0xa3d70a * 2**-28 (mantissa first), then the string "ab", then '1', '0'.
    raw = b"\x03\x0a\xd7\xa3\x81\x1c" + b"\x01\x02ab" + b"10"
    r = DlibReader(raw)
    assert r.read_float() == pytest.approx(0.04, rel=1e-7)
    assert r.read_string() == "ab"
    assert r.read_bool() is True
    assert r.read_bool() is False
    assert math.isinf(DlibReader(b"\x01\x00\x02\x00\x7d").read_float())  # exponent 32000


@pytest.mark.parametrize("raw", [b"\x00", b"\x09" + bytes(9), b"\x02\x01", b"\x41\x00"])
def test_reader_rejects_bad_integers(raw: bytes) -> None:
    with pytest.raises(ModelCorruptError):
        DlibReader(raw).read_int()


def test_reader_rejects_bad_bool_and_oversized_tensor() -> None:
    with pytest.raises(ModelCorruptError, match="bool"):
        DlibReader(b"x").read_bool()
    # version 2, dims 1000 x 1 x 1 x 1 but no data
    with pytest.raises(ModelCorruptError, match="past the end"):
        DlibReader(b"\x01\x02\x02\xe8\x03\x01\x01\x01\x01\x01\x01").read_tensor()


@pytest.mark.parametrize("cut", [1, 200, 19_000, 11_000_000, -1])
def test_truncated_file_is_corrupt(dat_bytes: bytes, tmp_path: Path, cut: int) -> None:
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(dat_bytes[:cut])
    with pytest.raises(ModelCorruptError, match="truncated.dat"):
        read_dlib_net(bad)
    with pytest.raises(ModelCorruptError):
        DlibFaceResNet.from_dlib_file(bad)


def test_corrupt_header_trailing_bytes_and_wrong_file(dat_bytes: bytes, tmp_path: Path) -> None:
    with pytest.raises(ModelCorruptError, match="loss"):
        parse_dlib_net(dat_bytes[:4] + b"X" + dat_bytes[5:])
    with pytest.raises(ModelCorruptError, match="trailing"):
        parse_dlib_net(dat_bytes + b"\x01\x00")
    with pytest.raises(ModelCorruptError):
        parse_dlib_net(b"")
    # a real dlib file of another kind (a shape predictor) is rejected, not misread
    with pytest.raises(ModelCorruptError):
        read_dlib_net(_models_dir() / "shape_predictor_5_face_landmarks.dat")
    with pytest.raises(ModelNotFoundError):
        read_dlib_net(tmp_path / "missing.dat")


# ------------------------------------------------------------------------------ network


def test_padded_add_aligns_at_origin_and_zero_fills() -> None:
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 1, 4, 4), 10.0)
    s = padded_add(a, b)
    assert s.shape == (1, 2, 4, 4)
    assert torch.equal(s[0, 0, :3, :3], torch.full((3, 3), 11.0))
    assert torch.equal(s[0, 0, 3, :], torch.full((4,), 10.0))
    assert torch.equal(s[0, 1, :3, :3], torch.ones(3, 3))
    assert s[0, 1, 3, :].abs().sum() == 0 and s[0, 1, :, 3].abs().sum() == 0


def test_parity_with_dlib_on_bundled_photos(model: DlibFaceResNet, bundled_faces) -> None:
    chips, ref, names = bundled_faces
    assert len(set(names)) == len(BUNDLED) and len(chips) >= 5
    with torch.inference_mode():
        out = model(model.preprocess(chips)).numpy()
    assert out.shape == (len(chips), 128)
    assert np.abs(out - ref).max() <= PARITY_ATOL


@pytest.mark.data
def test_parity_with_dlib_on_shared_photos(model: DlibFaceResNet, dlib_tools, shared) -> None:
    paths = [shared("fixtures", "face_recognition", n) for n in SHARED]
    chips, ref, names = _chips_and_descriptors(paths, dlib_tools)
    assert len(set(names)) >= 4
    with torch.inference_mode():
        out = model(model.preprocess(chips)).numpy()
    assert np.abs(out - ref).max() <= PARITY_ATOL


def test_preprocess_matches_dlib_input_layer(model: DlibFaceResNet, dat_path: Path) -> None:
    chip = np.zeros((150, 150, 3), dtype=np.uint8)
    chip[..., 0] = 255
    x = model.preprocess(chip)
    assert x.shape == (1, 3, 150, 150) and x.dtype == torch.float32
    means = read_dlib_net(dat_path).input.means
    assert x[0, 0, 0, 0].item() == pytest.approx((255 - means[0]) / 256, abs=1e-6)
    assert x[0, 2, 5, 5].item() == pytest.approx(-means[2] / 256, abs=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        model.preprocess(chip.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        model.preprocess(np.zeros((2, 112, 112, 3), dtype=np.uint8))


def test_feature_dict_shapes_and_consistency(model: DlibFaceResNet, bundled_faces) -> None:
    chips = bundled_faces[0][:3]
    with torch.inference_mode():
        x = model.preprocess(chips)
        feats = model.forward_feature_dict(x)
        out = model(x)
        head = model.forward_head(feats["pooled"])
        final = model.forward_features(x)
        stages = model.forward_stages(x)
    assert tuple(feats) == FEATURE_NODES
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == EXPECTED_SHAPES
    assert all(v.shape[0] == 3 for v in feats.values())
    torch.testing.assert_close(feats["embedding"], out)
    torch.testing.assert_close(feats["pooled"], feats["stage5"].mean(dim=(2, 3)))
    torch.testing.assert_close(head, out)
    # the project's backbone interface
    torch.testing.assert_close(final, feats["stage5"])
    assert [i["module"] for i in model.feature_info] == [f"stage{i}" for i in range(1, 6)]
    for stage, info in zip(stages, model.feature_info, strict=True):
        torch.testing.assert_close(stage, feats[info["module"]])
        assert stage.shape[1] == info["num_chs"]
    assert model.default_input_size == (3, 150, 150) and model.num_features == 256


def test_network_is_trainable(model: DlibFaceResNet, bundled_faces) -> None:
    net = create_model("dlib_face_resnet", pretrained=True, num_outputs=1)
    params = list(net.parameters())
    assert params and all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in params)
    assert sum(p.numel() for p in net.parameters()) == 5_614_592 - 256 * 128 + 256 + 1
    torch.testing.assert_close(net.stem[0].weight, model.stem[0].weight)
    net.train()
    y = net(net.preprocess(bundled_faces[0][:2]))
    assert y.shape == (2, 1)
    y.sum().backward()
    assert net.stem[0].weight.grad is not None and net.stem[0].weight.grad.abs().sum() > 0
    assert net.stem[1].weight.grad is not None


def test_registry_factory(model: DlibFaceResNet) -> None:
    assert is_model("dlib_face_resnet")
    fresh = create_model("dlib_face_resnet")
    assert isinstance(fresh, DlibFaceResNet)
    with torch.inference_mode():
        assert fresh(torch.zeros(2, 3, 150, 150)).shape == (2, 128)
    assert default_weights("dlib_face_resnet") == "dlib_face_recognition_resnet"
    spec = model_store.get_spec("dlib_face_recognition_resnet")
    for pretrained in (True, "dlib_face_recognition_resnet", spec):
        loaded = create_model("dlib_face_resnet", pretrained=pretrained)
        assert _same_weights(loaded, model), pretrained
    explicit = DlibFaceResNet.from_dlib_file(model_router.resolve(spec))
    assert _same_weights(explicit, model)
    direct = dlib_face_resnet(weights_path=model_router.resolve(spec))
    assert _same_weights(direct, model)
    assert resolve_weights("dlib_face_resnet") == model_router.resolve(spec)
    with pytest.raises(ValueError, match="names no weights"):
        resolve_weights("dlib_face_resnet", False)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_manifest_entry_matches_the_network_and_its_file(
    model: DlibFaceResNet, dat_path: Path
) -> None:
    spec = model_store.get_spec(default_weights("dlib_face_resnet"))
    net = read_dlib_net(dat_path)
    assert spec.architecture == "dlib_face_resnet" and spec.task == "face_descriptor"
    assert spec.input_size == (INPUT_SIZE, INPUT_SIZE) == (net.input.nr, net.input.nc)
    assert model.default_input_size == (3, *spec.input_size)
    assert spec.normalisation is not None
    assert spec.normalisation.mean == pytest.approx(net.input.means, abs=1e-4)
    assert spec.normalisation.scale == 1 / INPUT_SCALE
    assert spec.output("embedding").dim == model.num_outputs == 128
    assert spec.chip == model_store.ChipSpec(method="dlib", size=150, padding=0.25)


def _tmp_entry(tmp_path: Path, file: str, data: bytes, **fields: object) -> model_store.ModelSpec:
    (tmp_path / file).write_bytes(data)
    entry = {
        "name": "resnet_copy",
        "file": file,
        "sha256": model_store.sha256_file(tmp_path / file),
        "task": "face_descriptor",
        "architecture": "dlib_face_resnet",
        "input_size": [150, 150],
        **fields,
    }
    model_store.write_manifest_entry(entry, tmp_path)
    return model_store.get_spec("resnet_copy", tmp_path)


def test_pretrained_from_another_models_dir(
    model: DlibFaceResNet, dat_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _tmp_entry(tmp_path, "copy.dat", dat_bytes)
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    assert _same_weights(create_model("dlib_face_resnet", pretrained="resnet_copy"), model)
    assert _same_weights(create_model("dlib_face_resnet", pretrained=spec), model)


def test_pretrained_corrupt_file_is_refused(
    dat_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _tmp_entry(tmp_path, "copy.dat", dat_bytes)
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    with open(tmp_path / "copy.dat", "r+b") as fh:  # flip one weight byte, same size
        fh.seek(len(dat_bytes) // 2)
        byte = fh.read(1)
        fh.seek(len(dat_bytes) // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelCorruptError, match=r"copy\.dat.*sha256"):
        create_model("dlib_face_resnet", pretrained="resnet_copy")
    with pytest.raises(ModelCorruptError, match="sha256"):
        create_model("dlib_face_resnet", pretrained=spec)
    (tmp_path / "copy.dat").unlink()
    with pytest.raises(ModelNotFoundError, match=r"copy\.dat.*missing"):
        create_model("dlib_face_resnet", pretrained="resnet_copy")


def test_pretrained_file_of_another_kind_is_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sha256 matches the manifest, but the file is a shape predictor, not the ResNet
    other = (_models_dir() / "shape_predictor_5_face_landmarks.dat").read_bytes()
    _tmp_entry(tmp_path, "sp5.dat", other)
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelCorruptError, match=r"sp5\.dat"):
        create_model("dlib_face_resnet", pretrained="resnet_copy")


def test_pretrained_entry_must_fit_the_architecture(
    dat_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    wrong_size = _tmp_entry(tmp_path, "copy.dat", dat_bytes, input_size=[112, 112])
    with pytest.raises(ValueError, match=r"input_size \(112, 112\)"):
        create_model("dlib_face_resnet", pretrained=wrong_size)
    other_arch = _tmp_entry(tmp_path, "copy.dat", dat_bytes, architecture="resnet18")
    with pytest.raises(ValueError, match="architecture 'resnet18', not 'dlib_face_resnet'"):
        create_model("dlib_face_resnet", pretrained=other_arch)
    with pytest.raises(ModelNotFoundError, match="not in the manifest"):
        create_model("dlib_face_resnet", pretrained="no_such_entry")
    with pytest.raises(TypeError, match="not both"):
        create_model("dlib_face_resnet", pretrained=True, weights_path=tmp_path / "copy.dat")


def test_loading_into_other_architecture_fails(dat_path: Path) -> None:
    net = read_dlib_net(dat_path)
    with pytest.raises(ModelCorruptError, match="layers, expected"):
        DlibFaceResNet(depths=(3, 4, 3, 3, 2)).load_dlib_weights(net)
    narrow = DlibFaceResNet(widths=(32, 64, 128, 256, 128))
    before = [p.clone() for p in narrow.parameters()]
    with pytest.raises(ModelCorruptError, match="conv"):
        narrow.load_dlib_weights(net)
    assert all(torch.equal(a, b) for a, b in zip(before, narrow.parameters(), strict=True))


# ------------------------------------------------------------------------------ transformer


def test_features_transformer_default_multilevel(model: DlibFaceResNet, bundled_faces) -> None:
    chips, ref, _ = bundled_faces
    t = DlibResNetFeatures(batch_size=4)
    assert t.fit(chips) is t
    assert t.n_features_out_ == 896
    X = t.transform(chips)
    assert X.shape == (len(chips), 896) and X.dtype == np.float32
    assert np.array_equal(X, t.transform(chips))  # deterministic
    assert np.allclose(X, clone(t).set_params(batch_size=1).transform(chips), atol=1e-5)
    # layout: pooled (256), stem..stage3 means and stds (512), descriptor (128)
    with torch.inference_mode():
        pooled = model.forward_feature_dict(model.preprocess(chips))["pooled"].numpy()
    assert np.allclose(X[:, :256], pooled, atol=1e-5)
    assert np.abs(X[:, -128:] - ref).max() <= PARITY_ATOL
    names = t.get_feature_names_out()
    assert len(names) == 896 and names[0] == "pooled_0" and names[-1] == "embedding_127"
    assert (X[:, 256 + 32 : 256 + 64] >= 0).all()  # stem stds


def test_features_transformer_layers_and_validation(bundled_faces) -> None:
    chips = bundled_faces[0][:2]
    X = DlibResNetFeatures(layers=["embedding", "stage4_std"]).fit_transform(chips)
    assert X.shape == (2, 128 + 256)
    assert DlibResNetFeatures(layers="pooled").transform(chips).shape == (2, 256)
    with pytest.raises(ValueError, match="unknown feature"):
        DlibResNetFeatures(layers="stage9_mean").fit(chips)
    with pytest.raises(ValueError, match="repeats"):
        DlibResNetFeatures(layers=["pooled", "multi-level"]).fit(chips)
    with pytest.raises(ValueError, match="batch_size"):
        DlibResNetFeatures(batch_size=0).fit(chips)
    with pytest.raises(ValueError, match="uint8 chips"):
        DlibResNetFeatures().fit(chips[0])
    assert clone(DlibResNetFeatures(layers="pooled")).get_params()["layers"] == "pooled"


def test_features_default_weights_go_through_the_resolver(
    bundled_faces, dat_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A models folder whose default ResNet entry points at a copy with one byte changed.
    tampered = bytearray(dat_bytes)
    tampered[len(tampered) // 2] ^= 0xFF
    (tmp_path / "r.dat").write_bytes(bytes(tampered))
    entry = model_store.get_spec("dlib_face_recognition_resnet").to_dict()
    for key in ("package", "package_file"):
        entry.pop(key)
    entry["file"] = "r.dat"
    model_store.write_manifest_entry(entry, tmp_path)
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelCorruptError, match=r"r\.dat.*sha256"):
        DlibResNetFeatures(layers="embedding").transform(bundled_faces[0][:1])
