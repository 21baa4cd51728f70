"""One registry for every neural-network architecture facecore can build.

Usage::

    @register_model
    def se_resnet18(**kwargs) -> nn.Module: ...

    @register_model(default_weights="dlib_face_recognition_resnet")
    def dlib_face_resnet(weights_path=None, **kwargs) -> nn.Module: ...

    create_model("se_resnet18", num_outputs=1)
    create_model("dlib_face_resnet", pretrained=True)        # the default manifest entry
    create_model("dlib_face_resnet", pretrained="dlib_face_recognition_resnet")
    list_models()            # sorted names
    list_models("*resnet*")  # fnmatch filter

The built-in models register lazily, as timm's do: :data:`BUILTIN_MODELS` names the module that
registers each one, and that module is imported on the first use of one of its models
(:func:`create_model`, :func:`default_weights`, ...); :func:`list_models` imports them all. So the
face pipeline, which builds only ``dlib_face_resnet``, imports none of the research networks
(ResNet variants, coupled ensembles, binarized nets, VGG-Face) nor their training tools.

Pretrained weights are manifest entries (:mod:`facecore.model_store`): the entry's
``architecture`` names the registered model it fits, and the file is found and sha256-checked by
:func:`facecore.model_router.resolve`. A factory that can load weights takes a ``weights_path``
argument. Nothing is ever downloaded.

This module implements no paper.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from facecore.model_router import resolve
from facecore.model_store import ModelSpec, get_spec

__all__ = [
    "BUILTIN_MODELS",
    "register_model",
    "create_model",
    "list_models",
    "is_model",
    "default_weights",
    "pretrained_spec",
    "resolve_weights",
]

#: The module that registers each built-in model, imported on the model's first use
#: (tests/nn/test_registry.py checks that each module registers exactly the models listed here).
BUILTIN_MODELS: dict[str, str] = {
    "dlib_face_resnet": "facecore.nn.dlib_resnet",
    **dict.fromkeys(
        (
            "resnet_tiny",
            "resnet18",
            "resnet34",
            "resnet50",
            "se_resnet18",
            "se_resnet50",
            "erase_resnet18",
            "drn_a_18",
            "drn_c_26",
        ),
        "facecore.nn.resnet",
    ),
    "coupled_ensemble": "facecore.nn.ensembles",
    "hierarchical_binary_resnet": "facecore.nn.binary",
    "vgg_face": "facecore.nn.vggface",
    "faceres": "facecore.nn.faceres",
}

_MODELS: dict[str, Callable[..., Any]] = {}
_DEFAULT_WEIGHTS: dict[str, str] = {}

_Factory = Callable[..., Any]


@overload
def register_model(fn: _Factory, *, default_weights: str | None = None) -> _Factory: ...


@overload
def register_model(
    fn: None = None, *, default_weights: str | None = None
) -> Callable[[_Factory], _Factory]: ...


def register_model(
    fn: _Factory | None = None, *, default_weights: str | None = None
) -> _Factory | Callable[[_Factory], _Factory]:
    """Decorator: register a model factory under its function name.

    Parameters
    ----------
    fn : callable
        The factory (when used as ``@register_model``).
    default_weights : str, optional
        The manifest entry that ``create_model(name, pretrained=True)`` loads (when used as
        ``@register_model(default_weights=...)``). The factory must then take ``weights_path``.

    Returns
    -------
    callable
        The factory itself, or a decorator.
    """

    def register(f: _Factory) -> _Factory:
        name = f.__name__
        if name in _MODELS and _MODELS[name] is not f:
            raise ValueError(f"model {name!r} is already registered")
        if default_weights is not None and not _takes_weights(f):
            raise ValueError(f"model {name!r} has default weights but no weights_path argument")
        _MODELS[name] = f
        if default_weights is not None:
            _DEFAULT_WEIGHTS[name] = default_weights
        return f

    return register(fn) if fn is not None else register


def _takes_weights(factory: _Factory) -> bool:
    return "weights_path" in inspect.signature(factory).parameters


def _ensure_registered(name: str | None = None) -> None:
    """Import the module that registers the built-in model ``name`` (every built-in module when
    ``name`` is None); a model registered already, or not built in, imports nothing."""
    if name is None:
        modules = dict.fromkeys(BUILTIN_MODELS.values())
    elif name in _MODELS or name not in BUILTIN_MODELS:
        return
    else:
        modules = {BUILTIN_MODELS[name]: None}
    for module in modules:
        importlib.import_module(module)


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by an fnmatch pattern."""
    _ensure_registered()
    names = sorted(_MODELS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model (a built-in one is, before its module is
    imported)."""
    return name in _MODELS or name in BUILTIN_MODELS


def _factory(name: str) -> _Factory:
    _ensure_registered(name)
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(sorted({*_MODELS, *BUILTIN_MODELS}))
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None


def default_weights(name: str) -> str | None:
    """The manifest entry ``create_model(name, pretrained=True)`` loads, or None."""
    _factory(name)
    return _DEFAULT_WEIGHTS.get(name)


def pretrained_spec(name: str, pretrained: bool | str | ModelSpec = True) -> ModelSpec | None:
    """The manifest entry whose weights ``create_model(name, pretrained=...)`` loads.

    Parameters
    ----------
    name : str
        A registered model.
    pretrained : bool, str or ModelSpec
        False (no weights), True (the model's default entry), a manifest name, or an entry.

    Returns
    -------
    ModelSpec or None
        None when ``pretrained`` is False.

    Raises
    ------
    ValueError
        If the model is unknown, has no default weights (``True``), cannot load weights, or the
        entry's ``architecture`` is not ``name``.
    ModelNotFoundError
        If the manifest has no such entry.
    """
    factory = _factory(name)
    if pretrained is False or pretrained is None:
        return None
    if not _takes_weights(factory):
        raise ValueError(f"model {name!r} cannot load pretrained weights")
    if pretrained is True:
        entry = _DEFAULT_WEIGHTS.get(name)
        if entry is None:
            raise ValueError(
                f"model {name!r} has no default weights; pass pretrained=<manifest entry name>"
            )
        spec = get_spec(entry)
    elif isinstance(pretrained, str):
        spec = get_spec(pretrained)
    elif isinstance(pretrained, ModelSpec):
        spec = pretrained
    else:
        raise TypeError(
            f"pretrained must be a bool, a manifest name or a ModelSpec, got {pretrained!r}"
        )
    if spec.architecture != name:
        raise ValueError(
            f"manifest entry {spec.name!r} holds weights for architecture "
            f"{spec.architecture or '(none given)'!r}, not {name!r}"
        )
    return spec


def resolve_weights(name: str, pretrained: bool | str | ModelSpec = True) -> Path:
    """The checked weights file ``create_model(name, pretrained=...)`` would load.

    Parameters
    ----------
    name : str
        A registered model.
    pretrained : bool, str or ModelSpec, default True
        As in :func:`create_model`; False is an error here.

    Returns
    -------
    Path
        From :func:`facecore.model_router.resolve` (sha256 checked).

    Raises
    ------
    ValueError, ModelNotFoundError, ModelCorruptError
        See :func:`pretrained_spec` and :func:`facecore.model_router.resolve`.
    """
    spec = pretrained_spec(name, pretrained)
    if spec is None:
        raise ValueError(f"pretrained={pretrained!r} names no weights for {name!r}")
    return resolve(spec)


def create_model(name: str, pretrained: bool | str | ModelSpec = False, **kwargs: Any) -> Any:
    """Build the registered model ``name``.

    Parameters
    ----------
    name : str
        A registered model (:func:`list_models`).
    pretrained : bool, str or ModelSpec, default False
        Weights to load: False (none, fresh initialisation), True (the model's default manifest
        entry, e.g. ``dlib_face_recognition_resnet`` for ``dlib_face_resnet``), the name of a
        manifest entry, or a :class:`~facecore.model_store.ModelSpec`. The file is found and
        sha256-checked by :func:`facecore.model_router.resolve` and passed to the factory as
        ``weights_path``.
    **kwargs
        Passed to the factory.

    Returns
    -------
    object
        The model (a ``torch.nn.Module`` for the built-in ones).

    Raises
    ------
    ValueError
        See :func:`pretrained_spec`; also if the entry's ``input_size`` differs from the built
        model's ``default_input_size``.
    ModelNotFoundError, ModelCorruptError
        If the weights file is missing, fails its sha256 check or cannot be read.
    """
    factory = _factory(name)
    if pretrained is not False and pretrained is not None and "weights_path" in kwargs:
        raise TypeError("give either pretrained or weights_path, not both")
    spec = pretrained_spec(name, pretrained)
    if spec is None:
        return factory(**kwargs)
    path: Path = resolve(spec)
    model = factory(weights_path=path, **kwargs)
    size = getattr(model, "default_input_size", None)
    model_size = None if size is None else tuple(int(s) for s in size)[-2:]
    if None not in (spec.input_size, model_size) and model_size != spec.input_size:
        raise ValueError(
            f"manifest entry {spec.name!r} gives input_size {spec.input_size} but {name!r} "
            f"takes {model_size}"
        )
    return model
