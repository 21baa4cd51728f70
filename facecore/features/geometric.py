"""Geometric facial features: 42 size-normalised distances and ratios from 68 landmarks.

Paper: B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and
beautification models", Pattern Analysis and Applications 21(2):529-542, 2018 - the geometric
features of its facial beauty prediction model, which are then ranked by the greedy KNN
selection of Algorithm 1 (see :mod:`facecore.features.selection`). The paper's full text was not
available when this was written, so no section or equation number is cited here.

Each feature is ``d(A, B) / d(C, D)``: the Euclidean distance between two landmark groups (a group
is the mean of its points, e.g. an eye centre) divided by a named normalising distance - the
inter-ocular distance between the eye centres for absolute sizes, or another facial distance for
proportions (height/width, lower/middle third, left/right symmetry). Every feature is therefore
invariant to translation, rotation and uniform scale of the landmarks. :data:`GEOMETRIC_FEATURES`
is the table (name, definition, points, normaliser); :data:`NORMALISERS` names the denominators.

Landmarks follow the iBUG 300-W 68-point scheme as dlib numbers it (0-based): jaw 0-16, right
brow 17-21, left brow 22-26, nose bridge 27-30, nostrils 31-35, right eye 36-41, left eye 42-47,
outer lips 48-59, inner lips 60-67. "Right" is the subject's right (the left side of the image).

Departures from the paper, and why:

* The paper measures its geometric features on its own landmark set, located by an active shape
  model. facecore has dlib's 68 iBUG points, so the features here are the classic facial-beauty
  distances and ratios (face widths at several heights, facial thirds, eye size and spacing,
  brows, nose, lips, chin and left/right symmetry, in the spirit of the neoclassical canons)
  re-expressed on those 68 points; they are not the paper's exact list.
* All features are normalised (by inter-ocular distance or as ratios) so that faces of any image
  size or in-plane rotation are comparable without a separate alignment step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "FEATURE_NAMES",
    "GEOMETRIC_FEATURES",
    "N_GEOMETRIC_FEATURES",
    "NORMALISERS",
    "GeometricFeatureSpec",
    "GeometricFeatures",
    "NormaliserSpec",
    "geometric_features",
]

N_LANDMARKS = 68

_R_EYE = tuple(range(36, 42))
_L_EYE = tuple(range(42, 48))


@dataclass(frozen=True, slots=True)
class NormaliserSpec:
    """A named reference distance ``d(mean(a), mean(b))`` that features are divided by."""

    name: str
    definition: str
    a: tuple[int, ...]
    b: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GeometricFeatureSpec:
    """One geometric feature: ``d(mean(a), mean(b)) / normaliser``.

    Attributes
    ----------
    name : str
        Feature name (unique).
    definition : str
        What the feature measures, in words.
    a, b : tuple of int
        0-based iBUG-68 indices of the two end points; each end point is the mean of its indices.
    normaliser : str
        Name of the :class:`NormaliserSpec` in :data:`NORMALISERS` it is divided by.
    """

    name: str
    definition: str
    a: tuple[int, ...]
    b: tuple[int, ...]
    normaliser: str


#: Reference distances, by name.
NORMALISERS: tuple[NormaliserSpec, ...] = (
    NormaliserSpec("iod", "inter-ocular distance between the two eye centres", _R_EYE, _L_EYE),
    NormaliserSpec("face_width", "face width between jaw points 0 and 16 (eye level)", (0,), (16,)),
    NormaliserSpec("face_width_mouth", "face width at mouth level (jaw 4 to 12)", (4,), (12,)),
    NormaliserSpec("middle_third", "brow inner ends (21, 22) to subnasale 33", (21, 22), (33,)),
    NormaliserSpec("right_eye_width", "right eye corner to corner (36 to 39)", (36,), (39,)),
    NormaliserSpec("left_eye_width", "left eye corner to corner (42 to 45)", (42,), (45,)),
    NormaliserSpec("outer_canthal", "outer eye corners (36 to 45)", (36,), (45,)),
    NormaliserSpec("inner_canthal", "inner eye corners (39 to 42)", (39,), (42,)),
    NormaliserSpec("left_brow_length", "left brow end to end (22 to 26)", (22,), (26,)),
    NormaliserSpec("nose_length", "nose bridge top 27 to subnasale 33", (27,), (33,)),
    NormaliserSpec("nose_width", "alar width, nostril 31 to 35", (31,), (35,)),
    NormaliserSpec("upper_lip", "upper lip thickness, 51 to 62", (51,), (62,)),
    NormaliserSpec("left_face_half", "nose tip 30 to left face edge 16", (30,), (16,)),
    NormaliserSpec("left_mouth_half", "subnasale 33 to left mouth corner 54", (33,), (54,)),
)

_F = GeometricFeatureSpec

#: The 42 geometric features, in output order.
GEOMETRIC_FEATURES: tuple[GeometricFeatureSpec, ...] = (
    # face outline: widths at four heights, heights, thirds
    _F("face_width_eyes", "face width at eye level, jaw 0 to 16", (0,), (16,), "iod"),
    _F("face_width_nose", "face width at nose level, jaw 2 to 14", (2,), (14,), "iod"),
    _F("face_width_mouth", "face width at mouth level, jaw 4 to 12", (4,), (12,), "iod"),
    _F("face_width_jaw", "lower jaw width, jaw 6 to 10", (6,), (10,), "iod"),
    _F("chin_width", "chin width, jaw 7 to 9", (7,), (9,), "iod"),
    _F("face_height", "brow peaks (19, 24) to chin 8", (19, 24), (8,), "iod"),
    _F("middle_face_height", "brow inner ends (21, 22) to subnasale 33", (21, 22), (33,), "iod"),
    _F("lower_face_height", "subnasale 33 to chin 8", (33,), (8,), "iod"),
    _F("face_height_to_width", "face height over face width", (19, 24), (8,), "face_width"),
    _F("lower_to_middle_third", "lower third over middle third", (33,), (8,), "middle_third"),
    # eyes
    _F("right_eye_width", "right eye corner to corner, 36 to 39", (36,), (39,), "iod"),
    _F("left_eye_width", "left eye corner to corner, 42 to 45", (42,), (45,), "iod"),
    _F("right_eye_height", "right eye lids, (37, 38) to (40, 41)", (37, 38), (40, 41), "iod"),
    _F("left_eye_height", "left eye lids, (43, 44) to (46, 47)", (43, 44), (46, 47), "iod"),
    _F("right_eye_aspect", "right eye height over width", (37, 38), (40, 41), "right_eye_width"),
    _F("left_eye_aspect", "left eye height over width", (43, 44), (46, 47), "left_eye_width"),
    _F("inner_canthal_width", "eye spacing, inner corners 39 to 42", (39,), (42,), "iod"),
    _F("outer_canthal_width", "outer eye corners 36 to 45", (36,), (45,), "iod"),
    _F("eye_spacing_ratio", "inner over outer canthal width", (39,), (42,), "outer_canthal"),
    _F("eyes_to_face_width", "outer canthal width over face width", (36,), (45,), "face_width"),
    # brows
    _F("right_brow_length", "right brow end to end, 17 to 21", (17,), (21,), "iod"),
    _F("left_brow_length", "left brow end to end, 22 to 26", (22,), (26,), "iod"),
    _F("brow_gap", "gap between the brows, 21 to 22", (21,), (22,), "iod"),
    _F("right_brow_height", "right brow peak 19 to right eye centre", (19,), _R_EYE, "iod"),
    _F("left_brow_height", "left brow peak 24 to left eye centre", (24,), _L_EYE, "iod"),
    _F("brow_span", "outer brow ends, 17 to 26", (17,), (26,), "iod"),
    # nose
    _F("nose_length", "nose bridge top 27 to subnasale 33", (27,), (33,), "iod"),
    _F("nose_width", "alar width, nostril 31 to 35", (31,), (35,), "iod"),
    _F("nose_width_to_length", "nose width over nose length", (31,), (35,), "nose_length"),
    _F("nose_to_eye_spacing", "nose width over inner canthal width", (31,), (35,), "inner_canthal"),
    # mouth and lips
    _F("mouth_width", "mouth corner to corner, 48 to 54", (48,), (54,), "iod"),
    _F("upper_lip_thickness", "upper lip, outer 51 to inner 62", (51,), (62,), "iod"),
    _F("lower_lip_thickness", "lower lip, inner 66 to outer 57", (66,), (57,), "iod"),
    _F("lower_to_upper_lip", "lower over upper lip thickness", (66,), (57,), "upper_lip"),
    _F("mouth_to_nose_width", "mouth width over nose width", (48,), (54,), "nose_width"),
    _F("philtrum_length", "subnasale 33 to upper lip top 51", (33,), (51,), "iod"),
    _F("mouth_to_face_width", "mouth over jaw width (4-12)", (48,), (54,), "face_width_mouth"),
    # chin
    _F("chin_height", "lower lip bottom 57 to chin 8", (57,), (8,), "iod"),
    # left/right symmetry (1.0 for a symmetric face)
    _F("eye_width_symmetry", "right over left eye width", (36,), (39,), "left_eye_width"),
    _F("brow_length_symmetry", "right over left brow length", (17,), (21,), "left_brow_length"),
    _F("face_half_symmetry", "nose tip 30 to jaw 0 over to 16", (30,), (0,), "left_face_half"),
    _F("mouth_corner_symmetry", "33 to mouth 48 over to 54", (33,), (48,), "left_mouth_half"),
)

del _F

#: Number of geometric features.
N_GEOMETRIC_FEATURES = len(GEOMETRIC_FEATURES)
#: Feature names, in output order.
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in GEOMETRIC_FEATURES)


def _build_operators() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Averaging matrix over the distinct point groups and index arrays into it."""
    norms = {n.name: n for n in NORMALISERS}
    groups: dict[tuple[int, ...], int] = {}

    def gid(g: tuple[int, ...]) -> int:
        return groups.setdefault(tuple(g), len(groups))

    fa = np.array([gid(f.a) for f in GEOMETRIC_FEATURES])
    fb = np.array([gid(f.b) for f in GEOMETRIC_FEATURES])
    na = np.array([gid(norms[f.normaliser].a) for f in GEOMETRIC_FEATURES])
    nb = np.array([gid(norms[f.normaliser].b) for f in GEOMETRIC_FEATURES])
    avg = np.zeros((len(groups), N_LANDMARKS))
    for g, i in groups.items():
        avg[i, list(g)] = 1.0 / len(g)
    return avg, fa, fb, na, nb


_AVG, _FA, _FB, _NA, _NB = _build_operators()


def _as_landmarks(landmarks: Any) -> np.ndarray:
    """Validate and return landmarks as float64 of shape (N, 68, 2)."""
    arr = np.asarray(landmarks)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"landmarks must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 2 and arr.shape[1] == 2 * N_LANDMARKS:
        arr = arr.reshape(-1, N_LANDMARKS, 2)
    if arr.ndim != 3 or arr.shape[1:] != (N_LANDMARKS, 2):
        raise ValueError(
            f"landmarks must have shape (N, {N_LANDMARKS}, 2) (iBUG 68 points, x and y) or "
            f"(N, {2 * N_LANDMARKS}) flattened; got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=(1, 2)))
        raise ValueError(f"landmarks contain NaN or inf (samples {bad[:5].tolist()})")
    return arr


#: Floor for a normalising distance that is exactly zero, as a fraction of the face's half-extent
#: (largest absolute deviation of a landmark from the landmarks' mean).
MIN_NORMALISER = 0.02


def geometric_features(landmarks: Any) -> np.ndarray:
    """The 42 geometric features of one face or a batch of faces.

    Parameters
    ----------
    landmarks : array-like of shape (68, 2), (N, 68, 2) or (N, 136)
        iBUG-68 landmarks in pixel ``(x, y)`` (any unit: every feature is scale-free).

    Returns
    -------
    ndarray of shape (42,) or (N, 42), float64
        Features in the order of :data:`FEATURE_NAMES`.

    Raises
    ------
    ValueError
        On a wrong shape, non-finite values, or a degenerate face whose points all coincide.
        (A single zero normalising distance, e.g. a closed mouth on a tiny face, is floored at
        ``MIN_NORMALISER`` of the face's half-extent instead.)
    """
    arr = np.asarray(landmarks)
    single = arr.ndim == 2 and arr.shape == (N_LANDMARKS, 2)
    pts = _as_landmarks(arr[None] if single else arr)
    centres = np.einsum("gk,nkd->ngd", _AVG, pts)  # (N, n_groups, 2)
    num = np.linalg.norm(centres[:, _FA] - centres[:, _FB], axis=-1)
    den = np.linalg.norm(centres[:, _NA] - centres[:, _NB], axis=-1)
    scale = np.abs(pts - pts.mean(axis=1, keepdims=True)).max(axis=(1, 2))[:, None]
    flat = scale[:, 0] <= np.finfo(float).tiny
    if flat.any():
        raise ValueError(
            "degenerate landmarks: all points coincide for sample(s) "
            f"{np.flatnonzero(flat)[:5].tolist()}"
        )
    # A normalising distance can be exactly zero on a real face: a closed mouth on a small face
    # puts both lip points on the same integer pixel. Such a distance is replaced by a floor of
    # MIN_NORMALISER of the face's half-extent, so the ratio stays finite; distances that are
    # not degenerate are used as they are.
    degenerate = den <= 1e-9 * scale
    den = np.where(degenerate, MIN_NORMALISER * scale, den)
    out = num / den
    return out[0] if single else out


def _check_batch(X: Any) -> np.ndarray:
    arr = np.asarray(X)
    if arr.shape == (N_LANDMARKS, 2):
        raise ValueError(
            "expected a batch of shape (N, 68, 2); for one face use X[None] or geometric_features()"
        )
    return arr


class GeometricFeatures(TransformerMixin, BaseEstimator):
    """Transformer: iBUG-68 landmarks to the 42 geometric features.

    Stateless: ``fit`` only validates. Accepts ``(N, 68, 2)`` landmark arrays, or ``(N, 136)``
    flattened ``x0, y0, x1, y1, ...`` rows so that it can sit in 2-D sklearn pipelines.

    Examples
    --------
    >>> GeometricFeatures().fit_transform(landmarks).shape  # doctest: +SKIP
    (N, 42)
    """

    def fit(self, X: Any, y: Any = None) -> GeometricFeatures:
        """Validate ``X`` of shape (N, 68, 2) or (N, 136); returns ``self``."""
        _as_landmarks(_check_batch(X))
        self.n_features_out_ = N_GEOMETRIC_FEATURES
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features of ``X``.

        Parameters
        ----------
        X : array-like of shape (N, 68, 2) or (N, 136)

        Returns
        -------
        ndarray of shape (N, 42), float64
        """
        return geometric_features(_check_batch(X))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The 42 feature names, as an object array of shape (42,)."""
        return np.asarray(FEATURE_NAMES, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
