"""The stage registry: every step after detection is a :class:`Stage` that registers itself.

A stage has a name, the stages it needs before it, the predictions it adds to each face
(:class:`Output`), ``load()`` and a call on ``(image, faces)`` that returns the evolved faces.
A head's module registers its stage class with :func:`register_stage`, as :mod:`facecore.nn`
registers networks::

    @register_stage
    class AgeStage:
        name = "age"
        requires = ("trunk",)
        default = True                                   # one of the default heads
        batching = "faces"                               # reads only the trunk's maps
        def __init__(self, model: str = "age_utkface"): ...
        @property
        def provides(self) -> tuple[Output, ...]: ...
        def load(self) -> None: ...
        def __call__(self, image, faces): ...

Options of a stage are its constructor's keyword arguments (e.g. ``model``, the manifest name of
the model file a head uses); :class:`~facecore.analyzer.FaceAnalyzer` passes them from
``AnalyzerConfig.stage_options``. :func:`list_stages` describes every registered stage;
:func:`resolve_order` puts a set of stages and their requirements in a valid order.

A stage declares how it batches with its ``batching`` attribute (:data:`BATCHINGS`, read by
:func:`stage_batching`): ``"image"`` (the default) takes the faces of one image per call;
``"faces"`` takes the faces of several images in one call, because it reads only what earlier
stages put on the faces, or each face's aligned chip: a stage with a ``spec``
(:class:`~facecore.align.AlignSpec`) has every face's chip cut from its own image first. The one
stage loop (:mod:`facecore.multi`) groups by that declaration and by nothing else.

This module implements no paper.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facecore.errors import UnknownStageError
from facecore.types import Face

__all__ = [
    "BATCHINGS",
    "ENTRY_POINT_GROUP",
    "Output",
    "Stage",
    "StageInfo",
    "build_stage",
    "default_heads",
    "get_stage_class",
    "list_stages",
    "parse_model_choices",
    "parse_stage_list",
    "register_stage",
    "resolve_order",
    "stage_names",
    "stage_batching",
    "stage_modules",
]

#: The entry-point group that lists the modules registering stages: facecore's own
#: (``pyproject.toml`` points to :data:`facecore.builtin.STAGE_MODULES`) and any installed
#: plugin's. The pipeline names none of them.
ENTRY_POINT_GROUP = "facecore.stages"


#: What a stage's ``batching`` may be: ``"image"``, the faces of one image per call (a stage
#: without the attribute); ``"faces"``, the faces of several images in one call.
BATCHINGS = ("image", "faces")


@dataclass(frozen=True, slots=True)
class Output:
    """A prediction a stage adds to every face.

    Attributes
    ----------
    name : str
        Key in ``Face.predictions`` (and the batch column).
    distribution : bool
        Whether the prediction carries a distribution over bins (batch column ``<name>_dist``).
    scale : (float, float) or None
        Range of the value (e.g. (1, 5)), when it has one.
    unit : str
        What the value is in ("score", "years", ...).
    """

    name: str
    distribution: bool = False
    scale: tuple[float, float] | None = None
    unit: str = ""


@runtime_checkable
class Stage(Protocol):
    """What :class:`~facecore.analyzer.FaceAnalyzer` runs after detection.

    A stage may also have ``batching`` (a class attribute or property, one of
    :data:`BATCHINGS`; ``"image"`` when absent) and, when it reads each face's aligned chip, a
    ``spec`` (:class:`~facecore.align.AlignSpec`): see :func:`stage_batching`.
    """

    name: str
    requires: tuple[str, ...]

    @property
    def provides(self) -> tuple[Output, ...]:
        """The predictions this stage adds (empty for the stages that only add geometry or
        features)."""

    def load(self) -> None:
        """Load model files now (raises if one is missing or corrupt)."""

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """The faces of ``image`` (RGB uint8) with this stage's results added."""


def stage_batching(stage: Stage) -> str:
    """How ``stage`` takes faces: its ``batching``, ``"image"`` when it declares none.

    ``"faces"``: the stage may be called once with the faces of several images (the ``image``
    it is given is then one of them); it reads only what earlier stages put on the faces, and
    when it has a ``spec``, each face's chip, which the stage loop cuts from the face's own
    image before the call. ``"image"``: it is called with the faces of one image and that image.

    Raises
    ------
    ValueError
        If the stage declares something other than one of :data:`BATCHINGS`.
    """
    batching = getattr(stage, "batching", "image")
    if batching not in BATCHINGS:
        raise ValueError(
            f"stage {stage.name!r}: batching must be one of {BATCHINGS}, got {batching!r}"
        )
    return str(batching)


@dataclass(frozen=True, slots=True)
class StageInfo:
    """A registered stage, as :func:`list_stages` describes it."""

    name: str
    requires: tuple[str, ...]
    provides: tuple[str, ...]
    default: bool
    options: dict[str, Any]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: option defaults as their Python ``repr``."""
        return {
            "name": self.name,
            "requires": list(self.requires),
            "provides": list(self.provides),
            "default": self.default,
            "options": {k: repr(v) for k, v in self.options.items()},
            "summary": self.summary,
        }


_STAGES: dict[str, type] = {}
_loaded = False


def register_stage(cls: type) -> type:
    """Class decorator: register a stage class under its ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"stage class {cls.__name__} needs a ``name`` that is an identifier")
    requires = getattr(cls, "requires", None)
    if not isinstance(requires, tuple) or not all(isinstance(r, str) for r in requires):
        raise ValueError(f"stage {name!r}: ``requires`` must be a tuple of stage names")
    if name in requires:
        raise ValueError(f"stage {name!r} requires itself")
    batching = getattr(cls, "batching", "image")
    if not isinstance(batching, property) and batching not in BATCHINGS:
        raise ValueError(f"stage {name!r}: batching must be one of {BATCHINGS}, got {batching!r}")
    if name in _STAGES and _STAGES[name].__qualname__ != cls.__qualname__:
        raise ValueError(f"stage {name!r} is already registered by {_STAGES[name].__qualname__}")
    _STAGES[name] = cls
    return cls


@functools.lru_cache(maxsize=1)
def stage_modules() -> tuple[str, ...]:
    """The modules that register stages: the lists the :data:`ENTRY_POINT_GROUP` entry points
    of the installed distributions point to, each in its order (facecore's own,
    :data:`facecore.builtin.STAGE_MODULES`, in pipeline order).

    Raises
    ------
    RuntimeError
        If there is none: facecore runs from a checkout that was never installed.
    """
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name != "facecore")
    modules = tuple(dict.fromkeys(m for ep in found for m in ep.load()))
    if not modules:
        raise RuntimeError(
            f"no stage is registered: facecore's stages are entry points ({ENTRY_POINT_GROUP!r})"
            " of the installed package; install it (`make install` or `pip install -e .`)"
        )
    return modules


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for module in stage_modules():
            importlib.import_module(module)
        _loaded = True


def _ordered() -> list[str]:
    """Registered names: the stages of the entry points' modules in their order (whatever order
    the modules were imported in), then the others in registration order."""
    _ensure_loaded()
    rank = {m: i for i, m in enumerate(stage_modules())}
    names = list(_STAGES)
    return sorted(names, key=lambda n: (rank.get(_STAGES[n].__module__, len(rank)), names.index(n)))


def get_stage_class(name: str) -> type:
    """The registered stage class ``name``.

    Raises
    ------
    UnknownStageError
        If no stage of that name is registered (a ``ValueError``).
    """
    _ensure_loaded()
    try:
        return _STAGES[name]
    except KeyError:
        raise UnknownStageError(f"unknown stage {name!r}; known: {', '.join(_STAGES)}") from None


def _options(cls: type) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def _static_provides(cls: type) -> tuple[str, ...]:
    names = getattr(cls, "prediction_names", None)
    if names is None:
        provides = getattr(cls, "provides", ())
        names = () if isinstance(provides, property) else tuple(o.name for o in provides)
    return tuple(names)


def list_stages() -> list[StageInfo]:
    """Every registered stage with what it requires, provides and accepts, in registry order."""
    out = []
    for name in _ordered():
        cls = _STAGES[name]
        doc = (inspect.getdoc(cls) or "").strip().splitlines()
        out.append(
            StageInfo(
                name=name,
                requires=tuple(cls.requires),
                provides=_static_provides(cls),
                default=bool(getattr(cls, "default", False)),
                options=_options(cls),
                summary=doc[0] if doc else "",
            )
        )
    return out


def stage_names() -> tuple[str, ...]:
    """The registered stages' names in registry order (:func:`list_stages` without building
    each stage's description)."""
    return tuple(_ordered())


def default_heads() -> tuple[str, ...]:
    """Names of the stages marked ``default``: what ``analyze`` runs unless told otherwise."""
    return tuple(name for name in _ordered() if getattr(_STAGES[name], "default", False))


def build_stage(name: str, **options: Any) -> Stage:
    """A new instance of the registered stage ``name`` with ``options``.

    Raises
    ------
    ValueError
        If the stage is unknown or does not take one of the options.
    """
    cls = get_stage_class(name)
    accepted = _options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"stage {name!r} has no option(s) {unknown}; it takes: {sorted(accepted) or 'none'}"
        )
    return cls(**options)


def resolve_order(
    wanted: Iterable[str], requires_of: Any = None, known: Sequence[str] | None = None
) -> tuple[str, ...]:
    """``wanted`` with every stage they need, each after its requirements.

    Parameters
    ----------
    wanted : iterable of str
    requires_of : callable, optional
        ``name -> tuple of required names`` (default: the registered classes' ``requires``);
        the analyzer passes one that knows about stage instances it was given.
    known : sequence of str, optional
        Tie-break order (default: registry order); stages not in it come last, in the order
        they were asked for.

    Raises
    ------
    ValueError
        An unknown stage, or requirements that form a cycle.
    """
    if requires_of is None:

        def requires_of(n: str) -> tuple[str, ...]:
            return tuple(get_stage_class(n).requires)

    if known is None:
        known = tuple(_ordered())
    rank = {n: i for i, n in enumerate(known)}
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(n: str, path: tuple[str, ...]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise ValueError(f"stage requirements form a cycle: {' -> '.join((*path, n))}")
        state[n] = 1
        for r in sorted(requires_of(n), key=lambda x: rank.get(x, len(rank))):
            visit(r, (*path, n))
        state[n] = 2
        order.append(n)

    asked = list(dict.fromkeys(wanted))
    for n in sorted(asked, key=lambda x: (rank.get(x, len(rank)), asked.index(x))):
        visit(n, ())
    return tuple(order)


def parse_stage_list(text: str | None) -> tuple[str, ...] | None:
    """``"a, b"`` -> ``("a", "b")`` (``--stages``, ``?stages=``, the environment); None stays
    None (the default heads)."""
    if text is None:
        return None
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parse_model_choices(
    pairs: Iterable[str], default_head: str | None = None
) -> dict[str, dict[str, Any]]:
    """``HEAD=NAME`` values (``--model``, ``?model=``) -> stage options
    ``{HEAD: {"model": NAME}}``; a bare ``NAME`` goes to ``default_head`` when one is given.

    Raises
    ------
    ValueError
        For a value that is not ``HEAD=NAME`` (or a bare name without a default head).
    """
    options: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        head, sep, name = pair.partition("=")
        if not sep:
            head, name = default_head or "", pair
        head, name = head.strip(), name.strip()
        if not head or not name:
            raise ValueError(
                f"a model choice is HEAD=NAME (e.g. attractiveness=attractiveness_scut), "
                f"got {pair!r}"
            )
        options[head] = {"model": name}
    return options
