"""A fine-tuned top of a backbone, run from one of its intermediate maps.

A head that fine-tunes a face network does not need a network of its own: the frozen bottom (stem
and the first stages) is shared by every head and runs once per face, and the head owns a
trainable copy of the remaining stages plus a new linear layer. :class:`BackboneTop` is that copy;
it takes the shared map (e.g. the output of ``stage3``) and gives the head's outputs.

Measured on this project's 2-core CPU with dlib's face ResNet (``make bench``): a whole trunk
forward costs about 11 ms per chip, stages 4-5 with a linear head from the stage-3 map about
1 ms, so a fine-tuned head costs a tenth of a second network.

This module implements no paper (fine-tuning the top layers of a pretrained network is the
transfer recipe of the age and label-distribution papers facecore implements elsewhere).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["BackboneTop"]


class BackboneTop(nn.Module):
    """Trainable copy of a backbone's last stages with a new linear output layer.

    Parameters
    ----------
    backbone : nn.Module
        A network with ``stages`` (``nn.ModuleList``), ``stage_names`` and ``num_features``, such
        as :class:`facecore.nn.dlib_resnet.DlibFaceResNet`. Its stages from ``start`` on are
        deep-copied (the backbone itself is not changed).
    start : str
        First stage of the top, e.g. ``"stage4"``: the top's input is the output of the stage
        before it (:attr:`input_node`).
    num_outputs : int
        Width of the output layer (e.g. the number of distribution bins).
    dropout : float
        Dropout before the output layer during training.

    Attributes
    ----------
    input_node : str
        Name of the backbone node whose output the top takes (``"stage3"`` for ``start="stage4"``,
        ``"stem"`` for ``start="stage1"``).
    """

    def __init__(
        self, backbone: nn.Module, start: str, num_outputs: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        names: Sequence[str] = tuple(backbone.stage_names)
        if start not in names:
            raise ValueError(f"start must be one of {names}, got {start!r}")
        if num_outputs < 1:
            raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
        i = names.index(start)
        self.start = start
        self.input_node = "stem" if i == 0 else names[i - 1]
        self.stages = nn.ModuleList(copy.deepcopy(list(backbone.stages)[i:]))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(int(backbone.num_features), int(num_outputs))

    def forward(self, fmap: Tensor) -> Tensor:
        """Outputs ``(N, num_outputs)`` from the shared map ``(N, C, H, W)`` of
        :attr:`input_node`."""
        x = fmap
        for stage in self.stages:
            x = stage(x)
        return self.fc(self.dropout(x.mean(dim=(2, 3))))

    @torch.inference_mode()
    def predict(self, fmap: Tensor) -> Tensor:
        """:meth:`forward` in eval mode without autograd."""
        if not self.training:  # the serving case: no mode switch (it walks every module)
            return self.forward(fmap)
        self.eval()
        try:
            return self.forward(fmap)
        finally:
            self.train()
