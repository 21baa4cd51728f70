"""Typed records that carry results through the pipeline.

Coordinate convention, used everywhere in facecore: pixel coordinates of the (EXIF-rotated, RGB)
input image as floats, origin at the top-left corner, x to the right, y down. A box is
``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1``; point sets are ``(N, 2)`` arrays of
``(x, y)``.

* :class:`Box` - a face box.
* :class:`Prediction` - what a head says of a face: a value, optionally a distribution over named
  bins (score bins, ages), and the name of the model that made it.
* :class:`FaceWarning` - a reason to trust a face's predictions less, put on the face by the
  stage that found it (the serialiser writes what the faces carry and names no stage).
* :class:`Face` - one face and everything the stages have added to it. Frozen: a stage returns
  an evolved copy. Aligned crops are cached on the face by alignment spec
  (:func:`facecore.align.face_crop`), so no stage aligns a face twice.
* :class:`DecodedImage` - one decoded image: its full-resolution pixels, which the stages read,
  and the reduced copy a detector runs on, with the factor between their coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Box", "DecodedImage", "Face", "FaceWarning", "Prediction"]


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in float pixel coordinates ``(x1, y1, x2, y2)``."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def clip(self, width: int, height: int) -> Box:
        """The box clipped to an image of the given size."""
        return Box(
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
            min(max(self.x2, 0.0), float(width)),
            min(max(self.y2, 0.0), float(height)),
        )

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def _frozen_array(
    a: Any, dtype: type = np.float32, shape: tuple[int, ...] | None = None, what: str = ""
) -> np.ndarray | None:
    """A read-only array; an array that is already read-only with the right dtype is reused (no
    copy when a stage evolves a face)."""
    if a is None:
        return None
    if isinstance(a, np.ndarray) and not a.flags.writeable and a.dtype == dtype:
        arr = a
    else:
        arr = np.array(a, dtype=dtype, copy=True)
        arr.setflags(write=False)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    return arr


@dataclass(frozen=True, slots=True)
class Prediction:
    """One prediction of one head for one face.

    Attributes
    ----------
    value : float
        The prediction (e.g. attractiveness on the model's scale, age in years). For a
        distribution it is the distribution's expectation unless the head says otherwise.
    model : str
        Manifest name of the model that made it.
    bins : tuple of float, optional
        Values of the distribution's bins (e.g. the rating values 1..10, or ages 0..100).
    probabilities : ndarray of shape (len(bins),), float32, optional
        Probability of each bin; sums to 1.

    Examples
    --------
    >>> p = Prediction.from_distribution([1, 2, 3], [0.2, 0.5, 0.3], model="m")
    >>> round(p.value, 2), p.interval(0.5)
    (2.1, (2.0, 3.0))
    """

    value: float
    model: str
    bins: tuple[float, ...] | None = None
    probabilities: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        if (self.bins is None) != (self.probabilities is None):
            raise ValueError("a distribution needs both bins and probabilities")
        if self.bins is None:
            return
        bins = tuple(float(b) for b in self.bins)
        probs = _frozen_array(self.probabilities, shape=(len(bins),), what="probabilities")
        assert probs is not None
        if len(bins) < 2 or not np.all(np.diff(bins) > 0):
            raise ValueError(f"bins must be at least two increasing values, got {bins}")
        if np.any(probs < 0) or abs(float(probs.sum()) - 1.0) > 1e-3:
            raise ValueError(f"probabilities must be >= 0 and sum to 1, got sum {probs.sum()}")
        object.__setattr__(self, "bins", bins)
        object.__setattr__(self, "probabilities", probs)

    @classmethod
    def from_distribution(
        cls, bins: Sequence[float], probabilities: Sequence[float] | np.ndarray, model: str
    ) -> Prediction:
        """A prediction whose value is the expectation of the distribution."""
        p = np.asarray(probabilities, dtype=np.float64)
        p = p / p.sum()
        return cls(float(np.dot(np.asarray(bins, np.float64), p)), model, tuple(bins), p)

    @property
    def has_distribution(self) -> bool:
        return self.bins is not None

    def interval(self, mass: float = 0.9) -> tuple[float, float] | None:
        """The central interval holding ``mass`` of the distribution, as bin values.

        The lower end is the first bin where the cumulative probability reaches
        ``(1 - mass) / 2``, the upper end the first where it reaches ``(1 + mass) / 2``; so at
        least ``mass`` of the probability lies in ``[lo, hi]``. None without a distribution.
        """
        if self.bins is None or self.probabilities is None:
            return None
        if not 0.0 < mass < 1.0:
            raise ValueError(f"mass must be in (0, 1), got {mass}")
        cdf = np.cumsum(self.probabilities, dtype=np.float64)
        cdf /= cdf[-1]
        lo = int(np.searchsorted(cdf, (1.0 - mass) / 2.0 - 1e-9))
        hi = int(np.searchsorted(cdf, (1.0 + mass) / 2.0 - 1e-9))
        last = len(self.bins) - 1
        return (self.bins[min(lo, last)], self.bins[min(hi, last)])


@dataclass(frozen=True, slots=True)
class FaceWarning:
    """A reason to trust a face's other predictions less than the model cards say.

    A stage adds it to the faces it judges (``Face.with_warning``); responses list every face's
    warnings, prefixed with the face's index.

    Attributes
    ----------
    code : str
        Machine-readable kind (e.g. ``"low_quality"``).
    value : float
        The measurement that crossed the threshold (e.g. the face's quality).
    threshold : float
        The threshold it crossed.
    message : str
        A sentence giving the reason (without the face's index).
    """

    code: str
    value: float
    threshold: float
    message: str


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """One detected face and whatever later stages have added to it.

    Attributes
    ----------
    box : Box
        Face box in pixel coordinates of the input image.
    detector_score : float
        The detector's confidence. For ``hog`` it is dlib's SVM margin (0 is dlib's default
        threshold); for ``mtcnn`` the face probability in [0, 1]. Not comparable across detectors.
    detector : str
        Name of the detector that found the face.
    keypoints : ndarray of shape (5, 2), float32, or None
        The detector's 5 points in MTCNN's layout: image-left eye, image-right eye, nose tip,
        left and right mouth corner. BlazeFace gives the mouth centre only: its faces carry it in
        both mouth-corner places (:func:`facecore.detect.blazeface.five_from_6`). None for
        faces found by HOG.
    landmarks : ndarray of shape (68, 2), float32, or None
        The iBUG 300-W 68 points (0-based), once the ``landmarks`` stage has run.
    embedding : ndarray of shape (128,), float32, or None
        Face descriptor (dlib ResNet metric space: same person when distance < 0.6).
    predictions : mapping of str to Prediction
        What the heads said, by prediction name (``"attractiveness"``, ``"age"``, ...).
    features : dict of str to ndarray
        Intermediate arrays that later stages reuse and that are never serialised: ``"trunk"``
        (the pooled multi-level trunk features) and the trunk's intermediate maps
        (``"trunk.stage2"``, ``"trunk.stage3"``) that fine-tuned head tops start from.
    crops : dict
        Aligned crops of this face by :class:`facecore.align.AlignSpec` (a cache filled by
        :func:`facecore.align.face_crop`; valid for the image the face was found in). Kept by
        :meth:`evolve` unless the geometry (box, keypoints, landmarks) changes.
    warnings : tuple of FaceWarning
        Reasons to trust the predictions less, added by the stages that found them.

    Faces compare by identity (their arrays have no single truth value).
    """

    box: Box
    detector_score: float
    detector: str
    keypoints: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = None
    predictions: Mapping[str, Prediction] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    crops: dict[Any, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    warnings: tuple[FaceWarning, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "detector_score", float(self.detector_score))
        object.__setattr__(
            self, "keypoints", _frozen_array(self.keypoints, shape=(5, 2), what="keypoints")
        )
        object.__setattr__(
            self, "landmarks", _frozen_array(self.landmarks, shape=(68, 2), what="landmarks")
        )
        object.__setattr__(self, "embedding", _frozen_array(self.embedding))
        preds = dict(self.predictions)
        for name, p in preds.items():
            if not isinstance(p, Prediction):
                raise TypeError(f"prediction {name!r} must be a Prediction, got {type(p).__name__}")
        object.__setattr__(self, "predictions", preds)
        object.__setattr__(
            self, "features", {k: _frozen_array(v) for k, v in self.features.items()}
        )
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def evolve(self, **changes: Any) -> Face:
        """A copy with some fields replaced (records are immutable).

        The crop cache is carried over unless the face's geometry changes.
        """
        geometry = {"box", "keypoints", "landmarks"} & set(changes)
        if "crops" not in changes:
            changes["crops"] = {} if geometry else self.crops
        return replace(self, **changes)

    def with_prediction(self, name: str, prediction: Prediction) -> Face:
        """A copy with ``predictions[name]`` set."""
        return self.evolve(predictions={**self.predictions, name: prediction})

    def with_warning(self, warning: FaceWarning) -> Face:
        """A copy with ``warning`` added to ``warnings``."""
        return self.evolve(warnings=(*self.warnings, warning))

    def with_features(self, **arrays: np.ndarray) -> Face:
        """A copy with ``features`` extended (keys with dots need ``**{"a.b": x}``)."""
        return self.evolve(features={**self.features, **arrays})


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """One decoded image: the full-resolution pixels and the reduced copy detection runs on.

    A detector's cost grows with the pixel count, while a face in a large photo stays large
    enough to be found in a reduced copy; the landmarks and every head's aligned crop are read
    from the full-resolution pixels, so they are as accurate as the photo allows.
    :meth:`FaceAnalyzer.decode <facecore.analyzer.FaceAnalyzer.decode>` makes one.

    Attributes
    ----------
    full : ndarray of shape (H, W, 3), uint8, or Future of one
        The image at full resolution, RGB, as :func:`facecore.io.load_image` returns it, or
        the future of it while a large JPEG still decodes in the background
        (:func:`facecore.io.load_image_reduced`); read it as :attr:`pixels`.
    view : ndarray of shape (h, w, 3), uint8
        What the detector sees: the full image itself (not a copy) when it is small, else a
        reduced copy (:func:`facecore.detect.base.downscale_for_detection`).
    scale : float
        Full-resolution coordinate = ``view`` coordinate * ``scale`` (1.0 when ``view`` is
        the full image).
    """

    full: Any
    view: np.ndarray
    scale: float = 1.0

    @property
    def pixels(self) -> np.ndarray:
        """The full-resolution pixels (waits for a background decode, and raises what it
        raised)."""
        return self.full.result() if isinstance(self.full, Future) else self.full

    def to_full(self, faces: Sequence[Face]) -> list[Face]:
        """Faces found in :attr:`view` with their box and keypoints in full-resolution pixels
        (boxes clipped to the image); the faces themselves when ``scale`` is 1."""
        if self.scale == 1.0:
            return list(faces)
        height, width = self.pixels.shape[:2]
        s = self.scale
        return [
            f.evolve(
                box=Box(f.box.x1 * s, f.box.y1 * s, f.box.x2 * s, f.box.y2 * s).clip(width, height),
                keypoints=None if f.keypoints is None else f.keypoints * np.float32(s),
            )
            for f in faces
        ]
