"""The base recipe of the heads whose model is fine-tuned trunk tops with a label distribution.

The age recipe and the rating-distribution recipes run one skeleton (``docs/training.md``): the
tops of :meth:`DistributionRecipe.tops` (float, and int8 with ``int8``), their average
``top-ldl`` and its post-hoc correction, an SVR on the frozen features ``svr_features``, the
stack of the served top and the SVR, and the final fit of what the rule chose
(:meth:`DistributionRecipe.ship_tops`). A head's recipe keeps what differs: its data, its
correction and SVR, its rule and its card. This module implements no paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from facecore.training.learners import _Combiner
from facecore.training.runner import Data, Learner, Recipe, Run
from facecore.training.tops import CALIBRATION_SIZE, TopRecipe

__all__ = ["FILE_LINE", "INT8_CARD_NOTE", "AverageOf", "DistributionRecipe", "TopSpec"]

#: The card's line on a top's file (fields ``file``, ``file_mb``, ``int8_note``).
FILE_LINE = "File: `{file}` (float16 weights, {file_mb:.1f} MB){int8_note}"

#: What a model card says of a top served in int8.
INT8_CARD_NOTE = (
    "served in int8 (facecore.nn.quantize: the convolutions of each residual block in int8, "
    f"activation ranges from {CALIBRATION_SIZE} training photos stored in the file; "
    '`precision="float32"` serves the float weights). The shipped figures are the int8 folds\': '
    "each fold's top quantized with ranges from its own training photos; the float rows show "
    "what int8 costs."
)


class TopSpec(NamedTuple):
    """A top of a recipe: its :class:`~facecore.training.tops.TopRecipe`, the maps it trains on
    with their mirrored version (:func:`~facecore.training.tops.train_top`) and the folder of
    its folds and checkpoints."""

    recipe: Any
    maps: np.ndarray
    flipped: np.ndarray | None
    folder: Path


class AverageOf(_Combiner):
    """The average of ``n`` tops' distributions (an ensemble; nothing to fit), in float32 as
    the tops give them. ``X``: ``[distributions of top 1 | ... | of top n]``."""

    value_is_expectation = True

    def __init__(self, bins: Sequence[float] = (), n: int = 1) -> None:
        self.bins = bins
        self.n = n

    def fit(self, X: np.ndarray, y: np.ndarray) -> AverageOf:
        return self

    def _apply(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.bins)
        parts = [np.asarray(X[:, i * k : (i + 1) * k], np.float32) for i in range(self.n)]
        p = np.mean(parts, axis=0)
        return p @ np.asarray(self.bins, np.float64), p


@dataclass(frozen=True)
class DistributionRecipe(Recipe):
    """A recipe of fine-tuned distribution tops, their correction and their SVR stack.

    Attributes
    ----------
    folds, seed, top : int, int, TopRecipe
        The CV (:class:`~facecore.training.runner.Recipe`) and the main top's recipe.
    int8 : bool
        Serve the tops in int8 (the shipped figures are the int8 folds').
    stack : bool
        Compare the stack of the served top and the SVR.
    svr_features : tuple of str
        The ``Data.features`` the SVR learns from, side by side.
    appearance : bool
        Also compare SVRs on the ``appearance`` features (:mod:`facecore.appearance`), alone
        and beside ``svr_features``, and each one's stack (:attr:`svrs`).
    task : str
        The task of the shipped file's manifest entry.
    correction : str
        The correction's learner is ``top-ldl + <correction>``.
    correction_inputs : tuple of str
        What the correction takes besides the top's distributions.
    stack_tempered : bool
        The stack's temperature gives 90% coverage (else 1).

    Subclasses fill in :meth:`top_folder`, :meth:`make_correction` and :meth:`make_svr`
    besides the hooks of :class:`~facecore.training.runner.Recipe`.
    """

    folds: int = 5
    seed: int = 0
    top: TopRecipe = field(default_factory=TopRecipe)
    int8: bool = True
    stack: bool = True
    svr_features: tuple[str, ...] = ("trunk",)
    appearance: bool = False
    task = ""
    correction = "correction"
    correction_inputs: ClassVar[tuple[str, ...]] = ()
    stack_tempered = True

    def recipes(self) -> tuple[TopRecipe, ...]:
        """The tops' recipes, the main one first (by default :attr:`top` alone)."""
        return (self.top,)

    def top_folder(self, top: TopRecipe, data: Data) -> Path:
        """The folder of the folds and checkpoints of ``top`` (one of :meth:`recipes`)."""
        raise NotImplementedError

    def make_correction(self) -> Any:
        """A new post-hoc correction (a combiner of :mod:`facecore.training.learners`)."""
        raise NotImplementedError

    def make_svr(self, n_features: int) -> Any:
        """A new SVR of the values on ``n_features`` columns of ``svr_features``."""
        raise NotImplementedError

    @property
    def suffix(self) -> str:
        """``", int8"`` when the int8 tops are served, else ``""``."""
        return ", int8" if self.int8 else ""

    @property
    def top_learner(self) -> str:
        """The learner that is the main float top (what other recipes read per fold)."""
        return self._top_names(0, self.recipes()[0])[0]

    def _top_names(self, i: int, top: Any) -> tuple[str, str]:
        if len(self.recipes()) == 1:
            return f"top {i}", f"int8 {i}"
        alone = f"one top: {top.stages} (seed {top.seed})"
        return (f"top {i}" if self.int8 else alone), f"{alone}, int8"

    @property
    def svrs(self) -> dict[str, tuple[str, ...]]:
        """The SVRs compared, by learner name, with the features each reads (``Data.features``
        names, which are also the served faces' ``features`` keys): ``svr-frozen`` on
        ``svr_features``; with ``appearance`` also ``svr-appearance`` and ``svr-concat``."""
        out = {"svr-frozen": tuple(self.svr_features)}
        if self.appearance:
            out |= {
                "svr-appearance": ("appearance",),
                "svr-concat": (*out["svr-frozen"], "appearance"),
            }
        return out

    def stack_name(self, svr: str) -> str:
        """The learner that stacks the served top with the SVR ``svr``."""
        part = "svr" if svr == "svr-frozen" else svr
        return f"top-ldl + {part} stack{self.suffix}"

    def candidates(self) -> list[str]:
        """The served variants the rule chooses from: the top, its correction, the stacks."""
        names = [f"top-ldl{self.suffix}", f"top-ldl + {self.correction}{self.suffix}"]
        return names + ([self.stack_name(v) for v in self.svrs] if self.stack else [])

    def top_inputs(self, chips: Any, rows: np.ndarray) -> dict[str, Any]:
        """``Data.extra`` of the tops: ``rows`` and ``maps`` (node -> the maps of ``rows`` and of
        their mirror images)."""
        from facecore.training.tops import dataset_maps

        folder, maps = Path(self.work_dir) / "maps", {}
        for r in self.recipes():
            if r.input_node not in maps:
                m, f = dataset_maps(chips, r.input_node, folder)
                maps[r.input_node] = (np.asarray(m)[rows], np.asarray(f)[rows])
        return {"rows": rows, "maps": maps}

    def appearance_inputs(self, dataset: Any, chips: Any, rows: np.ndarray) -> dict[str, Any]:
        """``Data.features`` of the ``appearance`` SVRs: the mirror-averaged features of
        ``rows`` (cached in ``<work_dir>/appearance``); empty without ``appearance``."""
        from facecore.training.chips import appearance_features

        if not self.appearance:
            return {}
        plain, mirrored = appearance_features(dataset, chips, Path(self.work_dir) / "appearance")
        at = np.searchsorted(np.flatnonzero(chips.has_face), rows)
        return {"appearance": (0.5 * (plain + mirrored))[at]}

    def tops(self, run: Run) -> list[TopSpec]:
        """The tops of :meth:`recipes` with their maps (from :meth:`top_inputs`)."""
        maps = run.data.extra["maps"]
        return [
            TopSpec(r, *maps[r.input_node], self.top_folder(r, run.data)) for r in self.recipes()
        ]

    def top_learners(self, run: Run) -> list[Learner]:
        """Each top (and its int8 copy), then per served precision ``top-ldl``, their average,
        and its correction. With several tops each is also a row of the table."""
        from facecore.training.learners import Int8Top, TopRegressor

        specs, out, parts = self.tops(run), [], {"": [], ", int8": []}
        many, bins = len(specs) > 1, self.bins
        for i, s in enumerate(specs):
            name, int8 = self._top_names(i, s.recipe)
            cache = lambda r, s=s: s.folder  # noqa: E731
            parts[""].append(name)
            make = lambda r, s=s: TopRegressor(  # noqa: E731
                s.recipe, bins, s.maps, s.flipped, device=r.device
            )
            out.append(
                Learner(name, make, ("rows",), "targets", cache, table=many and not self.int8)
            )
            if self.int8:
                parts[", int8"].append(int8)
                make = lambda r, s=s: Int8Top(s.recipe, bins, s.maps, seed=self.seed)  # noqa: E731
                out.append(Learner(int8, make, ("rows",), "targets", cache, table=many))
        for tag, names in parts.items():
            if names:
                top, k = f"top-ldl{tag}", len(names)
                out.append(Learner(top, lambda r, k=k: AverageOf(bins, k), tuple(names)))
                out.append(
                    Learner(
                        f"top-ldl + {self.correction}{tag}",
                        lambda r: self.make_correction(),
                        (top, *self.correction_inputs),
                    )
                )
        return out

    def svr_learners(self, run: Run, post: Any = None) -> list[Learner]:
        """Each of :attr:`svrs`: :meth:`make_svr` on its features (``post``: on its values)."""
        out = []
        for name, feats in self.svrs.items():
            n = run.inputs(feats).shape[1]
            out.append(Learner(name, lambda r, n=n: self.make_svr(n), feats, post=post))
        return out

    def stack_learners(self) -> list[Learner]:
        """The stack of the served top and each SVR (none without ``stack``)."""
        from facecore.training.learners import SvrStack

        if not self.stack:
            return []
        make = lambda r: SvrStack(self.bins, self.stack_tempered)  # noqa: E731
        top = f"top-ldl{self.suffix}"
        return [Learner(self.stack_name(v), make, (top, v)) for v in self.svrs]

    def chosen_svr(self, run: Run) -> str | None:
        """The SVR of the chosen stack (None when a stack was not chosen)."""
        return next((v for v in self.svrs if self.stack_name(v) == run.chosen), None)

    def fit_served(self, run: Run) -> tuple[Any, dict[str, Any] | None, Any]:
        """What the chosen learner fits on every row's out-of-fold predictions: its correction,
        or the stack's document and its SVR (fitted on every row); None for what it lacks."""
        from facecore.training.learners import SvrStack, final_stack

        y, top, suffix = run.data.y, f"top-ldl{self.suffix}", self.suffix
        if run.chosen == f"top-ldl + {self.correction}{suffix}":
            corr = self.make_correction().fit(run.inputs((top, *self.correction_inputs)), y)
            return corr, None, None
        name = self.chosen_svr(run)
        if name is None:
            return None, None, None
        feats = self.svrs[name]
        X = run.inputs(feats)
        svr = self.make_svr(X.shape[1]).fit(X, y)
        log = hasattr(svr, "regressor_")  # a TransformedTargetRegressor of log(1 + y)
        pipe = svr.regressor_ if log else getattr(svr, "best_estimator_", svr)
        stack = SvrStack(self.bins, self.stack_tempered)
        doc = final_stack(stack, run.inputs((top, name)), y, pipe, log, inputs=feats)
        return None, doc, svr

    def final_model(self, run: Run, **model: Any) -> Any:
        """The tops trained on every row (checkpointed in ``<folder>/ckpt-final``) as a
        :class:`~facecore.heads.distribution.TopDistributionModel` (``model``: its other
        fields), in int8 with ``int8``; sets ``run.seconds["final_fit"]``."""
        from facecore.heads.distribution import TopDistributionModel
        from facecore.nn.dlib_resnet import for_inference
        from facecore.training.learners import TopRegressor
        from facecore.training.tops import calibration_maps

        tops, specs, rows = [], self.tops(run), run.data.features["rows"]
        run.seconds["final_fit"] = 0.0
        for s in specs:
            final = Path(s.folder) / "ckpt-final"
            top = TopRegressor(s.recipe, self.bins, s.maps, s.flipped, final, run.device)
            top.fit(rows, run.data.targets)
            tops.append(for_inference(top.top_))
            run.seconds["final_fit"] += float(sum(r.seconds for r in top.fit_.history))
        bins = tuple(float(b) for b in self.bins)
        out = TopDistributionModel(top=tops[0], members=tuple(tops[1:]), bins=bins, **model)
        if not self.int8:
            return out
        return out.with_int8(
            {s.recipe.input_node: calibration_maps(s.maps, seed=self.seed) for s in specs}
        )

    def ship_tops(
        self,
        run: Run,
        out: Path,
        *,
        output: dict[str, Any],
        inputs: str,
        source: str,
        rebuild: str | None = None,
        stack: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        cv: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        tables: Sequence[Any] = (),
    ) -> Any:
        """The final fit: a :class:`~facecore.training.publish.Shipped` of the
        :meth:`final_model` (``stack``: the SVR stack's document; ``metadata``: the file's
        fields besides the data, CV, licence and recipe), ``cv.json``'s fields ``cv``, the
        manifest entry of a top's file (``output``, ``inputs``, ``source``, ``rebuild``: by
        default the recipe's), the card's ``fields`` and ``tables``."""
        from facecore.heads.distribution import TOP_ARCHITECTURE
        from facecore.training.publish import Shipped

        data, n, task, recipe = run.data, len(run.data.y), self.task, self.top.to_dict()
        meta = {
            "name": out.name,
            "task": task,
            "training_data": f"{data.title} ({data.n_photos} photos, {n} with a face)",
            "dataset_sha256": data.data_hash,
            "cv": self.summary(run),
            "licence": self.licence,
            "recipe": recipe,
            **(metadata or {}),
        }
        extras = {"stack": stack} if stack else {}
        trained = self.final_model(run, metadata=meta, extras=extras, **(model or {}))
        doc = {
            **(cv or {}),
            "stack": {k: v for k, v in stack.items() if k != "svr"} if stack else None,
            "recipe": recipe,
            "seconds": {k: round(v, 1) for k, v in run.seconds.items()},
            "shipped": run.chosen,
        }
        entry = {
            "kind": task,
            "task": task,
            "architecture": TOP_ARCHITECTURE,
            "input_size": [150, 150],
            "normalisation": None,
            "chip": {"method": "dlib", "size": 150, "padding": 0.25},
            "outputs": [{**output, "dim": output.get("dim")}],
            "inputs": inputs,
            "source": source,
            "training_data": f"{data.title}, {data.n_photos} photos of shared/data (dataset "
            f"sha256 {data.data_hash}), {n} with a face",
            "licence": self.licence,
            "card": out.name + ".md",
            "rebuild": (rebuild or self.rebuild) + (" --appearance" if self.appearance else ""),
        }
        svr = self.chosen_svr(run)
        if svr is not None and "appearance" in self.svrs[svr]:
            entry["stages"] = ["appearance"]
        fields = {
            "int8_note": f"; {INT8_CARD_NOTE}" if self.int8 else ".",
            "final_min": run.seconds["final_fit"] / 60,
            **(fields or {}),
            "rebuild": entry["rebuild"],
        }
        return Shipped(trained, ".pt", doc, lambda path: entry, fields=fields, tables=list(tables))


#: How a card names the features an SVR reads.
SVR_INPUTS = {
    ("trunk",): "the frozen trunk features",
    ("appearance",): "the FaceRes appearance features (VGGFace2 MobileNet, facecore.appearance)",
    ("trunk", "appearance"): "the frozen trunk and FaceRes appearance features side by side",
}


def value_note(
    notes: dict[str, str], stack: dict[str, Any] | None, corrected: bool, **more: Any
) -> str:
    """A card's sentence on how the served value is made: without a ``stack``,
    ``notes["correction"]`` (``corrected``) or ``notes["none"]``; else ``notes["stack"]``
    filled with the stack's document (``coef`` as ``c``, the SVR's support vectors as
    ``n_support``, its features as ``svr_inputs``) and ``more``."""
    if not stack:
        return notes["correction" if corrected else "none"]
    inputs = SVR_INPUTS[tuple(stack["svr"].get("inputs", ("trunk",)))]
    n = len(stack["svr"]["support"])
    return notes["stack"].format(n_support=n, c=stack["coef"], svr_inputs=inputs, **stack, **more)
