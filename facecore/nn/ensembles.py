"""Coupled ensembles: several branches trained jointly as one model through a fusion layer.

Paper: A. Dutt, D. Pellerin, G. Quénot, "Coupled Ensembles of Neural Networks", arXiv
1709.06053, 2017 (also CBMI 2018). Each branch is a standalone network (here any model of the
registry, built with :func:`facecore.nn.registry.create_model`); a parameter-free "fuse
(averaging) layer" combines the branch outputs *before* the loss, so the whole ensemble is
trained as one model with one loss (the paper defines it in words and a figure; there is no
numbered equation). The paper compares placing the average after the linear layer ("FC"), after
the softmax ("SM") and after the log-softmax ("LSM") and trains with LSM averaging; all three are
available through ``fusion``:

* ``"log_softmax"`` (default, classification): the mean of the branches' log-softmax outputs.
  The result is an (unnormalised) log-probability to be used with ``nn.NLLLoss``; the NLL of the
  mean equals the mean of the branches' cross-entropies.
* ``"softmax"``: the log of the mean of the branches' probabilities, ``log(1/K sum p_k)``,
  computed stably with ``logsumexp``; returned in the log domain so the same ``nn.NLLLoss`` works.
* ``"mean"``: the mean of the raw outputs. This is the paper's "FC" fusion for classification
  and the natural fusion for regression, where there is no softmax.

Departures from the paper, and why:

* The paper's branches are DenseNet-BC / ResNet-preact of a fixed budget; here the branch is any
  registered backbone, given by name, and all branches share one architecture so that their
  feature maps line up.
* :meth:`CoupledEnsemble.forward_features` concatenates the branch feature maps along the
  channel axis (and :attr:`feature_info` sums the channels) so that the ensemble exposes the same
  ``forward_features`` / ``forward_head`` interface as every other model; the paper has no such
  notion.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.nn.registry import create_model, register_model

__all__ = ["FUSIONS", "fuse_outputs", "CoupledEnsemble", "coupled_ensemble"]

logger = logging.getLogger(__name__)

Fusion = Literal["log_softmax", "softmax", "mean"]
FUSIONS: tuple[str, ...] = ("log_softmax", "softmax", "mean")


def fuse_outputs(outputs: Tensor, fusion: Fusion = "log_softmax") -> Tensor:
    """Fuse stacked branch outputs.

    Parameters
    ----------
    outputs : Tensor
        Raw branch outputs, shape (K, B, num_outputs) for K branches (class axis last).
    fusion : {"log_softmax", "softmax", "mean"}
        See the module docstring.

    Returns
    -------
    Tensor
        Shape (B, num_outputs): log-probabilities for the first two fusions, raw outputs for
        ``"mean"``.
    """
    if outputs.dim() < 2:
        raise ValueError(f"outputs must have shape (K, B, ...), got {tuple(outputs.shape)}")
    k = outputs.shape[0]
    if fusion == "log_softmax":
        return F.log_softmax(outputs, dim=-1).mean(dim=0)
    if fusion == "softmax":
        return torch.logsumexp(F.log_softmax(outputs, dim=-1), dim=0) - math.log(k)
    if fusion == "mean":
        return outputs.mean(dim=0)
    raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")


class CoupledEnsemble(nn.Module):
    """``num_branches`` copies of a registered backbone fused before the loss.

    Parameters
    ----------
    branch : str
        Registered model name of each branch.
    num_branches : int
        Number of branches *K* (the paper uses 2 to 8).
    fusion : {"log_softmax", "softmax", "mean"}
        Fusion of the branch outputs; ``"mean"`` for regression.
    **branch_kwargs
        Passed to ``create_model(branch, ...)`` for every branch (e.g. ``num_outputs``,
        ``in_chans``, ``drop_rate``).

    Attributes
    ----------
    num_features : int
        Channels of the concatenated feature map (sum over branches).
    feature_info : list of dict
        The branch's stage list with channels summed over branches.
    """

    def __init__(
        self,
        branch: str = "resnet18",
        num_branches: int = 4,
        fusion: Fusion = "log_softmax",
        **branch_kwargs: Any,
    ) -> None:
        super().__init__()
        if num_branches < 1:
            raise ValueError(f"num_branches must be >= 1, got {num_branches}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if branch == "coupled_ensemble":
            raise ValueError("a coupled ensemble cannot be its own branch")
        self.fusion = fusion
        self.branch_name = branch
        self.branches = nn.ModuleList(
            create_model(branch, **branch_kwargs) for _ in range(num_branches)
        )
        first = self.branches[0]
        self._branch_features = [int(b.num_features) for b in self.branches]
        self.num_features = sum(self._branch_features)
        self.feature_info = [
            {**info, "num_chs": int(info["num_chs"]) * num_branches}
            for info in getattr(first, "feature_info", [])
        ]
        logger.debug("built CoupledEnsemble(%s x %d, fusion=%s)", branch, num_branches, fusion)

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Stage maps of all branches, concatenated along channels, one per ``feature_info``."""
        per_branch = [b.forward_stages(x) for b in self.branches]
        return [torch.cat(maps, dim=1) for maps in zip(*per_branch, strict=True)]

    def forward_features(self, x: Tensor) -> Tensor:
        """Branch feature maps concatenated along channels, shape (B, num_features, h, w)."""
        return torch.cat([b.forward_features(x) for b in self.branches], dim=1)

    def branch_outputs(self, features: Tensor) -> Tensor:
        """Raw outputs of every branch's head, shape (K, B, num_outputs)."""
        chunks = torch.split(features, self._branch_features, dim=1)
        return torch.stack([b.forward_head(f) for b, f in zip(self.branches, chunks, strict=True)])

    def forward_head(self, features: Tensor) -> Tensor:
        """Apply each branch's head to its share of ``features`` and fuse the outputs."""
        return fuse_outputs(self.branch_outputs(features), self.fusion)

    def forward(self, x: Tensor) -> Tensor:
        """Fused outputs, shape (B, num_outputs); log-probabilities unless ``fusion='mean'``."""
        return fuse_outputs(torch.stack([b(x) for b in self.branches]), self.fusion)


@register_model
def coupled_ensemble(
    branch: str = "resnet18",
    num_branches: int = 4,
    fusion: Fusion = "log_softmax",
    **kwargs: Any,
) -> CoupledEnsemble:
    """A coupled ensemble of ``num_branches`` registered ``branch`` models (Dutt et al. 2017)."""
    return CoupledEnsemble(branch=branch, num_branches=num_branches, fusion=fusion, **kwargs)
