"""One registry for every neural-network architecture facecore can build.

Usage::

    @register_model
    def se_resnet18(**kwargs) -> nn.Module: ...

    create_model("se_resnet18", num_outputs=1)
    list_models()            # sorted names
    list_models("*resnet*")  # fnmatch filter
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

__all__ = ["register_model", "create_model", "list_models", "is_model"]

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: register a model factory under its function name."""
    name = fn.__name__
    if name in _MODELS and _MODELS[name] is not fn:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def _ensure_loaded() -> None:
    # Importing the package registers every built-in model (modules decorate at import).
    import facecore.nn  # noqa: F401


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by an fnmatch pattern."""
    _ensure_loaded()
    names = sorted(_MODELS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def is_model(name: str) -> bool:
    _ensure_loaded()
    return name in _MODELS


def create_model(name: str, **kwargs: Any) -> Any:
    """Build the registered model ``name`` with keyword arguments passed to its factory."""
    _ensure_loaded()
    try:
        factory = _MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}"
        ) from None
    return factory(**kwargs)
