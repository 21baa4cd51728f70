"""The model file of a fine-tuned trunk top that outputs a distribution, and its loader.

A head's top is a trainable copy of the trunk's last stages (:class:`facecore.nn.top.BackboneTop`)
that runs from the trunk's shared intermediate map and ends in a softmax over the head's bins
(ages 0..100, rating values 1..10), trained with the KL divergence to label distributions
(B. Gao, C. Xing, C. Xie, J. Wu, X. Geng, "Deep Label Distribution Learning With Label
Ambiguity", IEEE TIP 26(6), 2017). Its value is the distribution's expectation.

:class:`TopDistributionModel` is the file: the top's weights (float16), its bins, the stage it
starts from, an optional monotone calibration of the expectation and a temperature
(:func:`facecore.ldl.distributions.calibrate`), the int8 activation ranges, ensemble members, a
stack with a trunk-feature SVR (:class:`facecore.ldl.stack.TopStack`) and metadata. The router
(:mod:`facecore.model_router`) loads it for manifest entries of architecture
:data:`TOP_ARCHITECTURE`, quantized and ready to serve (:meth:`TopDistributionModel.serve`).

Calibration departs from the paper: an isotonic map of the expectation, fitted on
cross-validated predictions, corrects the regression to the mean at the ends of the range (the
young predicted too old, the old too young); the distribution is translated to the calibrated
value so that value and distribution stay consistent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from facecore.errors import ModelCorruptError
from facecore.ldl.distributions import calibrate
from facecore.model_router import register_loader
from facecore.types import Face

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = ["FILE_FORMAT", "PRECISIONS", "TOP_ARCHITECTURE", "TopDistributionModel"]

logger = logging.getLogger(__name__)

#: Tag stored in every model file.
FILE_FORMAT = "facecore.ldl.top/1"
#: How a top may run: int8 where its file allows (:mod:`facecore.nn.quantize`), or float32.
PRECISIONS = ("auto", "float32")
#: The manifest architecture of a fine-tuned trunk top's file.
TOP_ARCHITECTURE = "dlib_face_resnet_top"


@dataclass
class TopDistributionModel:
    """A fine-tuned trunk top with its bins (what the ``age`` and ``attractiveness`` heads serve).

    Attributes
    ----------
    top : BackboneTop
    bins : tuple of float
        Bin values, one per output.
    calibration : (ndarray, ndarray) or None
        Knots ``(x, y)`` of a monotone piecewise-linear map of the expectation (from isotonic
        regression on cross-validated predictions); None: no calibration.
    temperature : float, default 1.0
        The logits are divided by it before the softmax (> 1 widens the distribution, e.g. so
        that its 90% interval covers 90% of cross-validated cases).
    metadata : dict
        JSON-friendly: task, training data, cross-validated metrics, licence, ...
    int8 : dict or None
        ``{"qparams": {...}}``: the activation ranges of the top's int8 version
        (:func:`facecore.nn.quantize.activation_qparams`, from :meth:`with_int8`); the top is
        then served in int8 (:attr:`serving_top`) unless ``precision="float32"``. None: float.
    precision : {"auto", "float32"}, default "auto"
        "auto": int8 where the file has its ranges and this CPU an int8 engine.
    extras : dict
        A head's own parts beside the top (e.g. the age head's stacked SVR): JSON values and
        numpy arrays, nested in dicts; saved in the file as they are.
    members : tuple of BackboneTop
        More fine-tuned tops of the same bins (e.g. other seeds, or another start); the model's
        distribution is then the average of every top's softmax (an ensemble), which
        :meth:`predict_logits` returns as its log. Empty: the top alone.
    """

    top: Any
    bins: tuple[float, ...]
    calibration: tuple[np.ndarray, np.ndarray] | None = None
    temperature: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)
    int8: dict[str, Any] | None = None
    precision: str = "auto"
    extras: dict[str, Any] = field(default_factory=dict)
    members: tuple[Any, ...] = ()
    _serving: Any = field(default=None, init=False, repr=False, compare=False)
    _serving_members: Any = field(default=None, init=False, repr=False, compare=False)
    _stack: Any = field(default=None, init=False, repr=False, compare=False)
    #: Reads only the trunk's maps and features on the faces, never the image: the faces of
    #: several images may come in one call.
    batching: ClassVar[str] = "faces"

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def serving_top(self) -> Any:
        """The module that runs: the int8 top (built once, from :attr:`int8`) or the float one."""
        if self._serving is None:
            self._serving = self.top
            if self.int8 is not None and self.precision == "auto":
                from facecore.nn.quantize import quantize_top

                try:
                    self._serving = quantize_top(self.top, qparams=self.int8["qparams"])
                except RuntimeError as exc:  # no int8 engine in this torch build
                    logger.warning("serving the float top: %s", exc)
        return self._serving

    @property
    def serving_members(self) -> tuple[Any, ...]:
        """The members as they run: int8 (from ``int8["members"]``) or float, like the top."""
        if self._serving_members is None:
            served = tuple(self.members)
            qp = (self.int8 or {}).get("members")
            if qp is not None and self.precision == "auto" and self.serving_top is not self.top:
                from facecore.nn.quantize import quantize_top

                served = tuple(
                    quantize_top(m, qparams=q) for m, q in zip(self.members, qp, strict=True)
                )
            self._serving_members = served
        return self._serving_members

    @property
    def stack(self) -> Any:
        """The :class:`facecore.ldl.stack.TopStack` of ``extras["stack"]`` (read once), or None."""
        if self._stack is None and self.extras.get("stack"):
            from facecore.ldl.stack import TopStack

            self._stack = TopStack.from_doc(self.extras["stack"])
        return self._stack

    def with_int8(self, calibration: Any) -> TopDistributionModel:
        """A copy served in int8, its activation ranges set by ``calibration`` (maps of the
        top's input node, e.g. a few hundred training photos';
        :func:`facecore.nn.quantize.quantize_top`)."""
        import dataclasses

        from facecore.nn.quantize import activation_qparams, quantize_top

        def maps_for(top: Any) -> Any:
            if isinstance(calibration, dict):
                return calibration[top.input_node]
            return calibration

        q = quantize_top(self.top, maps_for(self.top))
        qm = tuple(quantize_top(m, maps_for(m)) for m in self.members)
        int8: dict[str, Any] = {"qparams": activation_qparams(q)}
        if self.members:
            int8["members"] = [activation_qparams(m) for m in qm]
        out = dataclasses.replace(self, int8=int8)
        out._serving, out._serving_members = q, qm
        return out

    def predict_logits(self, faces: Sequence[Face]) -> np.ndarray:
        """The top's logits (N, K); for an ensemble (:attr:`members`) the log of the average of
        every top's softmax (so that a softmax of them gives the ensemble's distribution)."""
        from scipy.special import softmax  # scipy takes 0.2 s to import: on first use

        from facecore.trunk import run_top

        logits = run_top(self.serving_top, faces)
        if not self.members:
            return logits
        probs = softmax(logits.astype(np.float64), axis=1)
        for member in self.serving_members:
            probs += softmax(run_top(member, faces).astype(np.float64), axis=1)
        return np.log(np.maximum(probs / (1 + len(self.members)), 1e-30)).astype(np.float32)

    def distributions(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, probabilities) from logits (:func:`calibrate` with the model's settings)."""
        from scipy.special import softmax

        probs = softmax(np.asarray(logits, np.float64), axis=1)
        return calibrate(probs, self.bins, self.temperature, self.calibration)

    def serve(self, image: np.ndarray, faces: Sequence[Face]) -> tuple[np.ndarray, np.ndarray]:
        """The served values (N,) and distributions (N, K) of faces the trunk has run on: the
        calibrated distributions of the top (or ensemble), stacked with the SVR on the faces'
        features (``features["trunk"]``, and others its file names) where it holds a stack.
        ``image`` is not read (:attr:`batching`)."""
        values, probs = self.distributions(self.predict_logits(faces))
        if self.stack is not None:  # the top stacked with a frozen-feature SVR
            feats = self.stack.svr.face_features(faces)
            values, probs = self.stack.apply(probs, self.bins, features=feats)
        return values, probs

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model (weights as float16) atomically; returns the path."""
        from facecore.torchfile import half_state, save_doc

        doc = {
            "format": FILE_FORMAT,
            "start": self.top.start,
            "num_outputs": int(self.top.fc.out_features),
            "bins": [float(b) for b in self.bins],
            "calibration": None
            if self.calibration is None
            else [np.asarray(a, np.float64).tolist() for a in self.calibration],
            "temperature": float(self.temperature),
            "metadata": self.metadata,
            "state": half_state(self.top),
        }
        if self.int8 is not None:
            doc["int8"] = self.int8
        if self.extras:
            doc["extras"] = _to_tensors(self.extras)
        if self.members:
            doc["members"] = [
                {"start": m.start, "num_outputs": int(m.fc.out_features), "state": half_state(m)}
                for m in self.members
            ]
        return save_doc(doc, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], precision: str = "auto") -> TopDistributionModel:
        """Read a model written by :meth:`save`, ready for inference (``precision``: see the
        class).

        Raises
        ------
        ModelCorruptError
            The file is not such a model or its weights do not fit.
        """
        from facecore.nn.dlib_resnet import DlibFaceResNet, for_inference
        from facecore.nn.top import BackboneTop
        from facecore.torchfile import load_doc

        path = Path(path)
        doc = load_doc(path, FILE_FORMAT, "distribution model")

        def read_top(part: dict[str, Any]) -> Any:
            top = BackboneTop(
                DlibFaceResNet(), start=part["start"], num_outputs=part["num_outputs"]
            )
            if not any(".affine" in k for k in part["state"]):
                # Saved after fold_affines (for_inference): fold the fresh top the same way first.
                from facecore.nn.dlib_resnet import fold_affines

                fold_affines(top)
            try:
                top.load_state_dict({k: v.float() for k, v in part["state"].items()})
            except RuntimeError as exc:
                raise ModelCorruptError(f"{path}: weights do not fit the top: {exc}") from exc
            return for_inference(top)

        cal = doc.get("calibration")
        return cls(
            top=read_top(doc),
            members=tuple(read_top(m) for m in doc.get("members") or ()),
            bins=tuple(doc["bins"]),
            calibration=None if cal is None else (np.asarray(cal[0]), np.asarray(cal[1])),
            temperature=float(doc.get("temperature", 1.0)),
            metadata=dict(doc.get("metadata") or {}),
            int8=doc.get("int8"),
            precision=precision,
            extras=_to_arrays(doc.get("extras") or {}),
        )


def _to_tensors(obj: Any) -> Any:
    """numpy arrays inside dicts/lists as torch tensors (what a weights-only file may hold)."""
    import torch

    if isinstance(obj, dict):
        return {k: _to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_tensors(v) for v in obj]
    if isinstance(obj, np.ndarray | np.generic):
        return torch.from_numpy(np.array(obj))  # a contiguous copy; 0-d stays 0-d
    return obj


def _to_arrays(obj: Any) -> Any:
    """The inverse of :func:`_to_tensors`."""
    import torch

    if isinstance(obj, dict):
        return {k: _to_arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_arrays(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    return obj


@register_loader(TOP_ARCHITECTURE)
def load_top(path: Path, spec: ModelSpec, precision: str = "auto") -> TopDistributionModel:
    """The router's loader: the file read (:meth:`TopDistributionModel.load`), its int8 tops
    quantized and its stack read now, not on the first request."""
    model = TopDistributionModel.load(path, precision=precision)
    _ = model.serving_top, model.serving_members, model.stack
    return model
