"""Fine-tuned trunk tops that output a label distribution: training and cached inputs.

A trainable copy of dlib's face ResNet from ``recipe.start`` on
(:class:`facecore.nn.top.BackboneTop`), trained on the cached frozen map before that stage with
the KL loss, exact flip augmentation and a one-cycle AdamW schedule of a fixed length (no early
stopping). The recipes of such tops are
:class:`facecore.training.distribution_recipe.DistributionRecipe` s. This module implements no
paper (see :mod:`facecore.heads.distribution`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CALIBRATION_SIZE",
    "TopRecipe",
    "calibration_maps",
    "dataset_maps",
    "new_top",
    "train_top",
    "trunk_features",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopRecipe:
    """How a distribution top is trained (:class:`~facecore.training.fit.FitConfig`'s
    one-cycle AdamW with peak ``lr``; ``dropout`` before the output layer).

    Attributes
    ----------
    start : str
        First trainable stage (the top takes the frozen map of the stage before it).
    hflip : bool
        Exact flip augmentation (needs the mirrored chips' maps).
    expectation_weight : float
        Weight of the expectation term added to the KL loss.
    max_grad_norm : float or None
        Gradient-norm clipping (None: none; ``docs/training.md`` says why it exists).
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
    max_grad_norm: float | None = 1.0

    @property
    def input_node(self) -> str:
        """The frozen map the top takes (``"stage2"`` for ``start="stage3"``)."""
        n = int(self.start.removeprefix("stage"))
        return "stem" if n == 1 else f"stage{n - 1}"

    @property
    def stages(self) -> str:
        """The stages it fine-tunes (``"stages 3-5"``)."""
        return f"stages {self.start.removeprefix('stage')}-5"

    @property
    def clip_note(self) -> str:
        """For a card's recipe line: ", gradient norm clipped to N", or "" without clipping."""
        return (
            "" if self.max_grad_norm is None else f", gradient norm clipped to {self.max_grad_norm}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings; ``expectation_weight`` and ``max_grad_norm`` only when set (so that
        folds trained before those fields existed keep their key)."""
        d = asdict(self)
        for name in ("expectation_weight", "max_grad_norm"):
            if not d[name]:
                del d[name]
        return d


def dataset_maps(
    chips: Any, upto: str, cache_dir: str | os.PathLike[str] | None = ".cache/maps"
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen float16 maps (N, C, H, W) up to node ``upto`` of a dataset's chips and of their
    mirror images, cached in ``cache_dir`` (memory-mapped when read back)."""
    from facecore.training.chips import FACE_RESNET_MODEL, frozen_maps

    key = f"{chips.cache_key}|{FACE_RESNET_MODEL}"
    mirrored = np.ascontiguousarray(chips.chips[:, :, ::-1])
    return tuple(
        frozen_maps(c, upto=upto, dtype="float16", cache_dir=cache_dir, key=k)
        for c, k in ((chips.chips, key), (mirrored, key + "|mirrored"))
    )


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
    checkpoint_dir: str | os.PathLike[str] | None = None,
    backbone: Any = None,
    device: str = "cpu",
    bins: Any = None,
) -> tuple[Any, Any]:
    """Fit a new top on ``maps`` (N, C, H, W) and target distributions (N, K).

    ``maps_flipped``: the mirrored chips' maps (with ``recipe.hflip``). With ``checkpoint_dir``
    a rerun resumes from the last finished epoch.

    Returns
    -------
    (BackboneTop, FitResult)
        The top in eval mode, and the fit's history.
    """
    from facecore.training.fit import FitConfig, fit

    if recipe.hflip and maps_flipped is None:
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
        X_flipped=maps_flipped if recipe.hflip else None,
    )
    return top.eval(), result


#: Training photos whose maps set a quantized top's activation ranges.
CALIBRATION_SIZE = 512


def calibration_maps(
    maps: np.ndarray, rows: np.ndarray | None = None, *, seed: int = 0, size: int = CALIBRATION_SIZE
) -> np.ndarray:
    """float32 maps of a seeded sample of ``size`` of ``rows`` (default: all), in row order:
    what :func:`facecore.nn.quantize.quantize_top` calibrates on."""
    rows = np.arange(len(maps)) if rows is None else np.asarray(rows)
    if len(rows) > size:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size, replace=False))
    return np.asarray(maps[rows], dtype=np.float32)
