"""``beautify``: move a face's landmarks towards better-rated similar faces and smooth its skin.

The beautification model of B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features
prediction and beautification models", Pattern Analysis and Applications 21(2), 2018 (shape and
skin beautification), with the shape target of T. Leyvand et al., "Data-driven enhancement of
facial attractiveness", SIGGRAPH 2008 (:mod:`facecore.beauty.shape`) and the warp of
S. Schaefer, T. McPhail, J. Warren, "Image deformation using moving least squares", SIGGRAPH
2006 (:mod:`facecore.beauty.mls`):

1. detect the faces and score them with the analyzer (stages ``attractiveness``: landmarks, the
   trunk's descriptor, the classical SCUT-FBP5500 model of ``SCORE_OPTIONS``); only the largest
   face is changed;
2. target landmarks from the K = 10 most similar better-rated SCUT-FBP5500 references, blended by
   ``warp`` (:func:`~facecore.beauty.shape.shape_target`);
3. rigid MLS warp with landmarks 0-59 as handles (:func:`warp_face`), inside the face's region
   (the landmarks' bounds grown by half a face width) with fixed handles on that region's border,
   so that the background does not move;
4. skin smoothing in the warped face's skin mask, blended by ``smooth``
   (:func:`~facecore.beauty.skin.smooth_skin`);
5. the beautified face scored again by the same analyzer.

Departures, and why
-------------------
* Zhang et al. adjust landmark positions towards a target and warp; they do not say which warp.
  MLS (rigid) is used: it is smooth, interpolates the handles and is fast on a grid.
* The fixed handles are on the border of the face's region, not of the whole photo, and the
  backward map is blended into the identity near that border: the cost of the warp then depends
  on the face, not on the photo, and every pixel outside the region is returned bit for bit.
* The grid step is 1/50 of the face width (2-16 px): the MLS map varies on the scale of the
  spacing between landmarks, so a fixed step is too coarse on small faces and wasteful on large
  ones (on ten held-out ~190 px faces the grid map differed from the per-pixel map by up to
  1.8 px at a 10 px step, and by up to 0.9 px at 4 px, i.e. 1/50).
* The inner-lip points (60-67) are not handles: the references' mouths are mostly closed, and
  moving an open mouth's inner lips onto them would close the mouth (an expression change, not a
  shape change); they follow the outer lips instead.
* The second scoring (step 5) starts from the detected face box instead of running the detector
  again (the warp moves a face by a few pixels; the landmark predictor re-fits the points on the
  new image). It saves one detection. ``scripts/eval_beautify.py`` scores the output with a
  fresh ``analyzer.analyze`` as well and reports how often the two agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecore.beauty.mls import MLSKind, mls_deform, mls_warp_region
from facecore.beauty.shape import DEFAULT_K, BeautyReference, load_reference, shape_target
from facecore.beauty.skin import smooth_skin
from facecore.errors import FacecoreError
from facecore.landmarks import five_from_68
from facecore.types import Box, Face

__all__ = [
    "DEFAULT_SMOOTH",
    "DEFAULT_WARP",
    "SCORE_STAGE",
    "BeautifyResult",
    "NoFaceError",
    "beautify",
    "face_region",
    "grid_step",
    "warp_face",
]

log = logging.getLogger(__name__)

#: Default shape strength (fraction of the way to the references' average).
DEFAULT_WARP = 0.75
#: Default skin-smoothing strength.
DEFAULT_SMOOTH = 0.5
#: The analyzer stage that gives landmarks, the descriptor and the attractiveness score.
SCORE_STAGE = "attractiveness"
#: The model that scores before and after (and picks the better-rated references): the classical
#: SCUT-FBP5500 model the evaluation in docs/beautify.md was measured with. Moving beautify to
#: the default distribution model means re-running scripts/eval_beautify.py first.
SCORE_OPTIONS = {SCORE_STAGE: {"model": "attractiveness_scut_classical"}}
#: The warped rectangle extends this many face widths beyond the landmarks on every side.
REGION_MARGIN = 0.5
#: The MLS grid step is the face width divided by this (see :func:`grid_step`).
GRID_PER_FACE_WIDTH = 50

_HANDLES = slice(0, 60)  # moved: jaw, brows, nose, eyes, outer lips
_FOLLOW = slice(60, 68)  # inner lips: carried by the warp


class NoFaceError(FacecoreError, ValueError):
    """The image has no face to work on (code ``no_face``).

    Attributes
    ----------
    index : int or None
        Which of several images had no face (:func:`~facecore.beauty.average_faces`).
    """

    code = "no_face"

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class BeautifyResult:
    """What :func:`beautify` made and measured.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The beautified RGB image (same size as the input).
    score_before, score_after : float
        The shipped attractiveness model's score (1-5, SCUT-FBP5500's scale) of the face before
        and after; ``score_after`` is None when the face is not found again or scoring was off.
    landmark_shift_mean, landmark_shift_max : float
        Mean and largest displacement of the 68 landmarks by the warp, in pixels.
    box : Box
        The face that was changed (the largest).
    warp, smooth : float
        The strengths used.
    steps : tuple of str
        What was done, in order (e.g. ``"shape: 10 references, rigid MLS"``).
    neighbours : tuple of str
        Ids of the reference photos whose shapes were averaged.
    landmarks_before, landmarks_after : ndarray of shape (68, 2)
        The face's landmarks and where the warp moved them.
    identity_distance : float or None
        Euclidean distance between the face's dlib descriptors before and after (below 0.6:
        the same person for dlib's network); None when not scored after.
    """

    image: np.ndarray
    score_before: float
    score_after: float | None
    landmark_shift_mean: float
    landmark_shift_max: float
    box: Box
    warp: float
    smooth: float
    steps: tuple[str, ...]
    neighbours: tuple[str, ...]
    landmarks_before: np.ndarray
    landmarks_after: np.ndarray
    identity_distance: float | None

    @property
    def score_change(self) -> float | None:
        """``score_after - score_before``, or None."""
        return None if self.score_after is None else self.score_after - self.score_before


def face_region(
    landmarks: np.ndarray, shape: tuple[int, ...], margin: float = REGION_MARGIN
) -> tuple[int, int, int, int]:
    """The rectangle the shape warp changes: the landmarks' bounds grown by ``margin`` face
    widths on every side, clipped to the image.

    Parameters
    ----------
    landmarks : ndarray of shape (P, 2)
        Points that must lie inside (the face's landmarks and their targets).
    shape : tuple
        The image's ``(height, width, ...)``.
    margin : float
        Growth per side, in face widths (jaw point 0 to 16 of the first 68 points).

    Returns
    -------
    (x0, y0, x1, y1) : tuple of int
        End-exclusive pixel bounds.
    """
    pts = np.asarray(landmarks, np.float64)
    fw = max(float(np.linalg.norm(pts[16] - pts[0])), 1.0)
    m = margin * fw
    h, w = int(shape[0]), int(shape[1])
    x0 = int(np.clip(np.floor(pts[:, 0].min() - m), 0, w))
    y0 = int(np.clip(np.floor(pts[:, 1].min() - m), 0, h))
    x1 = int(np.clip(np.ceil(pts[:, 0].max() + m) + 1, 0, w))
    y1 = int(np.clip(np.ceil(pts[:, 1].max() + m) + 1, 0, h))
    return x0, y0, x1, y1


def grid_step(landmarks: np.ndarray) -> int:
    """The MLS grid step for a face: 1/50 of its width, between 2 and 16 pixels."""
    lm = np.asarray(landmarks, np.float64)
    fw = float(np.linalg.norm(lm[16] - lm[0]))
    return int(np.clip(round(fw / GRID_PER_FACE_WIDTH), 2, 16))


def warp_face(
    image: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    kind: MLSKind = "rigid",
    grid: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp one face so that its landmarks move from ``before`` to ``after``.

    The handles are landmarks 0-59 (jaw, brows, nose, eyes, outer lips); the inner-lip points
    60-67 follow the warp instead of being moved, so that a mouth open in the photo is not closed
    towards the references' (mostly closed) mouths. Only :func:`face_region` changes, with fixed
    handles on its border (:func:`~facecore.beauty.mls.mls_warp_region`).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    before, after : ndarray of shape (68, 2)
        The face's landmarks and their targets, image pixels.
    kind : {"rigid", "similarity", "affine"}
    grid : int, optional
        MLS grid step; default :func:`grid_step` of the face.

    Returns
    -------
    warped : ndarray of shape (H, W, 3), uint8
    moved : ndarray of shape (68, 2)
        Where the landmarks went: ``after`` for 0-59, the forward MLS map for 60-67.
    """
    before = np.asarray(before, np.float64)
    after = np.asarray(after, np.float64)
    src, dst = before[_HANDLES], after[_HANDLES]
    moved = after.copy()
    moved[_FOLLOW] = mls_deform(before[_FOLLOW], src, dst, kind=kind)
    region = face_region(np.concatenate([before, moved]), image.shape)
    step = grid_step(before) if grid is None else grid
    return mls_warp_region(image, src, dst, region, kind=kind, grid=step), moved


def _check_strength(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def _score(face: Face) -> float:
    return float(face.predictions[SCORE_STAGE].value)


def beautify(
    image: Any,
    warp: float = DEFAULT_WARP,
    smooth: float = DEFAULT_SMOOTH,
    analyzer: Any = None,
    *,
    reference: BeautyReference | None = None,
    k: int = DEFAULT_K,
    kind: MLSKind = "rigid",
    grid: int | None = None,
    rescore: bool = True,
) -> BeautifyResult:
    """Beautify the largest face of ``image``.

    Parameters
    ----------
    image : path, bytes, file object, ndarray or PIL image
        Anything :func:`facecore.io.load_image` reads (decoded with the analyzer's limits).
    warp : float in [0, 1], default 0.75
        Shape strength: 0 keeps the geometry, 1 moves the landmarks all the way to the average of
        the K most similar better-rated references.
    smooth : float in [0, 1], default 0.5
        Skin-smoothing strength.
    analyzer : FaceAnalyzer, optional
        The pipeline that detects and scores (it must be able to run the ``attractiveness``
        stage); default :func:`facecore.analyzer.get_default_analyzer`.
    reference : BeautyReference, optional
        Default: the bundled SCUT-FBP5500 set.
    k : int, default 10
        References averaged into the shape target.
    kind : {"rigid", "similarity", "affine"}
        MLS form of the warp.
    grid : int, optional
        MLS grid step in pixels; default 1/50 of the face width (2-16 px).
    rescore : bool, default True
        Score the result (``score_after``, ``identity_distance``); False skips the second
        network pass.

    Returns
    -------
    BeautifyResult

    Raises
    ------
    NoFaceError
        If no face is found (code ``no_face``).
    ValueError
        If ``warp`` or ``smooth`` is outside [0, 1].
    facecore.errors.ImageError
        If the image cannot be read.
    """
    warp = _check_strength("warp", warp)
    smooth = _check_strength("smooth", smooth)
    if analyzer is None:
        from facecore.analyzer import get_default_analyzer

        analyzer = get_default_analyzer()
    rgb, faces = analyzer.analyze_image(image, stages=(SCORE_STAGE,), options=SCORE_OPTIONS)
    if not faces:
        raise NoFaceError("no face found in the image; beautify needs one face to work on")
    face = faces[0]
    before = np.asarray(face.landmarks, dtype=np.float64)
    score_before = _score(face)
    steps: list[str] = []
    out = rgb
    neighbours: tuple[str, ...] = ()
    after = before
    if warp > 0.0:
        ref = reference if reference is not None else load_reference()
        target = shape_target(before, score_before, ref, k, warp)
        neighbours = target.neighbours
        out, after = warp_face(rgb, before, target.landmarks, kind=kind, grid=grid)
        steps.append(f"shape: {len(neighbours)} references, {kind} MLS, warp {warp:g}")
    if smooth > 0.0:
        out = smooth_skin(out, after, smooth)
        steps.append(f"skin: multi-level median, smooth {smooth:g}")
    if out is rgb:
        out = rgb.copy()
    shift = np.linalg.norm(after - before, axis=1)
    score_after: float | None = None
    identity: float | None = None
    if rescore:
        again = Face(
            box=face.box,
            detector_score=face.detector_score,
            detector=face.detector,
            keypoints=None if face.keypoints is None else five_from_68(after),
        )
        scored = analyzer.run_stages(out, [again], stages=(SCORE_STAGE,), options=SCORE_OPTIONS)
        if scored:
            score_after = _score(scored[0])
            if face.embedding is not None and scored[0].embedding is not None:
                identity = float(np.linalg.norm(scored[0].embedding - face.embedding))
    out.setflags(write=False)
    log.debug("beautify: %s; score %.3f -> %s", steps, score_before, score_after)
    return BeautifyResult(
        image=out,
        score_before=score_before,
        score_after=score_after,
        landmark_shift_mean=float(shift.mean()),
        landmark_shift_max=float(shift.max()),
        box=face.box,
        warp=warp,
        smooth=smooth,
        steps=tuple(steps),
        neighbours=neighbours,
        landmarks_before=before,
        landmarks_after=after,
        identity_distance=identity,
    )
