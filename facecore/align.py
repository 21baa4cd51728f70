"""Face alignment by a similarity transform to a canonical template.

The transform (rotation, uniform scale, translation) that best maps a face's landmarks onto a
template in the least-squares sense is found in closed form (Umeyama, "Least-squares estimation of
transformation parameters between two point patterns", IEEE TPAMI 1991), then the image is warped
with it. The default template is the common 5-point layout for a 112x112 crop (eye centres, nose
tip, mouth corners); 68-point landmarks are reduced to those 5 points first. Any output size works:
the template is scaled with it, and ``padding`` shrinks the face inside the crop.

:func:`dlib_face_chip` gives the exact chip dlib's face-recognition network was trained on
(``dlib.get_face_chip``) for parity with dlib's descriptor.

:class:`AlignSpec` names a crop (method, size, padding); model manifests carry the spec their model
expects (``chip``). :func:`face_crop` / :func:`face_crops` cut a face's crop by spec and cache it on
the :class:`~facecore.types.Face`, so that heads sharing a spec share the crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from facecore.landmarks import five_from_68, to_dlib_rect
from facecore.types import Face

__all__ = [
    "ALIGN_METHODS",
    "AlignSpec",
    "TEMPLATE_5PT_112",
    "align_face",
    "dlib_face_chip",
    "face_crop",
    "face_crops",
    "similarity_transform",
]

#: Canonical positions (x, y) in a 112x112 crop of: image-left eye centre, image-right eye centre,
#: nose tip, left mouth corner, right mouth corner.
TEMPLATE_5PT_112 = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst`` (Umeyama 1991).

    Parameters
    ----------
    src, dst : ndarray of shape (N, 2), N >= 2

    Returns
    -------
    ndarray of shape (2, 3)
        Affine matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two (N, 2) point sets of equal shape, got {src.shape}, {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("source points are degenerate (all equal)")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def _template(size: int, padding: float) -> np.ndarray:
    t = TEMPLATE_5PT_112 / 112.0  # unit square
    centre = np.array([0.5, 0.5])
    t = centre + (t - centre) / (1.0 + 2.0 * padding)
    return t * size


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 112,
    padding: float = 0.0,
    template: np.ndarray | None = None,
) -> np.ndarray:
    """An aligned, square face crop.

    Parameters
    ----------
    image : ndarray (H, W, 3) uint8
    landmarks : ndarray (5, 2) or (68, 2)
        Pixel coordinates; 68-point landmarks are reduced to 5 points.
    size : int
        Output side in pixels.
    padding : float
        Extra margin around the template face, as a fraction of the template width per side.
    template : ndarray (5, 2), optional
        Target positions in output pixels; default :data:`TEMPLATE_5PT_112` scaled to ``size``.

    Returns
    -------
    ndarray (size, size, 3) uint8
    """
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape == (68, 2):
        lm = five_from_68(lm).astype(np.float64)
    if lm.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2) or (68, 2), got {lm.shape}")
    dst = _template(size, padding) if template is None else np.asarray(template, np.float64)
    m = similarity_transform(lm, dst)
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )


def dlib_face_chip(image: np.ndarray, shape: Any, size: int, padding: float) -> np.ndarray:
    """dlib's own aligned chip from a ``dlib.full_object_detection`` (for dlib's ResNet)."""
    import dlib

    return np.asarray(dlib.get_face_chip(image, shape, size=size, padding=padding))


#: ``"dlib"``: ``dlib.get_face_chip`` from the 68 landmarks (the crop dlib's face ResNet was
#: trained on); ``"similarity5"``: :func:`align_face` (Umeyama to the 5-point template).
ALIGN_METHODS = ("dlib", "similarity5")


@dataclass(frozen=True, slots=True)
class AlignSpec:
    """How to cut an aligned face crop: method, side in pixels and padding.

    Hashable: it is the key of the crop cache on a :class:`~facecore.types.Face`.
    """

    method: Literal["dlib", "similarity5"]
    size: int
    padding: float

    def __post_init__(self) -> None:
        if self.method not in ALIGN_METHODS:
            raise ValueError(f"align method must be one of {ALIGN_METHODS}, got {self.method!r}")
        if int(self.size) < 8:
            raise ValueError(f"crop size must be >= 8, got {self.size}")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "padding", float(self.padding))

    @classmethod
    def of(cls, spec: Any) -> AlignSpec:
        """An ``AlignSpec`` from another spec-like object (manifest ``chip``) or a dict."""
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, dict):
            return cls(spec["method"], spec["size"], spec["padding"])
        return cls(spec.method, spec.size, spec.padding)


def _dlib_shape(face: Face) -> Any:
    import dlib

    lm = face.landmarks
    if lm is None:
        raise ValueError("a dlib chip needs the 68 landmarks; run the 'landmarks' stage first")
    pts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
    return dlib.full_object_detection(to_dlib_rect(face.box), pts)


def _cut(image: np.ndarray, face: Face, spec: AlignSpec) -> np.ndarray:
    if spec.method == "dlib":
        return dlib_face_chip(image, _dlib_shape(face), spec.size, spec.padding)
    points = face.landmarks if face.landmarks is not None else face.keypoints
    if points is None:
        raise ValueError("an aligned crop needs landmarks or keypoints")
    return align_face(image, points, size=spec.size, padding=spec.padding)


def face_crop(image: np.ndarray, face: Face, spec: AlignSpec) -> np.ndarray:
    """The aligned crop of ``face`` by ``spec``, (size, size, 3) uint8 RGB, read-only.

    Cut once per face and spec: the crop is cached on the face (``face.crops``), and every
    evolved copy with the same geometry shares the cache. ``image`` must be the image the face
    was found in.
    """
    crop = face.crops.get(spec)
    if crop is None:
        crop = np.ascontiguousarray(_cut(image, face, spec))
        crop.setflags(write=False)
        face.crops[spec] = crop
    return crop


def face_crops(image: np.ndarray, faces: list[Face], spec: AlignSpec) -> np.ndarray:
    """Crops of several faces stacked, shape (N, size, size, 3) uint8."""
    if not faces:
        return np.zeros((0, spec.size, spec.size, 3), np.uint8)
    return np.stack([face_crop(image, f, spec) for f in faces])
