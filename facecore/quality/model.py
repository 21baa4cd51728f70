"""The ``quality`` stage: how reliable a face crop is for the other heads, in [0, 1].

It serves a :class:`QualityModel` (default ``quality_faces``, trained by
:mod:`facecore.quality.train`): a ranking network (:mod:`facecore.quality.network`) whose raw
score is mapped to [0, 1] by a monotone calibration fitted on held-out photos. The calibration's
target is how much a distortion moved the face's 128-D descriptor from the clean crop's:
``max(0, 1 - d / 0.6)``, 0.6 being dlib's same-person distance. So a quality of 1 means the heads
see the face as they would in a clean photo, and 0 that the distortion moved it as far as a change
of person (see ``models/quality_faces.md``).

The stage also puts a ``low_quality`` warning on every face below its ``warn_below`` option
(default: the model's recommended threshold, chosen from the card's error-by-quality table;
:mod:`facecore.quality.warnings`), which every response that returns faces lists.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.errors import ModelCorruptError
from facecore.model_router import load, register_loader
from facecore.quality.warnings import default_threshold, low_quality_warning
from facecore.stages import Output, register_stage
from facecore.types import Face, Prediction

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = ["DEFAULT_MODEL", "FILE_FORMAT", "QualityModel", "QualityStage", "load_quality_model"]

#: The shipped quality model.
DEFAULT_MODEL = "quality_faces"

#: Tag stored in every model file.
FILE_FORMAT = "facecore.quality/1"


@dataclass
class QualityModel:
    """A trained quality network with its calibration.

    Attributes
    ----------
    architecture : str
        A key of :data:`facecore.quality.network.ARCHITECTURES`.
    net : torch.nn.Module
        The network, in eval mode.
    calibration : (ndarray, ndarray)
        Knots ``(x, y)`` of the increasing piecewise-linear map from raw score to quality
        (y in [0, 1]).
    warn_below : float
        Recommended threshold for warnings.
    metadata : dict
        JSON-friendly: training data, metrics, licence, ...
    """

    architecture: str
    net: Any
    calibration: tuple[np.ndarray, np.ndarray]
    warn_below: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def input_node(self) -> str:
        """``"chip"`` or the trunk map the network takes (``"stage2"``)."""
        return str(self.net.input_node)

    def raw_scores(self, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Raw ranking scores of chips (N, 150, 150, 3) uint8 or maps (N, 64, 17, 17)."""
        import torch

        x = np.asarray(inputs)
        if self.input_node == "chip":
            x = x.transpose(0, 3, 1, 2)
        out = []
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                out.append(self.net(torch.from_numpy(np.ascontiguousarray(x[s : s + batch_size]))))
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Quality in [0, 1] of raw scores."""
        x, y = self.calibration
        return np.clip(np.interp(np.asarray(scores, np.float64), x, y), 0.0, 1.0)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Quality in [0, 1] of chips or maps (see :meth:`raw_scores`)."""
        return self.calibrate(self.raw_scores(inputs))

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model (weights as float16) atomically; returns the path."""
        from facecore.torchfile import half_state, save_doc

        doc = {
            "format": FILE_FORMAT,
            "architecture": self.architecture,
            "state": half_state(self.net),
            "calibration": [np.asarray(a, np.float64).tolist() for a in self.calibration],
            "warn_below": float(self.warn_below),
            "metadata": self.metadata,
        }
        return save_doc(doc, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> QualityModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ModelCorruptError
            The file is not such a model or its weights do not fit.
        """
        from facecore.quality.network import build
        from facecore.torchfile import load_doc

        path = Path(path)
        doc = load_doc(path, FILE_FORMAT, "quality model")
        try:
            net = build(doc["architecture"])
            net.load_state_dict({k: v.float() for k, v in doc["state"].items()})
            x, y = (np.asarray(a, np.float64) for a in doc["calibration"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise ModelCorruptError(f"{path}: not a valid quality model: {exc}") from exc
        if len(x) < 2 or len(x) != len(y) or np.any(np.diff(x) < 0):
            raise ModelCorruptError(f"{path}: calibration knots must be >= 2 increasing points")
        return cls(
            architecture=doc["architecture"],
            net=net.eval(),
            calibration=(x, y),
            warn_below=float(doc.get("warn_below", 0.5)),
            metadata=dict(doc.get("metadata") or {}),
        )


@register_loader("quality_map_head")
def load_quality_model(path: Path, spec: ModelSpec) -> QualityModel:
    """The router's loader of a quality model file."""
    return QualityModel.load(path)


@register_stage
class QualityStage:
    """Quality in [0, 1] of every face's crop (higher: the other heads' numbers are more
    reliable), from a shipped model (default ``quality_faces``).

    Parameters
    ----------
    model : str, default "quality_faces"
        Manifest name of a ``quality`` model.
    models_dir : path-like, optional
        Folder holding ``manifest.json`` (default: :func:`facecore.model_store.models_dir`).
    warn_below : float, optional
        Faces whose quality is below this get a ``low_quality`` warning (default: the model's
        recommended threshold, :func:`facecore.quality.warnings.default_threshold`).

    Raises
    ------
    UnknownModelError
        If ``model`` is not a quality model of the manifest.
    """

    name = "quality"
    requires = ("trunk",)
    default = True
    #: It puts warnings on faces: a view of one head runs it too, so its answer carries them.
    warns = True
    provides = (Output("quality", scale=(0.0, 1.0), unit="quality"),)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        models_dir: str | os.PathLike[str] | None = None,
        warn_below: float | None = None,
    ) -> None:
        if warn_below is not None and not 0.0 <= float(warn_below) <= 1.0:
            raise ValueError(f"warn_below must be in [0, 1], got {warn_below!r}")
        self.warn_below = None if warn_below is None else float(warn_below)
        self.model_name = model
        self.models_dir = None if models_dir is None else Path(models_dir)
        from facecore.model_store import check_model

        self._spec = check_model(model, "quality", self.models_dir)

    def load(self) -> QualityModel:
        """The model, from the router (read and sha256-checked once per process)."""
        return load(self.model_name, self.models_dir)

    @property
    def batching(self) -> str:
        """``"faces"`` when the network reads the trunk's map (faces of several images may come
        in one call); ``"image"`` for a chip network, which cuts the face from the image."""
        return "faces" if self.load().input_node != "chip" else "image"

    @property
    def threshold(self) -> float:
        """The quality under which a face gets a warning: ``warn_below``, else the model's."""
        if self.warn_below is not None:
            return self.warn_below
        return default_threshold(self.model_name)

    def inputs(self, image: np.ndarray, faces: Sequence[Face], node: str) -> np.ndarray:
        """What the network takes for ``faces``: their chips (cut once, cached on the face) or
        their shared trunk map."""
        if node == "chip":
            from facecore.align import face_crops
            from facecore.trunk import chip_spec

            return face_crops(image, list(faces), chip_spec())
        from facecore.trunk import map_key

        key = map_key(node)
        missing = [i for i, f in enumerate(faces) if key not in f.features]
        if missing:
            raise ValueError(f"faces {missing} lack {key!r}; run the 'trunk' stage first")
        return np.stack([f.features[key] for f in faces])

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        if not faces:
            return []
        model = self.load()
        q = model.predict(self.inputs(image, faces, model.input_node))
        limit = self.threshold
        out = []
        for face, v in zip(faces, q, strict=True):
            face = face.with_prediction(self.name, Prediction(float(v), self.model_name))
            warning = low_quality_warning(float(v), limit, face.box.width)
            out.append(face if warning is None else face.with_warning(warning))
        return out
