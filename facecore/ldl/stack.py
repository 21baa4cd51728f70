"""A fine-tuned top's distribution stacked with an SVR on the frozen trunk features.

A distribution top (:mod:`facecore.heads.distribution`) and an RBF support-vector regressor on the
trunk's frozen features err differently: the top is sharper but regresses to the mean at the
ends of the scale, the SVR is smoother. A least-absolute-deviation (median) regression of the
target on the two predictions, fitted on out-of-fold predictions, combines them. The served
distribution is the top's, optionally tempered (the age head widens it so that its central 90%
interval covers 90% of cross-validated ages), translated to the stacked value
(:func:`facecore.ldl.distributions.shift_distribution`). The age head and both attractiveness
heads use it.

* :class:`RbfSvr` - the SVR's prediction in torch from its support vectors (no pickle in the
  model file), built from a fitted scikit-learn pipeline by :meth:`RbfSvr.from_pipeline`; on
  ``log1p`` targets (ages) or as it is (ratings).
* :class:`TopStack` - the stacking weights, the temperature and the SVR; :meth:`TopStack.apply`
  turns the top's distributions and the faces' trunk features into the served values and
  distributions; :meth:`TopStack.from_doc` reads it back from a model file's ``extras``.
* :func:`fit_stack` - the LAD weights fitted on out-of-fold predictions (the trainers' estimator
  around it, with the temperature for coverage and its cross-fitted evaluation, is
  :class:`facecore.training.learners.SvrStack`).

Stacked generalisation (D. H. Wolpert, *Stacked generalization*, Neural Networks 5(2), 1992),
with an L1 loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecore.ldl.distributions import move_distributions, temper

__all__ = ["TEMPERATURES", "RbfSvr", "TopStack", "fit_stack"]

#: Temperatures tried for the interval (geometric grid, 1 = the top's own spread).
TEMPERATURES = np.geomspace(1.0, 30.0, 60)


@dataclass(frozen=True)
class RbfSvr:
    """``f(z) = sum_i a_i exp(-gamma |z - s_i|^2) + b`` with ``z`` the standardised features: a
    fitted ``StandardScaler`` + RBF ``SVR``. With ``log_target`` (fitted on ``log1p(y)``, as the
    age SVR is) the prediction is ``expm1(f)`` clipped at 0, else ``f``."""

    mean: np.ndarray
    scale: np.ndarray
    support: np.ndarray
    dual_coef: np.ndarray
    intercept: float
    gamma: float
    log_target: bool = True
    #: The ``face.features`` keys whose vectors, side by side, are the SVR's input.
    inputs: tuple[str, ...] = ("trunk",)

    @classmethod
    def from_pipeline(
        cls, pipeline: Any, log_target: bool = True, inputs: Sequence[str] = ("trunk",)
    ) -> RbfSvr:
        """From ``make_pipeline(StandardScaler(), SVR(kernel="rbf"))`` fitted on ``log1p(y)``
        (``log_target``) or on ``y``, with the features ``inputs`` side by side."""
        scaler, svr = pipeline[0], pipeline[-1]
        if getattr(svr, "kernel", None) != "rbf":
            raise ValueError("needs an RBF SVR")
        return cls(
            mean=np.asarray(scaler.mean_, np.float32),
            scale=np.asarray(scaler.scale_, np.float32),
            support=np.asarray(svr.support_vectors_, np.float32),
            dual_coef=np.asarray(svr.dual_coef_, np.float32).ravel(),
            intercept=float(np.ravel(svr.intercept_)[0]),
            gamma=float(svr._gamma),
            log_target=bool(log_target),
            inputs=tuple(inputs),
        )

    def __post_init__(self) -> None:
        for name in ("mean", "scale", "dual_coef", "support16", "sq"):
            self._t(name)  # the tensors at load, not on the first request

    def face_features(self, faces: Sequence[Any]) -> np.ndarray:
        """The input (N, D) of faces: their ``features[k]`` for each of :attr:`inputs`, side by
        side."""
        return np.concatenate(
            [np.stack([f.features[k] for f in faces]).astype(np.float32) for k in self.inputs],
            axis=1,
        )

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predictions (N,) from features (N, D) (:meth:`face_features`).

        Computed with torch, whose thread pool the trunk and the tops use: numpy's BLAS has
        a pool of its own, and alternating the two pools in one process makes each wait for
        the other's spinning threads (a 0.4 ms product took 6 ms between torch calls here).
        The product with the support vectors runs in float16 (as the file stores them): at
        batch 1 it is bound by reading them, and half the bytes make it about 3x faster; the
        squared distances are summed in float32. Against float32 throughout, on 2,000 UTKFace
        faces' features: mean |difference| 0.005 years, max 0.1, before the stack's weight.
        """
        import torch

        with torch.inference_mode():
            z = (torch.from_numpy(np.asarray(features, np.float32)) - self._t("mean")) / self._t(
                "scale"
            )
            dot = (z.half() @ self._t("support16").T).float()
            sq = (z * z).sum(1, keepdim=True) - 2.0 * dot + self._t("sq")
            k = torch.exp(-self.gamma * sq.clamp_min(0.0))
            out = k @ self._t("dual_coef") + self.intercept
            if self.log_target:
                out = torch.expm1(out).clamp_min(0.0)
        return out.numpy().astype(np.float64)

    def _t(self, name: str) -> Any:
        """The arrays as torch tensors, made once at construction (``sq``: the support vectors'
        squared norms; ``support16``: the support vectors in float16)."""
        cache = self.__dict__.setdefault("_tensors", {})
        if name not in cache:
            import torch

            if name == "sq":
                sup = torch.from_numpy(np.asarray(self.support, np.float32))
                cache[name] = (sup * sup).sum(1)[None, :]
            elif name == "support16":
                cache[name] = torch.from_numpy(np.asarray(self.support, np.float16))
            else:
                cache[name] = torch.from_numpy(np.ascontiguousarray(getattr(self, name)))
        return cache[name]

    def to_arrays(self) -> dict[str, Any]:
        extra = {} if self.inputs == ("trunk",) else {"inputs": list(self.inputs)}
        return {
            **extra,
            "mean": self.mean,
            "scale": self.scale,
            "support": self.support.astype(np.float16),
            "dual_coef": self.dual_coef,
            "intercept": np.float32(self.intercept),
            "gamma": np.float32(self.gamma),
            "log_target": np.bool_(self.log_target),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> RbfSvr:
        return cls(
            mean=np.asarray(a["mean"], np.float32),
            scale=np.asarray(a["scale"], np.float32),
            support=np.asarray(a["support"]),  # float16 as stored; used as such
            dual_coef=np.asarray(a["dual_coef"], np.float32),
            intercept=float(np.asarray(a["intercept"]).reshape(-1)[0]),
            gamma=float(np.asarray(a["gamma"]).reshape(-1)[0]),
            log_target=bool(np.asarray(a.get("log_target", True)).reshape(-1)[0]),
            inputs=tuple(a.get("inputs", ("trunk",))),
        )


@dataclass(frozen=True)
class TopStack:
    """``value = intercept + coef[0] * E[top] + coef[1] * svr`` (clipped to the bins), and the
    temperature of the served distribution."""

    coef: tuple[float, float]
    intercept: float
    temperature: float
    svr: RbfSvr | None = None

    def values(
        self, expectations: np.ndarray, svr_pred: np.ndarray, bins: np.ndarray
    ) -> np.ndarray:
        v = self.intercept + self.coef[0] * np.asarray(expectations) + self.coef[1] * svr_pred
        return np.clip(v, float(bins[0]), float(bins[-1]))

    def apply(
        self,
        probs: np.ndarray,
        bins: Sequence[float],
        features: np.ndarray | None = None,
        svr_pred: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(values, distributions) from the top's raw distributions (N, K) and either the faces'
        trunk features (N, D) or the SVR's predictions (N,)."""
        b = np.asarray(bins, np.float64)
        if svr_pred is None:
            if self.svr is None or features is None:
                raise ValueError("give svr_pred, or features with a stack that holds its SVR")
            svr_pred = self.svr.predict(features)
        values = self.values(np.asarray(probs, np.float64) @ b, svr_pred, b)
        return values, move_distributions(temper(probs, self.temperature), b, values)

    def to_doc(self, with_svr: bool = True) -> dict[str, Any]:
        """The stack as a model file's ``extras["stack"]``: numbers, and the SVR's arrays under
        ``"svr"`` (with ``with_svr`` and an SVR)."""
        doc: dict[str, Any] = {
            "coef": [float(c) for c in self.coef],
            "intercept": float(self.intercept),
            "temperature": float(self.temperature),
        }
        if with_svr and self.svr is not None:
            doc["svr"] = self.svr.to_arrays()
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TopStack:
        """The inverse of :meth:`to_doc`."""
        return cls(
            coef=(float(doc["coef"][0]), float(doc["coef"][1])),
            intercept=float(doc["intercept"]),
            temperature=float(doc["temperature"]),
            svr=RbfSvr.from_arrays(doc["svr"]) if "svr" in doc else None,
        )


def fit_stack(
    expectations: np.ndarray, svr_pred: np.ndarray, y: np.ndarray
) -> tuple[tuple[float, float], float]:
    """LAD weights ``(coef, intercept)`` of ``y`` on the two predictions."""
    from sklearn.linear_model import QuantileRegressor

    X = np.column_stack([expectations, svr_pred])
    m = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(X, y)
    return (float(m.coef_[0]), float(m.coef_[1])), float(m.intercept_)
