"""The base of the stages that serve one manifest model: the head asks the router for it.

A head names its prediction, the manifest ``task`` its models have and a default model; the
model itself comes from :func:`facecore.model_router.load`, which reads the manifest entry,
checks the file's sha256 and dispatches on the entry's ``architecture`` to the loader registered
for it, so one head serves any model of its task whatever reads the file (the ``attractiveness``
head serves a fine-tuned top, :class:`~facecore.heads.distribution.TopDistributionModel`, and the
classical :class:`~facecore.attractiveness.model.AttractivenessModel` alike). A served model has:

* ``serve(image, faces) -> (values (N,), distributions (N, K) or None)``;
* ``bins`` - the distribution's bin values, or None for a model of single values;
* ``batching`` - ``"faces"`` when it reads only what earlier stages put on the faces (the
  faces of several images may come in one call), else ``"image"``
  (:func:`facecore.stages.stage_batching`).

This module implements no paper.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facecore.heads.distribution import PRECISIONS
from facecore.model_router import load
from facecore.stages import Output
from facecore.types import Face, Prediction

__all__ = ["ModelHead"]


class ModelHead:
    """Base of the stages that serve one manifest model (``age``, ``attractiveness``, ...).

    Subclasses set ``name`` (the stage and prediction name, also the manifest output it
    reads), ``task`` (the manifest task their models have), ``unit``, ``default_model`` and, to
    be registered, are decorated with :func:`facecore.stages.register_stage`.

    Parameters
    ----------
    model : str, optional
        Manifest name of the model (default: the class's ``default_model``).
    models_dir : path-like, optional
        Folder holding ``manifest.json`` (default: :func:`facecore.model_store.models_dir`).
    precision : {"auto", "float32"}, default "auto"
        For a fine-tuned top: "auto" serves it in int8 where its file carries the int8 ranges
        (as the shipped ones do: their cards give the int8 figures), "float32" the float
        weights. Other models have one precision.

    Raises
    ------
    UnknownModelError
        If ``model`` is not a model of the manifest for ``task``.
    """

    name: ClassVar[str]
    task: ClassVar[str]
    unit: ClassVar[str] = ""
    default_model: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ("trunk",)

    def __init__(
        self,
        model: str | None = None,
        models_dir: str | os.PathLike[str] | None = None,
        precision: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model_name = model or self.default_model
        self.models_dir = None if models_dir is None else Path(models_dir)
        self.precision = precision
        from facecore.model_store import check_model

        spec = check_model(self.model_name, self.task, self.models_dir)  # a wrong name fails
        # The stages this model reads beyond the head's own (its manifest entry's ``stages``).
        self.requires = tuple(dict.fromkeys((*type(self).requires, *spec.stages)))

    @property
    def provides(self) -> tuple[Output, ...]:
        """The output the manifest entry declares under the head's name."""
        from facecore.model_store import get_spec

        out = get_spec(self.model_name, self.models_dir).output(self.name)
        scale = None if out.scale is None else (float(out.scale[0]), float(out.scale[1]))
        distribution = out.kind == "distribution"
        return (Output(self.name, distribution=distribution, scale=scale, unit=self.unit),)

    def load(self) -> Any:
        """The model, from the router (read and sha256-checked once per process)."""
        return load(self.model_name, self.models_dir, precision=self.precision)

    @property
    def batching(self) -> str:
        """How the model takes faces, as it declares it (:func:`facecore.stages.stage_batching`):
        ``"faces"`` when it reads only the faces' trunk outputs."""
        return str(self.load().batching)

    def adjust(
        self, model: Any, faces: Sequence[Face], values: np.ndarray, probs: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """A subclass's last word on the values and distributions (default: unchanged)."""
        return values, probs

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Faces with ``predictions[name]`` added."""
        if not faces:
            return []
        model = self.load()
        values, probs = self.adjust(model, faces, *model.serve(image, faces))
        return [
            f.with_prediction(
                self.name,
                Prediction(float(values[i]), self.model_name)
                if probs is None
                else Prediction(
                    float(values[i]), self.model_name, model.bins, probs[i].astype(np.float32)
                ),
            )
            for i, f in enumerate(faces)
        ]
