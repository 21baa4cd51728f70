"""The model router: a manifest name in, a checked and loaded model out.

In the manner of InsightFace's model zoo (``insightface.model_zoo.get_model``): :func:`load` reads
the model's manifest entry (:mod:`facecore.model_store`), finds its file and checks its sha256
(:func:`resolve`), and hands it to the loader registered for the entry's ``architecture``
(:func:`register_loader`). The loaded model is kept per (name, folder, options) for the rest of
the process, so every stage that asks for a model gets the same object and a file is read once.
No head reads, checks or caches files itself.

A loader is registered where its model class lives::

    @register_loader("quality_map_head")
    def _load(path: Path, spec: ModelSpec) -> QualityModel:
        return QualityModel.load(path)

and :data:`LOADER_MODULES` says which module registers each built-in architecture, imported on
the first load of one (as timm registers its models lazily), so that ``load(name)`` works without
importing every head first.

A missing or corrupt file raises :class:`~facecore.errors.ModelNotFoundError` or
:class:`~facecore.errors.ModelCorruptError` naming the file and how to get it back; the sha256 is
checked on every load that reads a file (once per process per path, size and mtime).

The manifest (:mod:`facecore.model_store`, whose pydantic schema takes about 0.2 s to import) is
imported on the first lookup, not with this module: the stage modules register their loaders at
import, and ``facecore.list_stages()`` stays light.

This module implements no paper.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from facecore.errors import ModelCorruptError, ModelFileError, ModelNotFoundError

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = ["LOADER_MODULES", "Loader", "load", "loader_for", "register_loader", "resolve"]

log = logging.getLogger(__name__)

#: A loader: ``loader(path, spec, **options) -> model``; ``path`` is checked against ``spec``.
Loader = Callable[..., Any]
_L = TypeVar("_L", bound=Loader)

#: The module that registers the loader of each built-in architecture (imported on first use).
LOADER_MODULES: dict[str, str] = {
    "dlib_shape_predictor": "facecore.landmarks",
    "dlib_face_resnet": "facecore.trunk",
    "mtcnn_pnet": "facecore.detect.mtcnn",
    "mtcnn_rnet": "facecore.detect.mtcnn",
    "mtcnn_onet": "facecore.detect.mtcnn",
    "score_fusion": "facecore.attractiveness.model",
    "knn_shape_reference": "facecore.beauty.shape",
    "dlib_face_resnet_top": "facecore.heads.distribution",
    "quality_map_head": "facecore.quality.model",
    "blazeface": "facecore.detect.blazeface",
    "faceres": "facecore.appearance",
}

_loaders: dict[str, Loader] = {}
_lock = threading.Lock()
_verified: dict[tuple[str, int, int], str] = {}
# (name, folder, options) -> (sha256 of the file it was read from, model); one lock per key so
# that concurrent first requests read a file once and different models load side by side.
_models: dict[tuple[str, str, tuple[tuple[str, Any], ...]], tuple[str, Any]] = {}
_key_locks: dict[tuple[str, str, tuple[tuple[str, Any], ...]], threading.Lock] = {}


def register_loader(architecture: str) -> Callable[[_L], _L]:
    """Decorator: ``fn(path, spec, **options)`` loads the files of manifest entries whose
    ``architecture`` is ``architecture``. ValueError if another loader has it already."""

    def register(fn: _L) -> _L:
        if _loaders.get(architecture, fn) is not fn:
            raise ValueError(f"architecture {architecture!r} already has a loader")
        _loaders[architecture] = fn
        return fn

    return register


def loader_for(architecture: str) -> Loader:
    """The loader registered for ``architecture`` (importing its :data:`LOADER_MODULES` module).

    Raises
    ------
    ModelFileError
        If no loader reads that architecture.
    """
    if architecture not in _loaders and architecture in LOADER_MODULES:
        importlib.import_module(LOADER_MODULES[architecture])
    try:
        return _loaders[architecture]
    except KeyError:
        raise ModelFileError(
            f"no loader reads architecture {architecture!r}; known: "
            f"{', '.join(sorted({*_loaders, *LOADER_MODULES}))}"
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


def resolve(
    name: str | ModelSpec,
    *,
    verify: bool = True,
    directory: str | os.PathLike[str] | None = None,
) -> Path:
    """Path of a model file, checked against its manifest entry.

    Parameters
    ----------
    name : str or ModelSpec
        A manifest name, or an entry already read (then the manifest is not read again).
    verify : bool, default True
        Check the sha256 (once per process per path, size and mtime).
    directory : path-like, optional
        The models folder (where bundled files are); default
        :func:`~facecore.model_store.models_dir`.

    Raises
    ------
    ModelNotFoundError
        The name is unknown or the file is missing.
    ModelCorruptError
        The file's sha256 differs from the manifest's.
    """
    from facecore.model_store import get_spec, models_dir

    directory = Path(directory) if directory is not None else models_dir()
    spec = get_spec(name, directory) if isinstance(name, str) else name
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
            from facecore.model_store import sha256_file

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


def load(name: str, directory: str | os.PathLike[str] | None = None, **options: Any) -> Any:
    """The model ``name``, loaded by its architecture's loader (read once, then shared).

    Parameters
    ----------
    name : str
        A manifest name.
    directory : path-like, optional
        The models folder; default :func:`~facecore.model_store.models_dir`.
    **options
        Passed to the loader (e.g. ``precision="float32"`` for a fine-tuned top); models loaded
        with other options are other objects.

    Returns
    -------
    object
        What the loader returns (a :class:`~facecore.heads.distribution.TopDistributionModel`,
        a network, ...). The same object for the same (name, folder, options) as long as the
        manifest gives the file the same sha256; a new manifest entry (a retrained file) is read
        again.

    Raises
    ------
    ModelNotFoundError, ModelCorruptError
        The manifest lacks the name, or the file is missing or fails its sha256 check; the
        message names the file and how to get it back.
    ModelFileError
        No loader reads the entry's architecture.
    """
    from facecore.model_store import get_spec, models_dir

    folder = Path(directory) if directory is not None else models_dir()
    spec = get_spec(name, folder)
    key = (name, str(folder), tuple(sorted(options.items())))
    cached = _models.get(key)
    if cached is not None and cached[0] == spec.sha256:
        return cached[1]
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        cached = _models.get(key)
        if cached is not None and cached[0] == spec.sha256:
            return cached[1]
        loader = loader_for(spec.architecture)
        path = resolve(spec, directory=folder)
        model = loader(path, spec, **options)
        _models[key] = (spec.sha256, model)
    log.info("loaded %s from %s", name, path)
    return model
