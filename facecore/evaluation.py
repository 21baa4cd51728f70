"""Evaluation helpers: landmark error and dlib's imglab XML annotation files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecore.types import Box

__all__ = ["AnnotatedFace", "read_dlib_xml", "inter_ocular_nme"]


@dataclass(frozen=True)
class AnnotatedFace:
    """One annotated face of a dlib XML file: image file name, box and (K, 2) points."""

    file: str
    box: Box
    points: np.ndarray


def read_dlib_xml(path: str | Path) -> Iterator[AnnotatedFace]:
    """Faces with parts from a dlib ``imglab`` XML file (boxes without parts are skipped)."""
    root = ET.parse(path).getroot()
    for img in root.iter("image"):
        for b in img.iter("box"):
            parts = sorted(b.iter("part"), key=lambda p: int(p.get("name")))
            if not parts:
                continue
            pts = np.array([[float(p.get("x")), float(p.get("y"))] for p in parts])
            left, top, w, h = (float(b.get(k)) for k in ("left", "top", "width", "height"))
            yield AnnotatedFace(img.get("file"), Box(left, top, left + w, top + h), pts)


def inter_ocular_nme(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean point-to-point error over 68 points divided by the outer-eye-corner distance
    (points 36 and 45), the 300-W convention."""
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    if pred.shape != (68, 2) or gt.shape != (68, 2):
        raise ValueError(f"need two (68, 2) arrays, got {pred.shape} and {gt.shape}")
    return float(np.linalg.norm(pred - gt, axis=1).mean() / np.linalg.norm(gt[36] - gt[45]))
