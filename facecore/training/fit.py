"""A small, resumable PyTorch fit loop for the heads (the one fit loop of the project).

:func:`fit` trains a module with AdamW and, by default, the one-cycle schedule of L. N. Smith
and N. Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning
Rates", 2019 (``OneCycleLR``, stepped per batch). The loss is ``"kl"``, ``KL(target ||
softmax(logits))`` averaged over samples, the loss of label-distribution learning (X. Geng,
"Label Distribution Learning", IEEE TKDE 2016; B.-B. Gao et al., "Deep Label Distribution
Learning With Label Ambiguity", IEEE TIP 2017), or a ``loss_fn`` of the caller's. Batches come
from ``(X, Y)`` (:class:`SampleBatches`) or a :class:`Batches` source; every epoch can be
checkpointed and resumed (``docs/training.md``).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.atomic import atomic_path

__all__ = [
    "CHECKPOINT_NAME",
    "Batches",
    "EpochRecord",
    "FitConfig",
    "FitResult",
    "SampleBatches",
    "fit",
    "predict",
]

logger = logging.getLogger(__name__)

#: File name of the checkpoint in ``FitConfig.checkpoint_dir``.
CHECKPOINT_NAME = "last.pt"

# Config fields a resumed run may change (they do not change the result).
_RESUMABLE_CHANGES = ("device", "checkpoint_dir")

ArrayLike = np.ndarray | Tensor


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit`.

    Attributes
    ----------
    epochs, batch_size, lr, weight_decay
        ``lr`` is the one-cycle schedule's peak (the cosine one's start); AdamW's weight decay.
    loss : {"kl", "custom"}
        "custom": the ``loss_fn`` given to :func:`fit`.
    schedule : {"one-cycle", "cosine"}
        "cosine": ``CosineAnnealingLR`` over every step.
    seed : int
        Seeds the batches and torch's global generator during the fit (then restored).
    device : str
        ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"auto"`` (CUDA when available).
    checkpoint_dir : path-like, optional
        Write ``last.pt`` here after every epoch.
    expectation_weight, bins : float, tuple of float
        With ``loss="kl"``, add this weight times the mean absolute difference of the predicted
        and target expectations on ``bins`` (B.-B. Gao et al., "Age Estimation Using
        Expectation of Label Distribution Learning", IJCAI 2018).
    max_grad_norm : float, optional
        Clip the gradients' global L2 norm to this before every step.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: Literal["kl", "custom"] = "kl"
    schedule: Literal["one-cycle", "cosine"] = "one-cycle"
    seed: int = 0
    device: str = "cpu"
    checkpoint_dir: str | os.PathLike[str] | None = None
    expectation_weight: float = 0.0
    bins: tuple[float, ...] | None = None
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("loss", ("kl", "custom")), ("schedule", ("one-cycle", "cosine"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.expectation_weight < 0 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0, expectation_weight and weight_decay >= 0")
        if self.expectation_weight > 0 and (self.loss != "kl" or not self.bins):
            raise ValueError("expectation_weight needs loss='kl' and the bins")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.bins is not None:
            object.__setattr__(self, "bins", tuple(float(b) for b in self.bins))

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (``checkpoint_dir`` as a string)."""
        ckpt = self.checkpoint_dir
        return asdict(self) | {"checkpoint_dir": None if ckpt is None else str(ckpt)}


@dataclass(frozen=True)
class EpochRecord:
    """One epoch (1-based): its mean training loss, the rate after its last step, its time."""

    epoch: int
    loss: float
    lr: float
    seconds: float


@dataclass
class FitResult:
    """Every epoch's record (also those before a resume) and the epochs resumed (0: none)."""

    history: list[EpochRecord] = field(default_factory=list)
    resumed_from: int = 0


@runtime_checkable
class Batches(Protocol):
    """A source of :func:`fit`'s batches: ``len()`` an epoch, each ``(x, y, weight)`` from
    ``epoch(gen)`` (``weight``: its share of the epoch's loss); ``state_dict()`` is
    checkpointed."""

    def __len__(self) -> int: ...

    def epoch(self, gen: torch.Generator) -> Iterator[tuple[Tensor, Tensor, float]]: ...

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> None: ...


class SampleBatches:
    """Shuffled batches of ``(X, Y)`` rows, each sample possibly swapped for its mirror image
    (``X_flipped``: as in :func:`fit`)."""

    def __init__(
        self,
        X: ArrayLike,
        Y: ArrayLike,
        batch_size: int,
        *,
        X_flipped: ArrayLike | None = None,
    ) -> None:
        n = len(X)
        if n == 0 or len(Y) != n:
            raise ValueError(f"X and Y must have the same non-zero length, got {n} and {len(Y)}")
        if X_flipped is not None and tuple(X_flipped.shape) != tuple(X.shape):
            raise ValueError(f"X_flipped must have X's shape {tuple(X.shape)}")
        self.X, self.Y, self.batch_size, self.X_flipped = X, Y, batch_size, X_flipped

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def epoch(self, gen: torch.Generator) -> Iterator[tuple[Tensor, Tensor, float]]:
        n = len(self.X)
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, self.batch_size):
            idx = perm[s : s + self.batch_size]
            xb = _take(self.X, idx)
            if self.X_flipped is not None:
                mirror = torch.rand(len(idx), generator=gen) < 0.5
                if bool(mirror.any()):
                    xb[mirror] = _take(self.X_flipped, idx[mirror]).to(xb.dtype)
            yield xb, _take(self.Y, idx), float(len(idx))

    def state_dict(self) -> Any:
        return None  # its draws come from fit's generator, which is checkpointed

    def load_state_dict(self, state: Any) -> None:
        return None


# -- pieces -------------------------------------------------------------------------------------
def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return dev


def _take(a: ArrayLike, idx: Tensor) -> Tensor:
    """Rows ``idx`` of an array or tensor, as a tensor (works on read-only memmaps)."""
    if isinstance(a, Tensor):
        return a[idx]
    return torch.from_numpy(np.ascontiguousarray(a[idx.numpy()]))


def _to(t: Tensor, device: torch.device) -> Tensor:
    if t.is_floating_point():
        return t.to(device=device, dtype=torch.float32)
    return t.to(device=device, dtype=torch.int64)


def _kl_loss(
    out: Tensor, target: Tensor, expectation: tuple[float, Tensor] | None = None
) -> Tensor:
    logp = F.log_softmax(out, dim=1)
    loss = F.kl_div(logp, target, reduction="batchmean")
    if expectation is not None:
        weight, bins = expectation
        loss = loss + weight * (logp.exp() @ bins - target @ bins).abs().mean()
    return loss


def predict(
    model: nn.Module, X: ArrayLike, *, batch_size: int = 256, device: str = "cpu"
) -> np.ndarray:
    """The softmax (N, L), float32, of the model's outputs on ``X`` (N, ...), in eval mode."""
    dev = _device(device)
    model.to(dev).eval()
    outs = []
    with torch.inference_mode():
        for s in range(0, len(X), batch_size):
            xb = _to(_take(X, torch.arange(s, min(s + batch_size, len(X)))), dev)
            outs.append(torch.softmax(model(xb), dim=1).float().cpu())
    if not outs:
        raise ValueError("X is empty")
    return torch.cat(outs).numpy()


def _check_resumable(saved: dict[str, Any], config: FitConfig, path: Path) -> None:
    now = config.to_dict()
    changed = [k for k in now if k not in _RESUMABLE_CHANGES and saved.get(k, now[k]) != now[k]]
    if changed:
        raise ValueError(
            f"checkpoint {path} was written with other settings ({changed}: "
            f"{[saved.get(k) for k in changed]} vs {[now[k] for k in changed]}); "
            "resume with the same FitConfig or delete the checkpoint"
        )


# -- the loop -----------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    X: ArrayLike | Batches,
    Y: ArrayLike | None = None,
    config: FitConfig | None = None,
    *,
    progress: Callable[[EpochRecord], None] | None = None,
    resume: bool = False,
    X_flipped: ArrayLike | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> FitResult:
    """Train ``model`` on ``(X, Y)`` (or on a :class:`Batches` source) for ``config.epochs``.

    Parameters
    ----------
    model : nn.Module
        Its parameters with ``requires_grad`` are trained in place; left in eval mode.
    X : ndarray or Tensor of shape (N, ...), or Batches
        Inputs (float16 is read as float32 per batch), or a source of batches (``Y`` None).
    Y : ndarray or Tensor of shape (N, L) or (N,)
        Targets: distributions (N, L) for "kl"; what ``loss_fn`` takes for "custom".
    config : FitConfig, optional
    progress : callable, optional
        Called with each epoch's :class:`EpochRecord` (after the checkpoint is written).
    resume : bool, default False
        Continue from ``checkpoint_dir/last.pt`` if there is one (same config, except
        ``device`` and ``checkpoint_dir``).
    X_flipped : ndarray or Tensor of the shape of X, optional
        Each training sample is taken from ``X_flipped`` (the mirrored images) with
        probability 1/2.
    loss_fn : callable, optional
        ``loss_fn(outputs, targets) -> scalar Tensor``, with ``config.loss="custom"``.

    Returns
    -------
    FitResult
    """
    config = config or FitConfig()
    device = _device(config.device)
    if (config.loss == "custom") != (loss_fn is not None):
        raise ValueError("loss='custom' and loss_fn go together")
    if isinstance(X, Batches):
        if Y is not None or X_flipped is not None:
            raise ValueError("a Batches source draws its own targets and versions")
        batches = X
    else:
        if Y is None:
            raise ValueError("fit needs the targets Y")
        batches = SampleBatches(X, Y, config.batch_size, X_flipped=X_flipped)

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * len(batches)
    if config.schedule == "one-cycle":
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=config.lr, total_steps=total_steps, pct_start=0.3
        )
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    ckpt = None if config.checkpoint_dir is None else Path(config.checkpoint_dir) / CHECKPOINT_NAME
    # What a checkpoint holds besides the epoch, the random states, the history and the config.
    parts = {"model": model, "optimizer": opt, "scheduler": sched, "batches": batches}
    result = FitResult()
    gen = torch.Generator().manual_seed(config.seed)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(config.seed)
        if resume and ckpt is not None and ckpt.is_file():
            saved = torch.load(ckpt, map_location=device, weights_only=True)
            _check_resumable(saved["config"], config, ckpt)
            for name, part in parts.items():
                part.load_state_dict(saved.get(name))
            gen.set_state(saved["rng"]["data"])
            torch.set_rng_state(saved["rng"]["torch"])
            if device.type == "cuda" and "cuda" in saved["rng"]:
                torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
            keys = EpochRecord.__dataclass_fields__  # older checkpoints hold more
            result.history = [EpochRecord(**{k: h[k] for k in keys}) for h in saved["history"]]
            result.resumed_from = saved["epoch"]
            logger.info("resuming from %s after epoch %d", ckpt, saved["epoch"])
        elif resume:
            logger.info("no checkpoint at %s; starting a fresh fit", ckpt)

        if loss_fn is None:
            bins = torch.tensor(config.bins or (), dtype=torch.float32, device=device)
            expectation = (config.expectation_weight, bins) if config.expectation_weight else None
            loss_fn = functools.partial(_kl_loss, expectation=expectation)
        for epoch in range(result.resumed_from + 1, config.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            total = weights = 0.0
            for xb, yb, weight in batches.epoch(gen):
                xb, yb = _to(xb, device), _to(yb, device)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                if config.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                opt.step()
                sched.step()
                total += float(loss.detach()) * weight
                weights += weight
            record = EpochRecord(
                epoch=epoch,
                loss=total / weights,
                lr=float(opt.param_groups[0]["lr"]),
                seconds=time.perf_counter() - t0,
            )
            result.history.append(record)
            if ckpt is not None:
                rng = {"data": gen.get_state(), "torch": torch.get_rng_state()}
                if device.type == "cuda":
                    rng["cuda"] = torch.cuda.get_rng_state_all()
                state = {name: part.state_dict() for name, part in parts.items()} | {
                    "epoch": epoch,
                    "rng": rng,
                    "history": [asdict(h) for h in result.history],
                    "config": config.to_dict(),
                }
                with atomic_path(ckpt) as tmp:
                    torch.save(state, tmp)
            msg = "epoch %d/%d: loss %.5f, lr %.2e (%.1f s)"
            logger.info(msg, epoch, config.epochs, record.loss, record.lr, record.seconds)
            if progress is not None:
                progress(record)

    model.eval()
    return result
