"""Shape target for beautification: a reference set of rated faces, and a better-rated average of
the most similar ones.

The geometry half of B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features
prediction and beautification models", Pattern Analysis and Applications 21(2), 2018 (landmark
adjustment of the facial geometry), in the line of T. Leyvand, D. Cohen-Or, G. Dror,
D. Lischinski, "Data-driven enhancement of facial attractiveness", ACM SIGGRAPH 2008 (section 4,
the KNN-based beautification: ``v' = sum_i w_i v_i / sum_i w_i``, ``w_i = b_i / |v - v_i|`` over
the K nearest training faces ``v_i`` with beauty scores ``b_i``).

The reference set (:class:`BeautyReference`, file ``models/beauty_reference_scut.npz`` built by
``scripts/build_beauty_reference.py``) holds SCUT-FBP5500 faces: their iBUG-68 landmarks from
facecore's own detector and landmark stage (the same points an input gets, rather than the
dataset's 86-point scheme mapped to 68), normalised by a similarity transform onto the set's mean
shape (generalised Procrustes), the mean rating of each photo, the photo ids, and a fixed list of
100 photos held out for the evaluation.

:func:`shape_target` for one face:

1. the 42 geometric features of Zhang et al. (:func:`facecore.features.geometric_features`) of its
   landmarks, standardised with the reference set's mean and standard deviation;
2. among the references rated higher than the face's predicted score, the K (10) nearest in that
   space;
3. their normalised landmarks averaged with Leyvand's weights ``w_k = score_k / (d_k + eps)``;
4. the average shape placed on the face by the least-squares similarity transform (Umeyama) of
   points 0-59 (the inner lips, which say how open the mouth is, are left out), so that position,
   size and in-plane rotation are the face's own;
5. the target ``(1 - warp) * landmarks + warp * average`` (``warp`` in [0, 1]).

Departures, and why
-------------------
* Leyvand et al. search the face space with a learned regressor and then embed distances in the
  plane; here, as in Zhang et al.'s landmark adjustment, the target is the weighted average of
  real, better-rated neighbours' landmarks (no optimisation), which keeps the target a plausible
  face.
* The neighbours are restricted to faces rated higher than the input's *predicted* score (the
  brief), not all K nearest; when fewer than K references qualify, the K best-rated references
  are used instead.
* A blend strength ``warp`` moves only part of the way, for identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facecore.align import similarity_transform
from facecore.features import geometric_features
from facecore.model_router import load, register_loader

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = [
    "DEFAULT_K",
    "REFERENCE_MODEL",
    "BeautyReference",
    "ShapeTarget",
    "apply_similarity",
    "load_reference",
    "procrustes_mean",
    "shape_target",
]

#: Manifest name of the bundled reference set.
REFERENCE_MODEL = "beauty_reference_scut"

#: Neighbours averaged into the target.
DEFAULT_K = 10

_FORMAT = 1


def apply_similarity(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points @ m[:, :2].T + m[:, 2]`` for a (2, 3) transform; points (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def _unit(shape: np.ndarray) -> np.ndarray:
    """Centred, unit RMS radius, eye line horizontal."""
    s = shape - shape.mean(0)
    s = s / np.sqrt((s**2).sum(1).mean())
    eye_r, eye_l = s[36:42].mean(0), s[42:48].mean(0)
    angle = np.arctan2(*(eye_l - eye_r)[::-1])
    c, sn = np.cos(-angle), np.sin(-angle)
    return s @ np.array([[c, -sn], [sn, c]]).T


def procrustes_mean(shapes: np.ndarray, iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes analysis of landmark sets.

    Parameters
    ----------
    shapes : ndarray of shape (N, P, 2)
        Point sets (P = 68 iBUG points for faces).
    iterations : int
        Rounds of align-to-mean / re-estimate.

    Returns
    -------
    mean : ndarray of shape (P, 2)
        Centred, unit RMS radius, eye line horizontal.
    aligned : ndarray of shape (N, P, 2)
        Each shape mapped onto ``mean`` by its least-squares similarity transform.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    if shapes.ndim != 3 or shapes.shape[2] != 2 or len(shapes) < 1:
        raise ValueError(f"shapes must have shape (N, P, 2), got {shapes.shape}")
    mean = _unit(shapes[0])
    aligned = shapes
    for _ in range(iterations):
        aligned = np.stack([apply_similarity(similarity_transform(s, mean), s) for s in shapes])
        mean = _unit(aligned.mean(0))
    aligned = np.stack([apply_similarity(similarity_transform(s, mean), s) for s in shapes])
    return mean, aligned


@dataclass(frozen=True)
class BeautyReference:
    """A set of rated reference faces in a canonical frame.

    Attributes
    ----------
    landmarks : ndarray of shape (N, 68, 2), float32
        iBUG-68 points mapped onto ``mean_shape`` by a similarity transform.
    scores : ndarray of shape (N,), float32
        Mean attractiveness rating of each face (SCUT-FBP5500: 1-5).
    ids : ndarray of shape (N,), str
        Photo ids (file names).
    holdout_ids : ndarray of shape (H,), str
        Photos kept out of the set for evaluation.
    mean_shape : ndarray of shape (68, 2), float32
        The canonical frame: centred, unit RMS radius, eye line horizontal.
    feature_mean, feature_std : ndarray of shape (42,), float64
        Standardisation of the geometric features over the set.
    features : ndarray of shape (N, 42), float64
        Standardised geometric features of every reference.
    """

    landmarks: np.ndarray
    scores: np.ndarray
    ids: np.ndarray
    holdout_ids: np.ndarray
    mean_shape: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_arrays(
        cls,
        landmarks: np.ndarray,
        scores: np.ndarray,
        ids: np.ndarray,
        holdout_ids: np.ndarray,
        mean_shape: np.ndarray,
    ) -> BeautyReference:
        """Build from stored arrays; the feature standardisation is computed here."""
        lm = np.asarray(landmarks, dtype=np.float32)
        scores = np.asarray(scores, dtype=np.float32)
        if lm.ndim != 3 or lm.shape[1:] != (68, 2) or len(lm) != len(scores) or len(lm) < 1:
            raise ValueError(
                f"need (N, 68, 2) landmarks and (N,) scores, got {lm.shape}, {scores.shape}"
            )
        feats = geometric_features(lm.astype(np.float64))
        mu = feats.mean(0)
        sd = feats.std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        for a in (lm, scores):
            a.setflags(write=False)
        return cls(
            landmarks=lm,
            scores=scores,
            ids=np.asarray(ids).astype(str),
            holdout_ids=np.asarray(holdout_ids).astype(str),
            mean_shape=np.asarray(mean_shape, dtype=np.float32),
            feature_mean=mu,
            feature_std=sd,
            features=(feats - mu) / sd,
        )

    @classmethod
    def load(cls, path: str | Path) -> BeautyReference:
        """Read a reference file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format"])
            if version != _FORMAT:
                raise ValueError(f"{path}: reference format {version}, expected {_FORMAT}")
            return cls.from_arrays(
                z["landmarks"], z["scores"], z["ids"], z["holdout_ids"], z["mean_shape"]
            )

    def save(self, path: str | Path) -> None:
        """Write the set as a compressed ``.npz`` (landmarks as float16)."""
        np.savez_compressed(
            path,
            format=np.int64(_FORMAT),
            landmarks=self.landmarks.astype(np.float16),
            scores=self.scores.astype(np.float16),
            ids=self.ids.astype("U"),
            holdout_ids=self.holdout_ids.astype("U"),
            mean_shape=self.mean_shape.astype(np.float32),
        )


@register_loader("knn_shape_reference")
def _load_reference_file(path: Path, spec: ModelSpec) -> BeautyReference:
    """The router's loader of a reference set file."""
    return BeautyReference.load(path)


def load_reference(path: str | Path | None = None) -> BeautyReference:
    """The bundled reference set (from the router: read once per process), or the one at
    ``path``.

    Raises
    ------
    facecore.errors.ModelNotFoundError, facecore.errors.ModelCorruptError
        If the bundled file is missing or does not match the manifest.
    """
    if path is not None:
        return BeautyReference.load(path)
    return load(REFERENCE_MODEL)


@dataclass(frozen=True)
class ShapeTarget:
    """Where a face's landmarks should go.

    Attributes
    ----------
    landmarks : ndarray of shape (68, 2)
        The target points in image pixels (already blended by ``warp``).
    average : ndarray of shape (68, 2)
        The neighbours' weighted average placed on the face (``warp = 1``).
    neighbours : tuple of str
        Ids of the references averaged.
    weights : ndarray of shape (K,)
        Their normalised weights.
    neighbour_scores : ndarray of shape (K,)
        Their ratings.
    """

    landmarks: np.ndarray
    average: np.ndarray
    neighbours: tuple[str, ...]
    weights: np.ndarray
    neighbour_scores: np.ndarray


def shape_target(
    landmarks: np.ndarray,
    score: float,
    reference: BeautyReference | None = None,
    k: int = DEFAULT_K,
    warp: float = 1.0,
) -> ShapeTarget:
    """The beautified landmark positions of one face.

    Parameters
    ----------
    landmarks : array-like of shape (68, 2)
        The face's iBUG-68 points, image pixels.
    score : float
        Its predicted attractiveness (the references must be rated higher).
    reference : BeautyReference, optional
        Default: the bundled SCUT-FBP5500 set (:func:`load_reference`).
    k : int, default 10
        Neighbours averaged.
    warp : float in [0, 1], default 1
        How far to move towards the average (0: the input points).

    Returns
    -------
    ShapeTarget
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise ValueError(f"landmarks must be a finite (68, 2) array, got shape {lm.shape}")
    if not 0.0 <= warp <= 1.0:
        raise ValueError(f"warp must be in [0, 1], got {warp}")
    ref = reference if reference is not None else load_reference()
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), len(ref))
    z = (geometric_features(lm) - ref.feature_mean) / ref.feature_std
    better = np.flatnonzero(ref.scores > score)
    if len(better) < k:
        better = np.argsort(-ref.scores, kind="stable")[:k]
    d = np.linalg.norm(ref.features[better] - z, axis=1)
    order = np.argsort(d, kind="stable")[:k]
    idx, dist = better[order], d[order]
    w = ref.scores[idx].astype(np.float64) / (dist + 1e-6)
    w /= w.sum()
    avg = np.einsum("k,kpd->pd", w, ref.landmarks[idx].astype(np.float64))
    # Placed on the face by the points that define its shape; the inner lips (60-67) are left
    # out so that an open mouth does not bias the fit.
    placed = apply_similarity(similarity_transform(avg[:60], lm[:60]), avg)
    target = lm + warp * (placed - lm)
    return ShapeTarget(
        landmarks=target,
        average=placed,
        neighbours=tuple(ref.ids[idx].tolist()),
        weights=w,
        neighbour_scores=ref.scores[idx].astype(np.float64),
    )
