"""The one lazy-loading mechanism of facecore.

* :class:`Lazy` holds a value that is built on first use, once, even when several threads ask for
  it at the same moment (double-checked locking, written once here): ``self._x = Lazy(build)``,
  then ``self._x.get()``. Model files are not kept this way: the router
  (:mod:`facecore.model_router`) loads and keeps them.
* :func:`lazy_exports` gives a package ``__getattr__``/``__dir__`` that import a submodule only
  when one of its names is first used, so that ``import facecore`` stays light (no torch, dlib or
  scikit-learn until a model is needed).

This module implements no paper.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

__all__ = ["Lazy", "lazy_exports"]

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built by ``factory`` on the first :meth:`get`, exactly once, thread-safe.

    If the factory raises, nothing is stored and the next :meth:`get` tries again (a model file
    restored after a failed load is picked up without a restart).

    Examples
    --------
    >>> calls = []
    >>> box = Lazy(lambda: calls.append(1) or "model")
    >>> box.loaded, box.get(), box.get(), calls, box.loaded
    (False, 'model', 'model', [1], True)
    """

    __slots__ = ("_factory", "_lock", "_value", "_loaded")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded = False

    @property
    def loaded(self) -> bool:
        """True once the value has been built."""
        return self._loaded

    def get(self) -> T:
        """The value, built now if it was not yet."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._value = self._factory()
                    self._loaded = True
        return self._value  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = "loaded" if self._loaded else "not loaded"
        return f"Lazy({getattr(self._factory, '__qualname__', self._factory)!r}, {state})"


def lazy_exports(
    package: str, names: dict[str, str], eager: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names live in lazily imported modules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict of str to str
        Exported name -> module that defines it, relative (``".model"``) or absolute.
    eager : iterable of str
        Names the package defines itself (listed by ``__dir__`` too).

    Examples
    --------
    In a package ``__init__``::

        __getattr__, __dir__ = lazy_exports(__name__, {"FaceAnalyzer": ".analyzer"})
    """
    listed = sorted({*names, *eager})

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return listed

    return __getattr__, __dir__
