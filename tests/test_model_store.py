import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from facecore import model_store
from facecore.errors import ModelCorruptError, ModelNotFoundError

BUNDLED = Path(__file__).resolve().parents[1] / "models"


def test_every_shipped_entry_names_its_licence_and_source():
    manifest = model_store.load_manifest()
    assert {"dlib_shape_predictor_68", "dlib_face_recognition_resnet", "mtcnn_pnet"} <= set(
        manifest
    )
    for name, spec in manifest.items():
        assert spec.licence and spec.source, f"{name} lacks licence/source"


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="not in the manifest"):
        model_store.get_spec("no_such_model")


# ------------------------------------------------------------------------------ structured fields


def test_shipped_entries_have_structured_fields():
    manifest = model_store.load_manifest()
    for name, spec in manifest.items():
        assert spec.task and spec.architecture and spec.outputs, name
        assert not {"task", "architecture", "chip", "outputs"} & set(spec.extra), name
    resnet = manifest["dlib_face_recognition_resnet"]
    assert resnet.task == "face_descriptor" and resnet.architecture == "dlib_face_resnet"
    assert resnet.input_size == (150, 150)
    assert resnet.normalisation == model_store.Normalisation(
        mean=(122.782, 117.001, 104.298), scale=0.00390625
    )
    assert resnet.chip == model_store.ChipSpec(method="dlib", size=150, padding=0.25)
    assert resnet.outputs == (model_store.OutputSpec(name="embedding", kind="vector", dim=128),)
    scut = manifest["attractiveness_scut_classical"]
    assert scut.task == "attractiveness" and scut.architecture == "score_fusion"
    assert scut.chip == model_store.ChipSpec(method="similarity5", size=128, padding=0.05)
    assert scut.output("attractiveness") == model_store.OutputSpec(
        name="attractiveness", kind="scalar", scale=(1.0, 5.0)
    )
    assert scut.normalisation is None and scut.input_size is None
    assert scut.extra["metrics"]["cv"]["pc"] == 0.9014  # free-form keys are kept
    assert "train_attractiveness.py" in scut.how_to_get  # its rebuild command
    for detector in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "dlib_mmod_detector"):
        assert manifest[detector].task == "face_detection" and manifest[detector].chip is None
    assert manifest["mtcnn_onet"].input_size == (48, 48)
    with pytest.raises(KeyError, match="no output 'age'"):
        scut.output("age")


def test_spec_round_trips_through_to_dict():
    for spec in model_store.load_manifest().values():
        assert model_store.ModelSpec.from_dict(spec.to_dict()) == spec
        assert json.loads(json.dumps(spec.to_dict())) == spec.to_dict()


GOOD = {"name": "m", "file": "m.bin", "sha256": "a" * 64}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sha256": "A" * 64}, "sha256"),
        ({"sha256": "0" * 63}, "sha256"),
        ({"file": None}, "neither file nor package"),
        ({"task": 3}, r"'m': task: Input should be a valid string \(got 3\)"),
        ({"input_size": [150]}, "input_size"),
        ({"input_size": [150, 0]}, "input_size"),
        ({"input_size": [150.0, 150.0]}, "input_size"),
        ({"input_size": [150, 150, 3]}, "input_size"),
        ({"normalisation": {"mean": [1, 2], "scale": 1}}, "normalisation.mean must be 1 or 3"),
        ({"normalisation": {"mean": [1, 2, 3], "scale": 0}}, "normalisation.scale: .*greater"),
        ({"normalisation": {"mean": [1, 2, 3]}}, "normalisation.scale: Field required"),
        ({"normalisation": {"mean": [1, "2", 3], "scale": 1}}, r"normalisation.mean\[1\]"),
        ({"chip": {"method": "dlib", "size": 150}}, "chip.padding: Field required"),
        ({"chip": {"method": "dlib", "size": 150, "padding": -1}}, "chip.padding"),
        ({"chip": {"method": "dlib", "size": True, "padding": 0}}, "chip.size"),
        ({"chip": {"method": "dlib", "size": 4, "padding": 0}}, "chip.size"),
        ({"chip": {"method": "", "size": 150, "padding": 0}}, "chip.method"),
        ({"chip": {"method": "dlib", "size": 150, "padding": 0, "x": 1}}, "chip.x: Extra inputs"),
        ({"outputs": {"name": "a"}}, "outputs: Input should be a valid tuple"),
        ({"outputs": [{"name": "a", "kind": "tensor"}]}, r"outputs\[0\].kind: .*'vector'"),
        ({"outputs": [{"name": "a", "kind": "vector"}]}, "output 'a': a vector needs dim"),
        ({"outputs": [{"name": "a", "kind": "distribution"}]}, "needs bins"),
        ({"outputs": [{"name": "a", "kind": "scalar", "bins": []}]}, r"outputs\[0\].bins"),
        ({"outputs": [{"name": "a", "kind": "distribution", "bins": [1, 2], "dim": 3}]}, "dim 3"),
        ({"outputs": [{"name": "a", "kind": "scalar", "scale": [5, 1]}]}, "lo < hi"),
        ({"outputs": [{"name": "a", "kind": "scalar", "dim": 4}]}, "a scalar"),
        ({"outputs": [{"name": "a", "kind": "scalar"}] * 2}, "repeat a name"),
    ],
)
def test_invalid_entries_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        model_store.ModelSpec.from_dict({**GOOD, **change})


def test_minimal_entry_has_empty_structured_fields():
    spec = model_store.ModelSpec.from_dict({**GOOD, "metrics": {"pc": 0.5}})
    assert (spec.task, spec.architecture, spec.input_size, spec.chip, spec.outputs) == (
        "",
        "",
        None,
        None,
        (),
    )
    assert spec.extra == {"metrics": {"pc": 0.5}}
    nulls = model_store.ModelSpec.from_dict({**GOOD, "task": None, "outputs": None})
    assert (nulls.task, nulls.outputs) == ("", ())  # null text and outputs: the defaults
    with pytest.raises(ValueError, match="must be an object"):
        model_store.ModelSpec.from_dict(["m"])
    full = model_store.ModelSpec.from_dict(
        {
            **GOOD,
            "outputs": [{"name": "age", "kind": "distribution", "bins": [0, 1, 2], "dim": None}],
        }
    )
    assert full.outputs[0].bins == (0.0, 1.0, 2.0) and full.outputs[0].dim is None


def test_invalid_manifest_names_the_file_and_the_entry(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [{**GOOD, "task": 1}]}))
    with pytest.raises(ModelCorruptError, match=r"manifest\.json is invalid.*'m'.*task"):
        model_store.load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [GOOD, GOOD]}))
    with pytest.raises(ModelCorruptError, match=r"\['m'\] more than once"):
        model_store.load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelCorruptError, match="not valid JSON"):
        model_store.load_manifest(tmp_path)


# ------------------------------------------------------------------------------ writing


def test_write_manifest_entry_replaces_by_name_in_place(tmp_path):
    first = {**GOOD, "name": "a"}
    second = {**GOOD, "name": "b", "task": "attractiveness"}
    assert model_store.write_manifest_entry(first, tmp_path) == tmp_path / "manifest.json"
    model_store.write_manifest_entry(second, tmp_path)
    model_store.write_manifest_entry({**first, "task": "landmarks", "rebuild": "make a"}, tmp_path)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["schema"] == 1
    assert [m["name"] for m in data["models"]] == ["a", "b"]
    assert data["models"][0] == {**first, "task": "landmarks", "rebuild": "make a"}
    assert data["models"][1] == second
    assert model_store.get_spec("a", tmp_path).task == "landmarks"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # no temporary left


def test_write_manifest_entry_refuses_an_invalid_entry(tmp_path):
    model_store.write_manifest_entry(GOOD, tmp_path)
    before = (tmp_path / "manifest.json").read_bytes()
    for bad in (
        {**GOOD, "sha256": "nope"},
        {**GOOD, "outputs": [{"name": "x", "kind": "vector"}]},
        {"file": "x.bin", "sha256": "a" * 64},
        {**GOOD, "metrics": {1, 2}},
    ):
        with pytest.raises(ValueError):
            model_store.write_manifest_entry(bad, tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == before
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ModelCorruptError, match="not valid JSON"):
        model_store.write_manifest_entry(GOOD, tmp_path)
    assert (tmp_path / "manifest.json").read_text() == "{broken"


def test_rewriting_the_shipped_entries_leaves_the_manifest_unchanged(tmp_path):
    shipped = model_store.models_dir() / "manifest.json"
    shutil.copy(shipped, tmp_path / "manifest.json")
    for entry in json.loads(shipped.read_text(encoding="utf-8"))["models"]:
        model_store.write_manifest_entry(entry, tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == shipped.read_bytes()


# ------------------------------------------------------------------------------ the models folder


def test_models_dir_is_the_bundled_package_folder(monkeypatch):
    monkeypatch.delenv("FACECORE_MODELS_DIR", raising=False)
    spec = importlib.util.find_spec(model_store.BUNDLED_PACKAGE)
    assert spec is not None and spec.submodule_search_locations
    bundled = model_store.models_dir()
    assert str(bundled) in list(spec.submodule_search_locations)
    # in this checkout's (editable) install the package is the repository's models/ folder
    assert bundled.resolve() == (Path(__file__).resolve().parents[1] / "models")
    assert {"manifest.json", "attractiveness_scut_classical.joblib", "age_utkface.pt"} <= {
        p.name for p in bundled.iterdir()
    }


def test_models_dir_setting_env_and_argument(tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    model_store.write_manifest_entry({**GOOD, "name": "only_here"}, other)
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(tmp_path))
    assert model_store.models_dir() == tmp_path
    try:
        model_store.set_models_dir(other)
        assert model_store.models_dir() == other
        assert set(model_store.load_manifest()) == {"only_here"}
        assert "dlib_shape_predictor_68" in model_store.load_manifest(directory=BUNDLED)
    finally:
        model_store.set_models_dir(None)
    assert model_store.models_dir() == tmp_path
    with pytest.raises(ModelNotFoundError, match=r"manifest\.json not found.*set_models_dir"):
        model_store.load_manifest()
