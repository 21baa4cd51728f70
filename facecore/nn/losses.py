"""Focal loss, multi-class (softmax) and binary (sigmoid).

Paper: T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss for Dense Object
Detection", ICCV 2017 (RetinaNet), Eq. 5:

    FL(p_t) = -alpha_t * (1 - p_t)^gamma * log(p_t),

with ``p_t`` the model's probability of the true class. ``gamma = 0`` and no ``alpha`` give the
cross-entropy (binary cross-entropy for the sigmoid form).

* Binary / multi-label (the paper's form): ``p = sigmoid(logit)``,
  ``p_t = p * y + (1 - p) * (1 - y)`` and ``alpha_t = alpha * y + (1 - alpha) * (1 - y)``.
  As in the paper the loss is computed from logits for numerical stability (the log term is
  ``binary_cross_entropy_with_logits``). Soft targets in [0, 1] are accepted through the same
  formulas.
* Multi-class (the paper notes that the extension to several classes is straightforward):
  ``p_t = softmax(logits)[target]`` computed through ``log_softmax``; ``alpha`` is either one
  scalar (a constant factor) or one weight per class (``alpha_t = alpha[target]``).

Departures from the paper, and why:

* ``reduction="mean"`` averages over elements (over non-ignored targets in the multi-class form).
  RetinaNet instead divides the sum by the number of anchors assigned to objects, a quantity
  that only the detector knows: use ``reduction="sum"`` and divide yourself to reproduce it. With
  per-class ``alpha`` this mean is not the weight-normalised mean of
  ``F.cross_entropy(weight=...)``; the sums agree.
* The binary default ``alpha=0.25`` is the paper's; the multi-class default is no weighting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["focal_loss", "binary_focal_loss", "FocalLoss", "BinaryFocalLoss"]

Reduction = Literal["none", "mean", "sum"]


def _reduce(loss: Tensor, reduction: Reduction, count: Tensor | int | None = None) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        if count is None:
            return loss.mean()
        return loss.sum() / count
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def focal_loss(
    logits: Tensor,
    target: Tensor,
    alpha: float | Sequence[float] | Tensor | None = None,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Multi-class (softmax) focal loss.

    Parameters
    ----------
    logits : Tensor
        Unnormalised scores, shape (N, C) or (N, C, d1, ...).
    target : Tensor
        Class indices, shape (N,) or (N, d1, ...), integer dtype.
    alpha : float, sequence of C floats, Tensor or None
        Constant factor or per-class weights; ``None`` for none.
    gamma : float
        Focusing parameter (>= 0); 0 gives the cross-entropy.
    reduction : {"none", "mean", "sum"}
        ``"none"`` returns the per-element loss of ``target``'s shape (0 where ignored).
    ignore_index : int
        Targets with this value contribute nothing (and do not count in the mean).

    Returns
    -------
    Tensor
        The loss.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if logits.dim() < 2:
        raise ValueError(f"logits must have shape (N, C, ...), got {tuple(logits.shape)}")
    valid = target != ignore_index
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    log_p = F.log_softmax(logits, dim=1)
    log_pt = log_p.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    pt = log_pt.exp()
    loss = -((1.0 - pt).clamp_min(0.0) ** gamma) * log_pt
    if alpha is not None:
        if isinstance(alpha, float | int):
            loss = loss * float(alpha)
        else:
            a = torch.as_tensor(alpha, dtype=logits.dtype, device=logits.device)
            if a.dim() != 1 or a.numel() != logits.shape[1]:
                raise ValueError(
                    f"per-class alpha needs {logits.shape[1]} entries, got {tuple(a.shape)}"
                )
            loss = loss * a[safe_target]
    loss = loss * valid.to(loss.dtype)
    return _reduce(loss, reduction, valid.sum())


def binary_focal_loss(
    logits: Tensor,
    target: Tensor,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Binary / multi-label (sigmoid) focal loss, RetinaNet Eq. 5.

    Parameters
    ----------
    logits : Tensor
        Unnormalised scores of any shape.
    target : Tensor
        Targets in [0, 1] of the same shape (hard 0/1 labels or soft labels).
    alpha : float or None
        Weight of the positive class (``1 - alpha`` for negatives); ``None`` for none.
    gamma : float
        Focusing parameter (>= 0); 0 with ``alpha=None`` gives the binary cross-entropy.
    reduction : {"none", "mean", "sum"}
        Reduction over all elements.

    Returns
    -------
    Tensor
        The loss.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if logits.shape != target.shape:
        raise ValueError(
            f"logits and target shapes differ: {tuple(logits.shape)} vs {tuple(target.shape)}"
        )
    target = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    pt = p * target + (1.0 - p) * (1.0 - target)
    loss = ((1.0 - pt).clamp_min(0.0) ** gamma) * ce
    if alpha is not None:
        loss = loss * (alpha * target + (1.0 - alpha) * (1.0 - target))
    return _reduce(loss, reduction)


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss` (multi-class)."""

    def __init__(
        self,
        alpha: float | Sequence[float] | Tensor | None = None,
        gamma: float = 2.0,
        reduction: Reduction = "mean",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        if alpha is not None and not isinstance(alpha, float | int):
            self.register_buffer("alpha", torch.as_tensor(alpha, dtype=torch.float32))
        else:
            self.alpha = alpha
        self.gamma = gamma
        self.reduction: Reduction = reduction
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of ``logits`` (N, C, ...) against class indices ``target`` (N, ...)."""
        return focal_loss(logits, target, self.alpha, self.gamma, self.reduction, self.ignore_index)


class BinaryFocalLoss(nn.Module):
    """Module form of :func:`binary_focal_loss`."""

    def __init__(
        self, alpha: float | None = 0.25, gamma: float = 2.0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.reduction: Reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of ``logits`` against targets in [0, 1] of the same shape."""
        return binary_focal_loss(logits, target, self.alpha, self.gamma, self.reduction)
