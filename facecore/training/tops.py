"""Fine-tuned trunk tops that output a label distribution: training, cached inputs, final fit.

A trainable copy of dlib's face ResNet from ``recipe.start`` on
(:class:`facecore.nn.top.BackboneTop`), trained on the cached frozen map before that stage with
the KL loss to label distributions, exact flip augmentation and a one-cycle AdamW schedule of a
fixed length (no early stopping, so no split is used to pick an epoch). :func:`ship_tops` is the
final fit of every top recipe. This module implements no paper (see
:mod:`facecore.heads.distribution`). It imports torch: import it explicitly.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FILE_LINE",
    "INT8_CARD_NOTE",
    "TopRecipe",
    "calibration_maps",
    "dataset_maps",
    "final_model",
    "ship_tops",
    "stack_note",
    "dataset_views",
    "new_top",
    "train_top",
    "trunk_features",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopRecipe:
    """How a distribution top is trained.

    Attributes
    ----------
    start : str, default "stage3"
        First trainable stage (the top takes the frozen map of the stage before it).
    epochs, batch_size, lr, weight_decay : training settings of :class:`FitConfig`
        (one-cycle AdamW, peak ``lr``).
    dropout : float, default 0.0
        Dropout before the output layer.
    hflip : bool, default True
        Exact flip augmentation (needs the mirrored chips' maps).
    seed : int, default 0
    expectation_weight : float, default 0.0
        Weight of the expectation term added to the KL loss (``FitConfig.expectation_weight``;
        needs the bins).
    max_grad_norm : float or None, default 1.0
        Gradient-norm clipping of :class:`FitConfig` (None: none). Added after a fold of the
        age recipe collapsed at the peak rate without it (its loss jumped from 0.90 to 2.30 at
        epoch 4 and the top then gave every photo the same distribution).
    jitter : int, default 0
        Jittered views per chip (:func:`dataset_views`; each with its mirror image) that a
        training sample is drawn from besides the plain and mirrored maps; 0: flips only.
    """

    start: str = "stage3"
    epochs: int = 12
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 1e-4
    dropout: float = 0.0
    hflip: bool = True
    seed: int = 0
    expectation_weight: float = 0.0
    jitter: int = 0
    max_grad_norm: float | None = 1.0

    @property
    def input_node(self) -> str:
        """The frozen map the top takes (``"stage2"`` for ``start="stage3"``)."""
        n = int(self.start.removeprefix("stage"))
        return "stem" if n == 1 else f"stage{n - 1}"

    @property
    def clip_note(self) -> str:
        """For a card's recipe line: ", gradient norm clipped to N", or "" without clipping."""
        return (
            "" if self.max_grad_norm is None else f", gradient norm clipped to {self.max_grad_norm}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings; ``expectation_weight``, ``jitter`` and ``max_grad_norm`` only when set
        (so that folds trained before those fields existed keep their key)."""
        d = asdict(self)
        for name in ("expectation_weight", "jitter", "max_grad_norm"):
            if not d[name]:
                del d[name]
        return d


def dataset_maps(
    chips: Any, upto: str, cache_dir: str | os.PathLike[str] | None = ".cache/maps"
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen float16 maps up to ``upto`` of a dataset's chips and of their mirror images.

    Parameters
    ----------
    chips : DatasetChips
    upto : str
        Last frozen node (``recipe.input_node``).
    cache_dir : path-like or None
        Where the maps are cached (memory-mapped when read back).

    Returns
    -------
    (maps, maps_flipped) : ndarrays (N, C, H, W), float16
    """
    from facecore.training.chips import FACE_RESNET_MODEL, frozen_maps, load_face_resnet

    model = load_face_resnet()
    key = f"{chips.cache_key}|{FACE_RESNET_MODEL}"
    maps = frozen_maps(chips.chips, model, upto=upto, dtype="float16", cache_dir=cache_dir, key=key)
    flipped = frozen_maps(
        np.ascontiguousarray(chips.chips[:, :, ::-1]),
        model,
        upto=upto,
        dtype="float16",
        cache_dir=cache_dir,
        key=key + "|mirrored",
    )
    return maps, flipped


def dataset_views(
    chips: Any,
    upto: str,
    n_jitter: int,
    cache_dir: str | os.PathLike[str] | None = ".cache/maps",
    *,
    seed: int = 0,
) -> list[np.ndarray]:
    """The other versions of a dataset's frozen maps that a top trains on: the mirrored chips'
    maps, then for each of ``n_jitter`` jittered views
    (:func:`facecore.training.augment.jitter_chips`, default ranges, ``seed``) its maps and its
    mirror's. ``1 + 2 * n_jitter`` float16 arrays
    (N, C, H, W), each cached in ``cache_dir``."""
    from facecore.training.augment import Jitter, jitter_chips
    from facecore.training.chips import FACE_RESNET_MODEL, frozen_maps, load_face_resnet

    if n_jitter < 0:
        raise ValueError(f"n_jitter must be >= 0, got {n_jitter}")
    _, flipped = dataset_maps(chips, upto, cache_dir)
    views = [flipped]
    model = load_face_resnet()
    base = f"{chips.cache_key}|{FACE_RESNET_MODEL}"
    jitter = Jitter()
    for v in range(n_jitter):
        key = f"{base}|jitter{v}|seed{seed}|{json.dumps(jitter.to_dict(), sort_keys=True)}"
        keys = (key, key + "|mirrored")
        pair = [_cached_maps(cache_dir, k, upto, len(chips.chips)) for k in keys]
        if any(m is None for m in pair):
            moved = jitter_chips(chips.chips, v, seed=seed, jitter=jitter)
            for j, src in enumerate((moved, np.ascontiguousarray(moved[:, :, ::-1]))):
                if pair[j] is None:
                    pair[j] = frozen_maps(
                        src, model, upto=upto, dtype="float16", cache_dir=cache_dir, key=keys[j]
                    )
        views.extend(pair)
    return views


def _cached_maps(
    cache_dir: str | os.PathLike[str] | None, key: str, upto: str, n: int
) -> np.ndarray | None:
    """The cached float16 maps of ``key`` when they exist with ``n`` rows (memory-mapped)."""
    from facecore.training.chips import maps_cache_path

    if cache_dir is None:
        return None
    path = maps_cache_path(cache_dir, key, upto, "float16")
    if not path.is_file():
        return None
    maps = np.load(path, mmap_mode="r")
    return maps if len(maps) == n else None


def trunk_features(chips: Any, rows: np.ndarray, cache_dir: str | os.PathLike[str]) -> np.ndarray:
    """The frozen trunk's pooled features (len(rows), 896) of chips ``rows``, cached in
    ``cache_dir`` (keyed by the chips and the rows)."""
    import hashlib

    digest = hashlib.sha256(np.asarray(rows, np.int64).tobytes()).hexdigest()[:8]
    path = Path(cache_dir) / f"trunk-{chips.cache_key}-{digest}.npy"
    if path.is_file():
        feats = np.load(path)
        if len(feats) == len(rows):
            return feats
    from facecore.trunk import TrunkStage

    t0 = time.perf_counter()
    feats = TrunkStage(keep_maps=()).compute(np.asarray(chips.chips[rows]))["features"]
    logger.info("trunk features of %d chips in %.0f s", len(feats), time.perf_counter() - t0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, feats)
    return feats


def new_top(recipe: TopRecipe, n_outputs: int, backbone: Any = None) -> Any:
    """An untrained :class:`~facecore.nn.top.BackboneTop`: the published stages from
    ``recipe.start`` on and a new linear layer of ``n_outputs``."""
    import torch

    from facecore.nn.top import BackboneTop
    from facecore.training.chips import load_face_resnet

    # The new output layer is drawn from torch's generator seeded by the recipe, so a fold's
    # top does not depend on what the process did before (an interrupted and resumed CV, or
    # the folds run in another order, trains the same tops); the caller's generator is kept.
    with torch.random.fork_rng(devices=[]):
        backbone = load_face_resnet() if backbone is None else backbone
        torch.manual_seed(recipe.seed)
        return BackboneTop(
            backbone, start=recipe.start, num_outputs=n_outputs, dropout=recipe.dropout
        )


def train_top(
    maps: np.ndarray,
    targets: np.ndarray,
    recipe: TopRecipe,
    *,
    maps_flipped: np.ndarray | None = None,
    maps_views: Sequence[np.ndarray] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    backbone: Any = None,
    device: str = "cpu",
    bins: Any = None,
) -> tuple[Any, Any]:
    """Fit a new top on ``maps`` (N, C, H, W) and target distributions (N, K).

    ``maps_views`` (with ``recipe.jitter``): the other versions of the maps, mirrored first, as
    :func:`dataset_views` gives them; ``maps_flipped`` (flips only) otherwise.

    Returns
    -------
    (BackboneTop, FitResult)
        The top in eval mode, and the fit's history. With ``checkpoint_dir`` a rerun resumes
        from the last finished epoch.
    """
    from facecore.training.fit import FitConfig, fit

    if recipe.jitter:
        want = 1 + 2 * recipe.jitter
        if maps_views is None or len(maps_views) != want:
            got = None if maps_views is None else len(maps_views)
            raise ValueError(f"recipe.jitter={recipe.jitter} needs {want} maps_views, got {got}")
        if not recipe.hflip:
            raise ValueError("recipe.jitter needs hflip (the views include the mirror images)")
    elif recipe.hflip and maps_flipped is None:
        raise ValueError("recipe.hflip needs maps_flipped (the mirrored chips' maps)")
    top = new_top(recipe, targets.shape[1], backbone)
    config = FitConfig(
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        loss="kl",
        seed=recipe.seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        expectation_weight=recipe.expectation_weight,
        bins=None if bins is None else tuple(float(b) for b in bins),
        max_grad_norm=recipe.max_grad_norm,
    )
    result = fit(
        top,
        maps,
        targets,
        config,
        resume=checkpoint_dir is not None,
        X_flipped=maps_flipped if recipe.hflip and not recipe.jitter else None,
        X_views=list(maps_views) if recipe.jitter else None,
    )
    return top.eval(), result


def final_model(
    run: Any, specs: Sequence[tuple[Any, ...]], bins: Any, int8_maps: Any = None, **model: Any
) -> Any:
    """What a top recipe ships: each top of ``specs`` (``(recipe, maps, maps_flipped,
    maps_views, fold folder)``) trained on every row of ``run`` (checkpointed in
    ``<folder>/ckpt-final``), as a :class:`~facecore.heads.distribution.TopDistributionModel`
    (the first top the main one, the others its members; ``model`` its other fields), in int8
    with ``int8_maps``. Sets ``run.seconds["final_fit"]``."""
    from facecore.heads.distribution import TopDistributionModel
    from facecore.nn.dlib_resnet import for_inference

    tops, seconds = [], 0.0
    for recipe, maps, flipped, views, folder in specs:
        top, result = train_top(
            maps,
            run.data.targets,
            recipe,
            maps_flipped=flipped,
            maps_views=views,
            checkpoint_dir=Path(folder) / "ckpt-final",
            device=run.device,
            bins=bins,
        )
        tops.append(for_inference(top))
        seconds += float(sum(r.seconds for r in result.history))
    run.seconds["final_fit"] = seconds
    out = TopDistributionModel(
        top=tops[0], members=tuple(tops[1:]), bins=tuple(float(b) for b in bins), **model
    )
    return out if int8_maps is None else out.with_int8(int8_maps)


def ship_tops(
    run: Any,
    out: Path,
    specs: Sequence[tuple[Any, ...]],
    *,
    task: str,
    output: dict[str, Any],
    inputs: str,
    source: str,
    rebuild: str,
    int8_maps: Any = None,
    stack: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    cv: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    tables: Sequence[Any] = (),
) -> Any:
    """What a recipe of fine-tuned trunk tops ships: a :class:`~facecore.training.publish.Shipped`
    of the :func:`final_model` of ``specs`` (``model``: its other fields; ``stack``: the shipped
    SVR stack's document; ``metadata``: the file's fields besides the data, CV, licence and
    recipe), ``cv.json``'s ``cv`` fields (and the stack, recipe, seconds, shipped learner), the
    manifest entry of a top's file (``task``, the one ``output``, ``inputs``, ``source``,
    ``rebuild``), the card's ``fields`` (and ``int8_note``, ``final_min``) and ``tables``."""
    from facecore.heads.distribution import TOP_ARCHITECTURE
    from facecore.training.publish import Shipped

    recipe, data, n = run.recipe, run.data, len(run.data.y)
    meta = {
        "name": out.name,
        "task": task,
        "training_data": f"{data.title} ({data.n_photos} photos, {n} with a face)",
        "dataset_sha256": data.data_hash,
        "cv": recipe.summary(run),
        "licence": recipe.licence,
        "recipe": recipe.top.to_dict(),
        **(metadata or {}),
    }
    extras = {"stack": stack} if stack else {}
    trained = final_model(
        run, specs, recipe.bins, int8_maps, metadata=meta, extras=extras, **(model or {})
    )
    doc = {
        **(cv or {}),
        "stack": {k: v for k, v in stack.items() if k != "svr"} if stack else None,
        "recipe": recipe.top.to_dict(),
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
        "training_data": f"{data.title}, {data.n_photos} photos of shared/data (dataset sha256 "
        f"{data.data_hash}), {n} with a face",
        "licence": recipe.licence,
        "card": out.name + ".md",
        "rebuild": rebuild,
    }
    fields = {
        "int8_note": "." if int8_maps is None else f"; {INT8_CARD_NOTE}",
        "final_min": run.seconds["final_fit"] / 60,
        **(fields or {}),
    }
    return Shipped(trained, ".pt", doc, lambda path: entry, fields=fields, tables=list(tables))


def stack_note(template: str, stack: dict[str, Any], **more: Any) -> str:
    """A card's sentence on the shipped SVR stack: ``template`` filled with the stack's document
    (``coef`` as ``c``, the SVR's support vectors as ``n_support``) and ``more``."""
    return template.format(n_support=len(stack["svr"]["support"]), c=stack["coef"], **stack, **more)


#: Training photos whose maps set a quantized top's activation ranges.
CALIBRATION_SIZE = 512

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


def calibration_maps(
    maps: np.ndarray, rows: np.ndarray | None = None, *, seed: int = 0, size: int = CALIBRATION_SIZE
) -> np.ndarray:
    """float32 maps of a seeded sample of ``size`` of ``rows`` (default: every row), in row
    order: what :func:`facecore.nn.quantize.quantize_top` calibrates on."""
    rows = np.arange(len(maps)) if rows is None else np.asarray(rows)
    if len(rows) > size:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size, replace=False))
    return np.asarray(maps[rows], dtype=np.float32)
