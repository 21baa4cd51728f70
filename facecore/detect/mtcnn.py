"""MTCNN face detector with its 5 landmarks, from facenet-pytorch's shipped weights.

Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment Using Multitask Cascaded
Convolutional Networks", IEEE Signal Processing Letters, 2016. The three networks (P-, R-, O-Net)
and their weights come from the ``facenet-pytorch`` package; the router
(:mod:`facecore.model_router`) checks the weight files and loads the networks. Slower than HOG
but finds rotated, profile-ish and small faces HOG misses.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.detect.base import downscale_for_detection
from facecore.lazy import Lazy
from facecore.model_router import load, register_loader
from facecore.types import Box, Face

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = ["MtcnnDetector", "load_mtcnn_network"]

log = logging.getLogger(__name__)


@register_loader("mtcnn_pnet")
@register_loader("mtcnn_rnet")
@register_loader("mtcnn_onet")
def load_mtcnn_network(path: Path, spec: ModelSpec) -> Any:
    """The router's loader of one of the cascade's networks (facenet-pytorch's P-, R- or O-Net,
    by the entry's architecture), in eval mode."""
    import torch
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    net = {"mtcnn_pnet": PNet, "mtcnn_rnet": RNet, "mtcnn_onet": ONet}[spec.architecture]
    module = net(pretrained=False)
    module.load_state_dict(torch.load(path, map_location="cpu"))
    return module.eval()


class MtcnnDetector:
    """MTCNN (P-Net, R-Net, O-Net cascade) on the CPU.

    Parameters
    ----------
    threshold : float
        Minimum final face probability (O-Net) for a face to be kept.
    min_face_size : int
        Smallest face side in pixels the image pyramid searches for.
    stage_thresholds : tuple of 3 floats
        Per-network thresholds of the cascade (the paper's defaults).
    max_side : int or None
        Longer image side above which the image is shrunk for detection.
    """

    name = "mtcnn"

    def __init__(
        self,
        threshold: float = 0.9,
        min_face_size: int = 20,
        stage_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        max_side: int | None = 1280,
    ):
        self.threshold = float(threshold)
        self.min_face_size = int(min_face_size)
        self.stage_thresholds = tuple(float(t) for t in stage_thresholds)
        self.max_side = max_side
        self._mtcnn = Lazy(self._build)

    def _build(self) -> Any:
        """facenet-pytorch's cascade with this detector's settings, running the networks the
        router loaded (sha256 checked; shared by every detector of the process)."""
        nets = {n: load(f"mtcnn_{n}") for n in ("pnet", "rnet", "onet")}
        from facenet_pytorch.models.mtcnn import MTCNN

        mtcnn = MTCNN(
            keep_all=True,
            device="cpu",
            min_face_size=self.min_face_size,
            thresholds=list(self.stage_thresholds),
            post_process=False,
        )
        for n, net in nets.items():  # the package's own copies give way to the checked ones
            setattr(mtcnn, n, net)
        return mtcnn.eval()

    def load(self) -> None:
        self._mtcnn.get()

    def detect(self, image: np.ndarray) -> list[Face]:
        mtcnn = self._mtcnn.get()
        import torch

        small, back = downscale_for_detection(image, self.max_side)
        if min(small.shape[:2]) < self.min_face_size:
            return []  # no pyramid level fits; facenet-pytorch would fail on an empty pyramid
        with torch.inference_mode():
            boxes, probs, points = mtcnn.detect(np.ascontiguousarray(small), landmarks=True)
        if boxes is None:
            return []
        h, w = image.shape[:2]
        faces = []
        for b, p, pts in zip(boxes, probs, points, strict=True):
            if p is None or float(p) < self.threshold:
                continue
            box = Box(*(float(v) * back for v in b)).clip(w, h)
            if box.area <= 0:
                continue
            faces.append(
                Face(
                    box=box,
                    detector_score=float(p),
                    detector=self.name,
                    keypoints=np.asarray(pts, dtype=np.float32) * back,
                )
            )
        return faces
