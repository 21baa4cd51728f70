import json
import shutil

import pytest

from facecore import model_store
from facecore.errors import ModelCorruptError, ModelNotFoundError


def test_every_manifest_entry_resolves_and_matches_its_hash():
    manifest = model_store.load_manifest()
    assert {"dlib_shape_predictor_68", "dlib_face_recognition_resnet", "mtcnn_pnet"} <= set(
        manifest
    )
    for name, spec in manifest.items():
        path = model_store.resolve(name)
        assert path.is_file(), name
        assert spec.licence and spec.source, f"{name} lacks licence/source"


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="not in the manifest"):
        model_store.resolve("no_such_model")


def _copy_models(tmp_path, entry):
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [entry]}))
    return tmp_path


def test_missing_bundled_file_names_the_file(tmp_path):
    d = _copy_models(tmp_path, {"name": "x", "file": "x.bin", "sha256": "0" * 64})
    with pytest.raises(ModelNotFoundError, match=r"x\.bin.*missing"):
        model_store.resolve("x", directory=d)


def test_corrupt_file_is_detected(tmp_path):
    src = model_store.resolve("mtcnn_pnet")
    spec = model_store.get_spec("mtcnn_pnet")
    shutil.copy(src, tmp_path / "pnet.pt")
    d = _copy_models(tmp_path, {"name": "p", "file": "pnet.pt", "sha256": spec.sha256})
    assert model_store.resolve("p", directory=d) == tmp_path / "pnet.pt"
    with open(tmp_path / "pnet.pt", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelCorruptError, match="sha256"):
        model_store.resolve("p", directory=d)


def test_missing_package_is_a_clear_error(tmp_path):
    d = _copy_models(
        tmp_path,
        {"name": "q", "package": "no_such_pkg_xyz", "package_file": "a.dat", "sha256": "0" * 64},
    )
    with pytest.raises(ModelNotFoundError, match="no_such_pkg_xyz"):
        model_store.resolve("q", directory=d)
