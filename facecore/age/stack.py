"""Age from two learners: the fine-tuned top's distribution stacked with a frozen-feature SVR.

The deep top (:mod:`facecore.age.train`) and an RBF support-vector regressor on the trunk's
frozen features (the issue's baseline) err differently: the top regresses to the mean past 40,
the SVR is worse overall but less so there. A least-absolute-deviation (median) regression of the
true age on the two predictions, fitted on out-of-fold predictions, combines them; it minimises
the absolute error the age is judged by. The served distribution is the top's, tempered so that
its central 90% interval covers 90% of cross-validated ages, and translated to the stacked value
(:func:`facecore.ldl.deep.shift_distribution`).

* :class:`RbfSvr` - the SVR's prediction in numpy from its support vectors (no pickle in the
  model file), built from a fitted scikit-learn pipeline by :meth:`RbfSvr.from_pipeline`.
* :class:`AgeStack` - the stacking weights, the interval temperature and the SVR;
  :meth:`AgeStack.apply` turns the top's distributions and the faces' trunk features into the
  served ages and distributions.
* :func:`fit_stack`, :func:`crossfit_stack` - the fit on out-of-fold predictions, and its
  cross-fitted evaluation (each fold's weights and temperature from the other folds only).

Stacked generalisation (D. H. Wolpert, *Stacked generalization*, Neural Networks 5(2), 1992),
with an L1 loss; the SVR on log-age is the frozen-feature baseline of the age issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecore.ldl.deep import shift_distribution, temper

__all__ = ["AgeStack", "RbfSvr", "crossfit_stack", "fit_stack"]

#: Temperatures tried for the interval (geometric grid, 1 = the top's own spread).
TEMPERATURES = np.geomspace(1.0, 30.0, 60)


@dataclass(frozen=True)
class RbfSvr:
    """``expm1(sum_i a_i exp(-gamma |z - s_i|^2) + b)`` with ``z`` the standardised features: a
    fitted ``StandardScaler`` + RBF ``SVR`` on ``log1p(age)``, clipped at 0."""

    mean: np.ndarray
    scale: np.ndarray
    support: np.ndarray
    dual_coef: np.ndarray
    intercept: float
    gamma: float

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> RbfSvr:
        """From ``make_pipeline(StandardScaler(), SVR(kernel="rbf"))`` fitted on log1p(age)."""
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
        )

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Ages (N,) from trunk features (N, D).

        Computed with torch, whose thread pool the trunk and the tops use: numpy's BLAS has
        a pool of its own, and alternating the two pools in one process makes each wait for
        the other's spinning threads (a 0.4 ms product took 6 ms between torch calls here).
        """
        import torch

        with torch.inference_mode():
            z = (torch.from_numpy(np.asarray(features, np.float32)) - self._t("mean")) / self._t(
                "scale"
            )
            sq = (z * z).sum(1, keepdim=True) - 2.0 * (z @ self._t("support").T) + self._t("sq")
            k = torch.exp(-self.gamma * sq.clamp_min(0.0))
            out = torch.expm1(k @ self._t("dual_coef") + self.intercept).clamp_min(0.0)
        return out.numpy().astype(np.float64)

    def _t(self, name: str) -> Any:
        """The arrays as torch tensors, made once (``sq``: the support vectors' squared norms)."""
        cache = self.__dict__.setdefault("_tensors", {})
        if name not in cache:
            import torch

            if name == "sq":
                sup = self._t("support")
                cache[name] = (sup * sup).sum(1)[None, :]
            else:
                cache[name] = torch.from_numpy(np.ascontiguousarray(getattr(self, name)))
        return cache[name]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean,
            "scale": self.scale,
            "support": self.support.astype(np.float16),
            "dual_coef": self.dual_coef,
            "intercept": np.float32(self.intercept),
            "gamma": np.float32(self.gamma),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> RbfSvr:
        return cls(
            mean=np.asarray(a["mean"], np.float32),
            scale=np.asarray(a["scale"], np.float32),
            support=np.asarray(a["support"], np.float32),
            dual_coef=np.asarray(a["dual_coef"], np.float32),
            intercept=float(np.asarray(a["intercept"]).reshape(-1)[0]),
            gamma=float(np.asarray(a["gamma"]).reshape(-1)[0]),
        )


@dataclass(frozen=True)
class AgeStack:
    """``age = intercept + coef[0] * E[top] + coef[1] * svr`` (clipped to the bins), and the
    temperature of the served distribution."""

    coef: tuple[float, float]
    intercept: float
    temperature: float
    svr: RbfSvr | None = None

    def values(
        self, expectations: np.ndarray, svr_ages: np.ndarray, bins: np.ndarray
    ) -> np.ndarray:
        v = self.intercept + self.coef[0] * np.asarray(expectations) + self.coef[1] * svr_ages
        return np.clip(v, float(bins[0]), float(bins[-1]))

    def apply(
        self,
        probs: np.ndarray,
        bins: Sequence[float],
        features: np.ndarray | None = None,
        svr_ages: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ages, distributions) from the top's raw distributions (N, K) and either the faces'
        trunk features (N, D) or the SVR's ages (N,)."""
        b = np.asarray(bins, np.float64)
        if svr_ages is None:
            if self.svr is None or features is None:
                raise ValueError("give svr_ages, or features with a stack that holds its SVR")
            svr_ages = self.svr.predict(features)
        values = self.values(np.asarray(probs, np.float64) @ b, svr_ages, b)
        p = temper(probs, self.temperature)
        out = (
            np.stack(
                [
                    shift_distribution(pi, b, float(v - pi @ b))
                    for pi, v in zip(p, values, strict=True)
                ]
            )
            if len(p)
            else np.asarray(p, np.float64)
        )
        return values, out

    def to_doc(self) -> dict[str, Any]:
        """JSON part of the stack (the SVR's arrays go beside it)."""
        return {
            "coef": [float(c) for c in self.coef],
            "intercept": float(self.intercept),
            "temperature": float(self.temperature),
        }


def fit_stack(
    expectations: np.ndarray, svr_ages: np.ndarray, y: np.ndarray
) -> tuple[tuple[float, float], float]:
    """LAD weights ``(coef, intercept)`` of ``y`` on the two predictions."""
    from sklearn.linear_model import QuantileRegressor

    X = np.column_stack([expectations, svr_ages])
    m = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(X, y)
    return (float(m.coef_[0]), float(m.coef_[1])), float(m.intercept_)


def _inside(probs: np.ndarray, bins: np.ndarray, y: np.ndarray, mass: float = 0.9) -> np.ndarray:
    """Whether ``y`` lies in each distribution's central ``mass`` interval (the bins of
    :meth:`facecore.types.Prediction.interval`)."""
    c = np.cumsum(probs, axis=1, dtype=np.float64)
    c /= c[:, -1:]
    lo = bins[np.argmax(c >= (1.0 - mass) / 2.0 - 1e-9, axis=1)]
    hi = bins[np.argmax(c >= (1.0 + mass) / 2.0 - 1e-9, axis=1)]
    return (y >= lo) & (y <= hi)


def fit_temperature(
    probs: np.ndarray, values: np.ndarray, bins: np.ndarray, y: np.ndarray, mass: float = 0.9
) -> float:
    """The temperature whose translated distributions' central ``mass`` intervals cover closest
    to ``mass`` of ``y``."""
    best = (np.inf, 1.0)
    for t in TEMPERATURES:
        p = temper(probs, float(t))
        shifted = np.stack(
            [
                shift_distribution(pi, bins, float(v - pi @ bins))
                for pi, v in zip(p, values, strict=True)
            ]
        )
        gap = abs(float(np.mean(_inside(shifted, bins, y, mass))) - mass)
        if gap < best[0] - 1e-9:
            best = (gap, float(t))
    return best[1]


def fit_age_stack(
    probs: np.ndarray, svr_ages: np.ndarray, y: np.ndarray, bins: np.ndarray
) -> AgeStack:
    """Weights and temperature from out-of-fold distributions and SVR ages (no SVR inside)."""
    b = np.asarray(bins, np.float64)
    coef, intercept = fit_stack(np.asarray(probs, np.float64) @ b, svr_ages, y)
    stack = AgeStack(coef, intercept, 1.0)
    values = stack.values(np.asarray(probs, np.float64) @ b, svr_ages, b)
    return AgeStack(coef, intercept, fit_temperature(probs, values, b, y))


def crossfit_stack(
    probs: np.ndarray,
    svr_ages: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    bins: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[AgeStack]]:
    """Out-of-fold stacked ages and distributions, each fold's stack fitted on the other folds'
    out-of-fold predictions only; and each fold's stack."""
    values = np.empty(len(y))
    out = np.empty_like(probs, dtype=np.float64)
    stacks = []
    for tr, te in folds:
        s = fit_age_stack(probs[tr], svr_ages[tr], y[tr], bins)
        values[te], out[te] = s.apply(probs[te], bins, svr_ages=svr_ages[te])
        stacks.append(s)
    return values, out, stacks
