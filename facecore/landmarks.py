"""68-point facial landmarks with dlib's shape predictor.

Kazemi & Sullivan, "One Millisecond Face Alignment with an Ensemble of Regression Trees", CVPR 2014,
as trained by dlib on iBUG 300-W (model ``dlib_shape_predictor_68`` in the manifest). Points are
the iBUG 68-point scheme, 0-based: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67.

The predictor was trained with dlib's HOG detector boxes. For faces found by MTCNN the box it is
started from is derived from MTCNN's 5 points (:func:`predictor_box`) so that it has the HOG box's
position and scale; the constants were measured on SCUT-FBP5500 photos where both detectors fire
(centre offset -0.047 d above the eye-mouth midpoint, side 2.18 d, d = eye-centre to mouth-centre
distance).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.model_router import load, register_loader
from facecore.stages import Output, register_stage
from facecore.types import Box, Face

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = ["LandmarkPredictor", "predictor_box", "to_dlib_rect", "five_from_68"]

_HOG_SIDE_PER_EYE_MOUTH = 2.18
_HOG_CENTRE_SHIFT = -0.047


def predictor_box(face: Face) -> Box:
    """The box to start the shape predictor from (see the module docstring)."""
    lm = face.keypoints
    if face.detector == "hog" or lm is None:
        return face.box
    eyes = (lm[0] + lm[1]) / 2.0
    mouth = (lm[3] + lm[4]) / 2.0
    d = float(np.linalg.norm(mouth - eyes))
    if d < 1.0:
        return face.box
    cx, cy = (eyes + mouth) / 2.0
    cy += _HOG_CENTRE_SHIFT * d
    half = _HOG_SIDE_PER_EYE_MOUTH * d / 2.0
    return Box(cx - half, cy - half, cx + half, cy + half)


def to_dlib_rect(box: Box):
    """A ``dlib.rectangle`` (inclusive integer corners) for a float box."""
    import dlib

    return dlib.rectangle(
        int(round(box.x1)), int(round(box.y1)), int(round(box.x2)) - 1, int(round(box.y2)) - 1
    )


def five_from_68(landmarks: np.ndarray) -> np.ndarray:
    """MTCNN-style 5 points from 68: image-left eye centre, image-right eye centre, nose tip,
    left and right mouth corner. Shape (5, 2)."""
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


@register_loader("dlib_shape_predictor")
def load_shape_predictor(path: Path, spec: ModelSpec) -> Any:
    """The router's loader of a dlib shape predictor file (``dlib.shape_predictor``)."""
    import dlib

    return dlib.shape_predictor(str(path))


@register_stage
class LandmarkPredictor:
    """68 iBUG landmarks (dlib shape predictor); safe to share between threads."""

    name = "landmarks"
    requires: tuple[str, ...] = ()
    provides: tuple[Output, ...] = ()
    model_name = "dlib_shape_predictor_68"

    def load(self) -> Any:
        """The predictor, from the router (read and sha256-checked once per process)."""
        return load(self.model_name)

    def shape(self, image: np.ndarray, face: Face) -> Any:
        """The raw ``dlib.full_object_detection`` for one face."""
        return self.load()(image, to_dlib_rect(predictor_box(face)))

    def predict(self, image: np.ndarray, face: Face) -> np.ndarray:
        """68 landmarks of ``face`` in ``image`` (H, W, 3 uint8 RGB), shape (68, 2) float32."""
        shp = self.shape(image, face)
        return np.array([(p.x, p.y) for p in shp.parts()], dtype=np.float32)

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        return [f.evolve(landmarks=self.predict(image, f)) for f in faces]
