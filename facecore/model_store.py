"""The one resolver for model files.

Every model file facecore uses is named in ``models/manifest.json`` with its sha256, where it comes
from, what it expects as input, what it was trained on and its licence. A file is either bundled in
the ``models/`` folder (``"file"``) or installed by a registry package (``"package"`` +
``"package_file"``, located without importing the package). Nothing is ever downloaded.

:func:`resolve` returns the path of a named model after checking that it exists and that its
sha256 matches; a missing or corrupt file raises :class:`~facecore.errors.ModelNotFoundError` or
:class:`~facecore.errors.ModelCorruptError` naming the file and how to get it back. Hashes are
verified once per process per (path, size, mtime).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facecore.errors import ModelCorruptError, ModelNotFoundError

__all__ = [
    "ModelSpec",
    "models_dir",
    "load_manifest",
    "get_spec",
    "resolve",
    "sha256_file",
]

log = logging.getLogger(__name__)

_MANIFEST_NAME = "manifest.json"
_lock = threading.Lock()
_verified: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry."""

    name: str
    sha256: str
    file: str | None = None
    package: str | None = None
    package_file: str | None = None
    kind: str = ""
    inputs: str = ""
    source: str = ""
    training_data: str = ""
    licence: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        missing = [k for k in ("name", "sha256") if k not in d]
        if missing:
            raise ValueError(f"manifest entry {d!r} lacks {missing}")
        if not d.get("file") and not (d.get("package") and d.get("package_file")):
            raise ValueError(f"manifest entry {d['name']!r} names neither file nor package_file")
        return cls(
            **{k: v for k, v in d.items() if k in known},
            extra={k: v for k, v in d.items() if k not in known},
        )

    @property
    def how_to_get(self) -> str:
        if self.package:
            return (
                f"it is installed by the Python package {self.package!r}; reinstall it "
                f"(`make install`, or `pip install --force-reinstall --no-deps {self.package}`)"
            )
        return (
            "it is bundled in the repository's models/ folder; restore it with "
            "`git checkout -- models/` or rebuild it with the script named in models/README.md"
        )


def models_dir() -> Path:
    """The folder holding ``manifest.json`` and bundled model files.

    ``FACECORE_MODELS_DIR`` overrides the default, which is ``models/`` beside the package.
    """
    env = os.environ.get("FACECORE_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models"


def load_manifest(directory: Path | None = None) -> dict[str, ModelSpec]:
    """Read the manifest into ``{name: ModelSpec}``."""
    directory = directory or models_dir()
    path = directory / _MANIFEST_NAME
    if not path.is_file():
        raise ModelNotFoundError(
            f"model manifest {path} not found; set FACECORE_MODELS_DIR to the folder holding "
            f"{_MANIFEST_NAME} or run from a checkout of facecore"
        )
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    specs = [ModelSpec.from_dict(d) for d in data.get("models", [])]
    return {s.name: s for s in specs}


def get_spec(name: str, directory: Path | None = None) -> ModelSpec:
    manifest = load_manifest(directory)
    try:
        return manifest[name]
    except KeyError:
        raise ModelNotFoundError(
            f"model {name!r} is not in the manifest; known: {', '.join(sorted(manifest))}"
        ) from None


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _locate(spec: ModelSpec, directory: Path) -> Path:
    if spec.file:
        return directory / spec.file
    assert spec.package and spec.package_file
    root = _package_dir(spec.package)
    if root is None:
        raise ModelNotFoundError(
            f"model {spec.name!r} needs the package {spec.package!r}, which is not installed; "
            f"{spec.how_to_get}"
        )
    return root / spec.package_file


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve(name: str, *, verify: bool = True, directory: Path | None = None) -> Path:
    """Path of the model file ``name``, checked against the manifest.

    Raises
    ------
    ModelNotFoundError
        The name is unknown or the file is missing.
    ModelCorruptError
        The file's sha256 differs from the manifest's.
    """
    directory = directory or models_dir()
    spec = get_spec(name, directory)
    path = _locate(spec, directory)
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path} for {name!r} is missing; {spec.how_to_get}")
    if verify:
        st = path.stat()
        key = (str(path), st.st_size, int(st.st_mtime_ns))
        with _lock:
            known = _verified.get(key)
        if known != spec.sha256:
            digest = sha256_file(path)
            if digest != spec.sha256:
                raise ModelCorruptError(
                    f"model file {path} for {name!r} is corrupt: sha256 {digest} != "
                    f"{spec.sha256} in the manifest; {spec.how_to_get}"
                )
            with _lock:
                _verified[key] = digest
            log.debug("verified %s (%s)", path, digest[:12])
    return path
