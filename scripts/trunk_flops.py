#!/usr/bin/env python
"""Multiply-adds of dlib's face ResNet by stage, and of a head's stages 4-5 top.

    .venv/bin/python scripts/trunk_flops.py

Counts with ``torch.utils.flop_counter.FlopCounterMode`` on one 150x150 chip (the count does not
depend on the weights). It says what share of a trunk forward a fine-tuned top can cost at best.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from facecore.nn.dlib_resnet import DlibFaceResNet
from facecore.nn.top import BackboneTop


def flops(fn, *args) -> int:
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


def main() -> None:
    net = DlibFaceResNet().eval()
    x = torch.zeros(1, 3, 150, 150)
    with torch.no_grad():
        total = flops(net.forward_feature_dict, x)
        nodes = net.forward_feature_dict(x)
        for start, node in (("stage4", "stage3"), ("stage3", "stage2")):
            top = BackboneTop(net, start=start, num_outputs=9).eval()
            part = flops(top, nodes[node])
            print(
                f"top from {start}: {part / 1e6:.1f} MFLOP of {total / 1e6:.1f} "
                f"({part / total:.1%} of the trunk)"
            )


if __name__ == "__main__":
    main()
