"""Soft orthonormality regulariser for the weights of any model.

The penalty is

    R(theta) = lambda / 2 * sum_l || W_l^T W_l - I ||_F^2,

with ``W_l`` the weight of layer ``l`` reshaped to a matrix of shape ``(out, in * k * k)``
(one row per output filter). It is the orthonormality regularisation of D. Xie, J. Xiong, S. Pu,
"All You Need is Beyond a Good Init: Exploring Better Solution for Training Extremely Deep
Convolutional Neural Networks with Orthonormality and Modulation", CVPR 2017, also studied as
"soft orthogonality" by N. Bansal, X. Chen, Z. Wang, "Can We Gain More from Orthogonality
Regularizations in Training Deep CNNs?", NeurIPS 2018. (Equation numbers are not cited: the
formula above is the one this module computes.)

Which Gram matrix (a documented choice): for ``W`` of shape ``(m, n)`` this module uses the
smaller of ``W W^T`` (``m x m``) and ``W^T W`` (``n x n``). Both have the same non-zero eigenvalues
``sigma_i^2``, so

    ||W^T W - I_n||_F^2 = ||W W^T - I_m||_F^2 + |n - m|    (when m <= n, and symmetrically),

i.e. the two penalties differ by a constant: same gradient, same minimisers, but the smaller
side reaches exactly zero (orthonormal rows when ``m <= n``, orthonormal columns otherwise) and
costs ``min(m, n)^2`` instead of ``max(m, n)^2`` memory.

Departures from the cited papers: none in the formula. Grouped convolutions are treated as one
``(out, in/groups * k * k)`` matrix (the groups are not regularised separately), and transposed
convolutions use their stored weight layout ``(in, out/groups, k, k)``; pass ``layer_types`` to
leave them out if that is not wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

__all__ = ["orthonormality_error", "orthonormal_penalty", "DEFAULT_LAYER_TYPES"]

logger = logging.getLogger(__name__)

#: Layer types regularised by default.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


def orthonormality_error(weight: Tensor) -> Tensor:
    """``|| G - I ||_F^2`` for the smaller Gram matrix ``G`` of ``weight`` viewed as (out, -1).

    Parameters
    ----------
    weight : Tensor
        A layer weight of shape (out, ...) with at least 2 dimensions.

    Returns
    -------
    Tensor
        A scalar, differentiable w.r.t. ``weight``.
    """
    if weight.dim() < 2:
        raise ValueError(f"weight must have at least 2 dimensions, got {tuple(weight.shape)}")
    w = weight.reshape(weight.shape[0], -1)
    m, n = w.shape
    gram = w @ w.T if m <= n else w.T @ w
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return ((gram - eye) ** 2).sum()


def orthonormal_penalty(
    model: nn.Module,
    weight: float = 1e-4,
    layer_types: Iterable[type[nn.Module]] = DEFAULT_LAYER_TYPES,
    include: Callable[[str, nn.Module], bool] | None = None,
) -> Tensor:
    """``weight / 2 * sum_l ||W_l^T W_l - I||_F^2`` over the chosen layers of ``model``.

    Add the result to the training loss.

    Parameters
    ----------
    model : nn.Module
        Any model.
    weight : float
        The coefficient lambda.
    layer_types : iterable of module types
        Modules of these types whose ``weight`` parameter has 2+ dimensions and requires grad
        are regularised (default: ``nn.Conv2d`` and ``nn.Linear``).
    include : callable, optional
        ``include(name, module) -> bool`` to further select layers, e.g. to leave out the
        classifier: ``lambda name, m: name != "fc"``.

    Returns
    -------
    Tensor
        A scalar on the device and dtype of the first regularised weight (a float zero when no
        layer matches).
    """
    types = tuple(layer_types)
    total: Tensor | None = None
    for name, module in model.named_modules():
        if not isinstance(module, types):
            continue
        w = getattr(module, "weight", None)
        if not isinstance(w, Tensor) or w.dim() < 2 or not w.requires_grad:
            continue
        if include is not None and not include(name, module):
            continue
        err = orthonormality_error(w)
        total = err if total is None else total + err
    if total is None:
        logger.debug("orthonormal_penalty: no layer of types %s in the model", types)
        return torch.zeros(())
    return 0.5 * weight * total
