"""The shipped attractiveness model and the analyzer stage that serves it.

:class:`AttractivenessModel` is what ``facecore.attractiveness.train`` writes: a fitted regressor
(:class:`~facecore.attractiveness.fusion.ScoreFusionRegressor`), the
:class:`~facecore.attractiveness.face_features.FaceFeatureExtractor` settings it was trained with,
the block layout its input matrix has, and metadata (data hash, cross-validated metrics,
licence). Serving computes the blocks with the very same extractor code as training; a model
trained with another feature-code version is refused on load.

:class:`AttractivenessStage` is the registered ``"attractiveness"`` stage (a default head; it
needs the ``landmarks`` and ``trunk`` stages): it asks the router (:mod:`facecore.model_router`)
for the model named by its ``model`` option, which reads it (sha256 checked) by its manifest
architecture, a classical model (``score_fusion``, loaded here) or a fine-tuned top's rating
distribution (``dlib_face_resnet_top``, :mod:`facecore.heads.distribution`), and adds
``face.predictions["attractiveness"]`` to every face.

This module implements no paper (see :mod:`~facecore.attractiveness.deep_regressors` and
:mod:`~facecore.attractiveness.fusion`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.atomic import atomic_path
from facecore.attractiveness.face_features import (
    FaceFeatureExtractor,
    Layout,
    layout_width,
    stack_blocks,
)
from facecore.errors import ModelCorruptError
from facecore.heads.base import ModelHead
from facecore.model_router import register_loader
from facecore.stages import register_stage
from facecore.types import Face

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = [
    "FILE_FORMAT",
    "SCORE_RANGE",
    "AttractivenessModel",
    "AttractivenessStage",
    "load_score_fusion",
]

logger = logging.getLogger(__name__)

#: Tag stored in every model file (bumped if the file layout changes).
FILE_FORMAT = "facecore.attractiveness/1"
#: Scores are clipped to SCUT-FBP5500's rating scale.
SCORE_RANGE = (1.0, 5.0)


#: Modules renamed since model files were written: old name -> new name. A pickle stores the
#: module of every class it holds, so a file written before a rename looks for the old one.
RENAMED_MODULES = {"facecore.attractiveness.dating": "facecore.attractiveness.deep_regressors"}


def _alias_renamed_modules() -> None:
    import importlib
    import sys

    for old, new in RENAMED_MODULES.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)


class AttractivenessModel:
    """A fitted attractiveness model: regressor + feature extractor + layout + metadata.

    Parameters
    ----------
    regressor : estimator
        Fitted; ``predict`` takes a block matrix laid out by ``layout``.
    extractor : FaceFeatureExtractor
        The extractor the training features came from.
    layout : Layout
        Column layout of the regressor's input (the blocks it needs, in order).
    metadata : dict, optional
        Free-form, JSON-friendly (training data, hash, metrics, licence, ...).
    feature_version : str, optional
        ``extractor.version`` at training time (default: the current one).
    """

    def __init__(
        self,
        regressor: Any,
        extractor: FaceFeatureExtractor,
        layout: Layout,
        metadata: dict[str, Any] | None = None,
        feature_version: str | None = None,
    ) -> None:
        self.regressor = regressor
        self.extractor = extractor
        self.layout: Layout = tuple((str(n), tuple(int(d) for d in s)) for n, s in layout)
        self.metadata = dict(metadata or {})
        self.feature_version = feature_version or extractor.version
        shapes = extractor.block_shapes()
        for name, shape in self.layout:
            if shapes.get(name) != shape:
                raise ValueError(
                    f"layout block {name!r} has shape {shape}, the extractor gives "
                    f"{shapes.get(name)}"
                )

    #: The value of a face only: no distribution.
    bins = None
    #: Cuts its crops from the image: one image's faces a call.
    batching = "image"

    @property
    def blocks(self) -> tuple[str, ...]:
        """Names of the feature blocks the model needs."""
        return tuple(name for name, _ in self.layout)

    def __repr__(self) -> str:
        return (
            f"AttractivenessModel(blocks={self.blocks}, regressor={type(self.regressor).__name__}, "
            f"feature_version={self.feature_version!r})"
        )

    # -- prediction ----------------------------------------------------------------------------
    def predict_matrix(self, X: np.ndarray) -> np.ndarray:
        """Scores of block matrix rows, clipped to [1, 5].

        Parameters
        ----------
        X : ndarray of shape (N, layout_width(layout))

        Returns
        -------
        ndarray of shape (N,), float64
        """
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != layout_width(self.layout):
            raise ValueError(f"X must have shape (N, {layout_width(self.layout)}), got {X.shape}")
        if len(X) == 0:
            return np.zeros(0)
        pred = np.asarray(self.regressor.predict(X), dtype=np.float64)
        return np.clip(pred, *SCORE_RANGE)

    def predict_blocks(self, rows: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Scores of faces given as block dicts (:meth:`FaceFeatureExtractor.extract`)."""
        return self.predict_matrix(stack_blocks(rows, self.layout))

    def predict_faces(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Attractiveness of faces found in ``image``.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8
            The RGB image (as :func:`facecore.io.load_image` gives it).
        faces : sequence of Face
            With 68 landmarks and ``features["trunk"]`` (analyzer stages ``landmarks`` and
            ``trunk``).

        Returns
        -------
        ndarray of shape (len(faces),), float64
            Scores on the 1-5 scale, clipped to [1, 5].

        Raises
        ------
        ValueError
            If a face lacks landmarks or trunk features the model needs.
        """
        if not faces:
            return np.zeros(0)
        return self.predict_matrix(self.extractor.extract_faces(image, faces, self.blocks))

    def serve(self, image: np.ndarray, faces: Sequence[Face]) -> tuple[np.ndarray, None]:
        """The served values (:meth:`predict_faces`) and no distributions."""
        return self.predict_faces(image, faces), None

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model with joblib (compressed); returns the path."""
        import joblib

        path = Path(path)
        with atomic_path(path) as tmp:
            joblib.dump({"format": FILE_FORMAT, "model": self}, tmp, compress=3)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AttractivenessModel:
        """Read a model written by :meth:`save`.

        Only load files you trust (joblib files are pickles); model files loaded through
        :func:`facecore.model_router.load` are checked against the manifest's sha256.

        Raises
        ------
        ModelCorruptError
            The file is not an attractiveness model, or was trained with another feature-code
            version than this facecore computes.
        """
        import joblib

        path = Path(path)
        _alias_renamed_modules()
        try:
            obj = joblib.load(path)
        except Exception as exc:  # unreadable pickle: report as a corrupt file
            raise ModelCorruptError(f"cannot read attractiveness model {path}: {exc}") from exc
        if not isinstance(obj, dict) or obj.get("format") != FILE_FORMAT:
            raise ModelCorruptError(f"{path} is not a {FILE_FORMAT} model file")
        model = obj["model"]
        if not isinstance(model, cls):
            raise ModelCorruptError(f"{path} holds a {type(model).__name__}, not {cls.__name__}")
        current = model.extractor.version
        if model.feature_version != current:
            raise ModelCorruptError(
                f"{path} was trained on feature version {model.feature_version!r}, but this "
                f"facecore computes {current!r}; rebuild it (scripts/train_attractiveness.py)"
            )
        return model


@register_loader("score_fusion")
def load_score_fusion(path: Path, spec: ModelSpec, precision: str = "auto") -> AttractivenessModel:
    """The router's loader of a classical model file (one precision: ``precision`` is taken for
    the heads' sake and changes nothing)."""
    model = AttractivenessModel.load(path)
    logger.info("%s: %r", spec.name, model)
    return model


@register_stage
class AttractivenessStage(ModelHead):
    """Attractiveness of every face from a shipped model (default ``attractiveness_scut``, a
    fine-tuned top's rating distribution on SCUT-FBP5500's 1-5 scale).

    The model comes from the router, which reads it by its manifest architecture: a fine-tuned
    top (:class:`~facecore.heads.distribution.TopDistributionModel`) gives a distribution, with
    the file's geometric fusion applied (:mod:`facecore.attractiveness.ldl_model`); a classical
    :class:`AttractivenessModel` a score.

    Parameters
    ----------
    model : str, default "attractiveness_scut"
        Manifest name of an ``attractiveness`` model.
    models_dir : path-like, optional
        Folder holding ``manifest.json`` (default: :func:`facecore.model_store.models_dir`).
    precision : {"auto", "float32"}, default "auto"
        For a fine-tuned top: int8 where its file allows, or float32
        (:class:`~facecore.heads.base.ModelHead`).

    Raises
    ------
    UnknownModelError
        If ``model`` is not an attractiveness model of the manifest.
    """

    name = "attractiveness"
    task = "attractiveness"
    unit = "score"
    default_model = "attractiveness_scut"
    requires = ("landmarks", "trunk")
    default = True
    prediction_names = ("attractiveness",)

    def __init__(
        self,
        model: str = "attractiveness_scut",
        models_dir: str | os.PathLike[str] | None = None,
        precision: str = "auto",
    ) -> None:
        super().__init__(model, models_dir, precision)

    def adjust(
        self, model: Any, faces: Sequence[Face], values: np.ndarray, probs: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The file's geometric fusion, where it holds one (``metadata["fusion"]``)."""
        fusion = model.metadata.get("fusion")
        if not fusion or probs is None:
            return values, probs
        from facecore.attractiveness.ldl_model import fuse_with_geometry

        return fuse_with_geometry(fusion, faces, values, probs, model.bins)
