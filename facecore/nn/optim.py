"""LARS (layer-wise adaptive rate scaling) and its warm-up + polynomial-decay schedule.

Paper: Y. You, I. Gitman, B. Ginsburg, "Large Batch Training of Convolutional Networks",
arXiv 1708.03888, 2017. Algorithm 1 ("SGD with LARS"), for every layer (parameter tensor) ``l``
at step ``t``:

    g      = grad L(w)
    gamma  = global learning rate at step t           (warm-up, then polynomial decay, power 2)
    lambda = eta * ||w|| / (||g|| + beta * ||w||)     (local LR)
    v      = m * v + gamma * lambda * (g + beta * w)  (momentum, weight decay beta)
    w      = w - v

with ``eta`` the trust coefficient, ``beta`` the weight decay and ``m`` the momentum. The
momentum buffer accumulates the *scaled* step, as in the paper (not PyTorch's SGD convention of
multiplying the buffer by the learning rate afterwards).

The global schedule (:func:`warmup_polynomial_factor`, :class:`WarmupPolynomialLR`): a linear
warm-up over ``warmup_steps`` steps (the paper combines LARS with the warm-up of Goyal et al.),
then ``(1 - t' / T')^power`` with ``power = 2`` as in Algorithm 1, where ``t'`` and ``T'`` count
the steps after the warm-up.

Departures from the paper, and why:

* The polynomial decay runs over the steps that follow the warm-up (Algorithm 1 has no
  warm-up and decays over all ``T`` steps); without warm-up the two are identical.
* When ``||w|| = 0`` or ``||g|| = 0`` the local LR is undefined or zero; it falls back to 1 (plain
  momentum SGD for that step), as in the reference implementations.
* A parameter group may set ``adapt=False`` to skip the local LR (plain momentum SGD with the
  paper's momentum convention). :func:`lars_param_groups` puts biases and normalisation
  parameters in such a group with no weight decay, the usual practice for large-batch training
  (the paper adapts every layer, including those).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "LARS",
    "lars_param_groups",
    "warmup_polynomial_factor",
    "WarmupPolynomialLR",
]

logger = logging.getLogger(__name__)

_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


class LARS(Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017, Algorithm 1).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups (dicts). A group may override any default below.
    lr : float
        Global learning rate ``gamma`` (usually driven by :class:`WarmupPolynomialLR`).
    momentum : float
        Momentum ``m``.
    weight_decay : float
        Weight decay ``beta`` (used both in the local LR and in the update).
    eta : float
        Trust coefficient of the local LR.
    eps : float
        Added to the local LR's denominator for safety (0 reproduces the paper exactly).
    adapt : bool
        Apply the local LR; ``False`` gives plain momentum SGD for the group.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        eta: float = 0.001,
        eps: float = 0.0,
        adapt: bool = True,
    ) -> None:
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if eta <= 0:
            raise ValueError(f"eta must be > 0, got {eta}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "eps": eps,
            "adapt": adapt,
        }
        super().__init__(params, defaults)

    @staticmethod
    def local_lr(w: Tensor, g: Tensor, eta: float, weight_decay: float, eps: float = 0.0) -> Tensor:
        """``eta * ||w|| / (||g|| + beta * ||w|| + eps)``, or 1 where a norm is zero."""
        w_norm = torch.linalg.vector_norm(w)
        g_norm = torch.linalg.vector_norm(g)
        ratio = eta * w_norm / (g_norm + weight_decay * w_norm + eps)
        ok = (w_norm > 0) & (g_norm > 0)
        return torch.where(ok, ratio, torch.ones_like(ratio))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one update of every parameter that has a gradient.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, m, beta = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LARS does not support sparse gradients")
                g = p.grad
                update = g.add(p, alpha=beta) if beta != 0 else g.clone()
                if group["adapt"]:
                    update.mul_(self.local_lr(p, g, group["eta"], beta, group["eps"]))
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = torch.zeros_like(p)
                    state["momentum_buffer"] = buf
                buf.mul_(m).add_(update, alpha=lr)
                p.sub_(buf)
        return loss


def lars_param_groups(
    model: nn.Module,
    exclude_bias_and_norm: bool = True,
    excluded_weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into an adapted and a non-adapted group.

    Parameters
    ----------
    model : nn.Module
        The model to optimise.
    exclude_bias_and_norm : bool
        Put biases and the parameters of normalisation layers (BatchNorm, GroupNorm, LayerNorm,
        InstanceNorm) in a group with ``adapt=False``; if ``False`` one group holds everything.
    excluded_weight_decay : float
        Weight decay of the excluded group.

    Returns
    -------
    list of dict
        Parameter groups for :class:`LARS`; empty groups are left out.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not exclude_bias_and_norm:
        return [{"params": params}]
    excluded: set[int] = set()
    for module in model.modules():
        if isinstance(module, _NORM_TYPES):
            excluded.update(id(p) for p in module.parameters(recurse=False))
    for name, p in model.named_parameters():
        if name.rsplit(".", 1)[-1] == "bias" or p.dim() <= 1:
            excluded.add(id(p))
    adapted = [p for p in params if id(p) not in excluded]
    plain = [p for p in params if id(p) in excluded]
    groups: list[dict[str, Any]] = []
    if adapted:
        groups.append({"params": adapted})
    if plain:
        groups.append({"params": plain, "adapt": False, "weight_decay": excluded_weight_decay})
    logger.debug("LARS groups: %d adapted, %d excluded tensors", len(adapted), len(plain))
    return groups


def warmup_polynomial_factor(
    step: int, total_steps: int, warmup_steps: int = 0, power: float = 2.0
) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    ``(step + 1) / warmup_steps`` during the warm-up, then
    ``(1 - (step - warmup_steps) / (total_steps - warmup_steps)) ** power``, and 0 from
    ``total_steps`` on.

    Parameters
    ----------
    step : int
        Current step, starting at 0.
    total_steps : int
        Total number of steps ``T`` (warm-up included).
    warmup_steps : int
        Length of the linear warm-up (0 for none).
    power : float
        Power of the polynomial decay (2 in the paper).
    """
    if total_steps <= 0 or not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}"
        )
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return 0.0
    return (1.0 - (step - warmup_steps) / (total_steps - warmup_steps)) ** power


class WarmupPolynomialLR(LambdaLR):
    """Scheduler applying :func:`warmup_polynomial_factor` to every group's base LR.

    Call ``scheduler.step()`` once after every ``optimizer.step()``.

    Parameters
    ----------
    optimizer : Optimizer
        The wrapped optimizer (typically :class:`LARS`).
    total_steps, warmup_steps, power
        See :func:`warmup_polynomial_factor`.
    last_epoch : int
        Index of the last step, for resuming (-1 to start).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        warmup_steps: int = 0,
        power: float = 2.0,
        last_epoch: int = -1,
    ) -> None:
        warmup_polynomial_factor(0, total_steps, warmup_steps, power)  # validate arguments
        self.total_steps, self.warmup_steps, self.power = total_steps, warmup_steps, power
        super().__init__(
            optimizer,
            lambda s: warmup_polynomial_factor(s, total_steps, warmup_steps, power),
            last_epoch=last_epoch,
        )
