"""The one serialiser of faces: every route, ``--json`` on the CLI and the batch rows use it.

:class:`FaceOut` (a pydantic model) is the JSON form of a :class:`~facecore.types.Face` with its
predictions (:class:`PredictionOut`); :func:`batch_columns` and :func:`face_row` flatten the same
record into CSV columns derived from what the stages provide: one column per prediction, plus
``<name>_dist`` (a JSON list of bin probabilities) for each prediction with a distribution. So a
face gives the same numbers through the library, the CLI, the API and the batch.

This module implements no paper.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, Field

from facecore.stages import Output
from facecore.types import Face, Prediction

__all__ = [
    "BASE_COLUMNS",
    "INTERVAL_MASS",
    "FaceOut",
    "PredictionOut",
    "WarningOut",
    "batch_columns",
    "face_row",
]

#: Probability mass of the interval reported with every distribution.
INTERVAL_MASS = 0.9

#: Batch columns every face row has, before the prediction columns.
BASE_COLUMNS = (
    "path",
    "face_index",
    "n_faces",
    "x1",
    "y1",
    "x2",
    "y2",
    "detector_score",
    "detector",
)


class PredictionOut(BaseModel):
    """One prediction of a head."""

    value: float = Field(description="The prediction on the model's scale (see the model card)")
    model: str = Field(description="Name of the model in models/manifest.json")
    bins: list[float] | None = Field(
        default=None, description="Values of the distribution's bins (for distributions)"
    )
    probabilities: list[float] | None = Field(
        default=None, description="Probability of each bin (sums to 1)"
    )
    interval: tuple[float, float] | None = Field(
        default=None,
        description=f"Central interval holding {INTERVAL_MASS:.0%} of the distribution",
    )

    @classmethod
    def from_prediction(cls, p: Prediction) -> PredictionOut:
        if not p.has_distribution:
            return cls(value=p.value, model=p.model)
        assert p.bins is not None and p.probabilities is not None
        return cls(
            value=p.value,
            model=p.model,
            bins=list(p.bins),
            probabilities=[float(v) for v in p.probabilities],
            interval=p.interval(INTERVAL_MASS),
        )


class FaceOut(BaseModel):
    """One face with what the stages found."""

    box: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 in float pixels of the EXIF-rotated image"
    )
    detector_score: float = Field(
        description="Detector confidence: HOG's SVM margin (0 is dlib's threshold) or MTCNN's "
        "face probability; not comparable across detectors"
    )
    detector: str
    keypoints: list[tuple[float, float]] | None = Field(
        default=None,
        description="5 points (x, y): image-left eye, image-right eye, nose tip, left and right "
        "mouth corner (BlazeFace: the mouth centre in both); for faces MTCNN or BlazeFace found",
    )
    landmarks: list[tuple[float, float]] | None = Field(
        default=None, description="68 iBUG points (x, y) in image pixels"
    )
    embedding: list[float] | None = Field(
        default=None, description="128-D descriptor (when asked for)"
    )
    predictions: dict[str, PredictionOut] = Field(default_factory=dict)

    @classmethod
    def from_face(
        cls,
        face: Face,
        *,
        points: bool = True,
        embedding: bool = False,
        predictions: Sequence[str] | None = None,
    ) -> FaceOut:
        """The record of ``face``.

        Parameters
        ----------
        points : bool
            Include keypoints and landmarks.
        embedding : bool
            Include the descriptor.
        predictions : sequence of str, optional
            Only these predictions (default: all of them).
        """

        def pts(a):  # noqa: ANN001, ANN202
            return None if a is None or not points else [tuple(p) for p in a.tolist()]

        names = face.predictions if predictions is None else predictions
        return cls(
            box=face.box.as_tuple(),
            detector_score=face.detector_score,
            detector=face.detector,
            keypoints=pts(face.keypoints),
            landmarks=pts(face.landmarks),
            embedding=face.embedding.tolist() if embedding and face.embedding is not None else None,
            predictions={
                n: PredictionOut.from_prediction(face.predictions[n])
                for n in names
                if n in face.predictions
            },
        )


class WarningOut(BaseModel):
    """A face whose predictions are less reliable (:mod:`facecore.quality.warnings`)."""

    # The JSON form of a :class:`~facecore.types.FaceWarning` a stage put on a face (the docstring
    # is the schema's description in the service's OpenAPI document, kept as it was).

    face: int = Field(description="Index of the face in `faces`")
    code: str = Field(description="`low_quality`")
    quality: float = Field(description="The face's quality in [0, 1]")
    threshold: float = Field(description="The threshold it fell below")
    message: str

    @classmethod
    def for_faces(cls, faces: Sequence[Face]) -> list[WarningOut]:
        """The warnings the ``faces`` carry, in face order, each naming its face's index."""
        return [
            cls(
                face=i,
                code=w.code,
                quality=round(w.value, 4),
                threshold=w.threshold,
                message=f"face {i}: {w.message}",
            )
            for i, face in enumerate(faces)
            for w in face.warnings
        ]


def batch_columns(outputs: Sequence[Output]) -> tuple[str, ...]:
    """CSV columns of a batch run whose stages provide ``outputs``."""
    cols: list[str] = list(BASE_COLUMNS)
    for o in outputs:
        cols.append(o.name)
        if o.distribution:
            cols.append(f"{o.name}_dist")
    return (*cols, "error")


def _fmt(v: float) -> str:
    return f"{v:.4f}"


def face_row(path: str, index: int, n_faces: int, face: FaceOut) -> dict[str, str]:
    """The CSV row of one face record (values as text; absent predictions stay empty)."""
    x1, y1, x2, y2 = face.box
    row = {
        "path": path,
        "face_index": str(index),
        "n_faces": str(n_faces),
        "x1": _fmt(x1),
        "y1": _fmt(y1),
        "x2": _fmt(x2),
        "y2": _fmt(y2),
        "detector_score": _fmt(face.detector_score),
        "detector": face.detector,
    }
    for name, p in face.predictions.items():
        row[name] = _fmt(p.value)
        if p.probabilities is not None:
            row[f"{name}_dist"] = json.dumps([round(v, 5) for v in p.probabilities])
    return row
