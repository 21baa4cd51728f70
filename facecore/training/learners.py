"""The learners a recipe compares, each an estimator in the scikit-learn sense.

``fit(X, y)``, ``predict(X)`` (N,) and, for a label distribution, ``predict_distribution(X)``
(N, K) and ``bins``: baselines, fine-tuned tops (:class:`TopRegressor`, :class:`Int8Top`) and
post-hoc combiners, meta-estimators fitted on out-of-fold predictions (:class:`SvrStack`,
:class:`IsotonicCorrection`). Also the one interval (:func:`central_intervals`) and the one
temperature-for-coverage search (:func:`coverage_temperature`). No paper.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "Int8Top",
    "IsotonicCorrection",
    "MeanDistribution",
    "SvrStack",
    "TopRegressor",
    "central_intervals",
    "coverage",
    "coverage_temperature",
    "feature_pipeline",
    "final_stack",
    "log_target_svr",
    "svr_search",
]


# -- intervals and temperatures -------------------------------------------------------------------
def central_intervals(probs: np.ndarray, bins: Sequence[float], mass: float = 0.9) -> np.ndarray:
    """The central ``mass`` interval of each distribution, as bin values, (N, 2): vectorised
    :meth:`facecore.types.Prediction.interval`."""
    b = np.asarray(bins, np.float64)
    c = np.cumsum(probs, axis=1, dtype=np.float64)
    c /= c[:, -1:]
    lo = b[np.argmax(c >= (1.0 - mass) / 2.0 - 1e-9, axis=1)]
    hi = b[np.argmax(c >= (1.0 + mass) / 2.0 - 1e-9, axis=1)]
    return np.column_stack([lo, hi])


def coverage(probs: np.ndarray, bins: Sequence[float], y: np.ndarray, mass: float = 0.9) -> float:
    """Share of ``y`` inside the distributions' central ``mass`` intervals."""
    iv = central_intervals(probs, bins, mass)
    return float(np.mean((y >= iv[:, 0]) & (y <= iv[:, 1])))


def coverage_temperature(
    grid: Sequence[float],
    distributions: Callable[[float], Any],
    bins: Sequence[float],
    y: np.ndarray,
    mass: float = 0.9,
) -> tuple[float, Any]:
    """``(t, extra)`` of the temperature ``t`` of ``grid`` whose ``(probs, extra) =
    distributions(t)`` cover closest to ``mass`` of ``y`` (the first within 1e-9 wins)."""
    best: tuple[float, float, Any] = (np.inf, float("nan"), None)
    for t in grid:
        probs, extra = distributions(float(t))
        gap = abs(coverage(probs, bins, y, mass) - mass)
        if gap < best[0] - 1e-9:
            best = (gap, float(t), extra)
    return best[1], best[2]


# -- baselines ------------------------------------------------------------------------------------
class MeanDistribution(RegressorMixin, BaseEstimator):
    """Every face the training rows' mean distribution (the label-distribution baseline)."""

    value_is_expectation = True

    def __init__(self, bins: Sequence[float] = ()) -> None:
        self.bins = bins

    def fit(self, X: np.ndarray, D: np.ndarray) -> MeanDistribution:
        self.mean_ = np.asarray(D).mean(0)
        return self

    def predict_distribution(self, X: np.ndarray) -> np.ndarray:
        return np.tile(self.mean_, (len(X), 1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_distribution(X) @ np.asarray(self.bins)


class DistributionPipeline(Pipeline):
    """A :class:`~sklearn.pipeline.Pipeline` whose last step predicts distributions (its value:
    their expectation)."""

    value_is_expectation = True

    def predict_distribution(self, X: np.ndarray) -> np.ndarray:
        return self[-1].predict_distribution(self[:-1].transform(X))

    @property
    def bins(self) -> Any:
        return self[-1].bins


def feature_pipeline(estimator: Any) -> Pipeline:
    """``estimator`` on features standardised on its training rows."""
    if hasattr(estimator, "predict_distribution"):
        return DistributionPipeline([("standardscaler", StandardScaler()), ("ldl", estimator)])
    return make_pipeline(StandardScaler(), estimator)


def log_target_svr(C: float, epsilon: float) -> Any:
    """A standardised RBF SVR of ``log(1 + y)`` (``TransformedTargetRegressor``; ages)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.svm import SVR

    svr = make_pipeline(StandardScaler(), SVR(C=C, epsilon=epsilon, gamma="scale"))
    return TransformedTargetRegressor(
        svr, func=np.log1p, inverse_func=np.expm1, check_inverse=False
    )


def _total_abs_error(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.abs(pred - y).sum())


def svr_search(
    n_features: int, grid: Sequence[tuple[float, float]], epsilon: float, *, seed: int = 0
) -> Any:
    """``GridSearchCV`` of a standardised RBF SVR over ``(C, gamma x n_features)`` pairs, on
    ``KFold(3, shuffle=True, random_state=seed)`` of the training rows (two jobs), scored by the
    total absolute error (the pooled MAE's order; the first of equal settings wins)."""
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.svm import SVR

    params = [{"svr__C": [float(c)], "svr__gamma": [float(g) / n_features]} for c, g in grid]
    return GridSearchCV(
        make_pipeline(StandardScaler(), SVR(epsilon=epsilon)),
        params,
        scoring=make_scorer(_total_abs_error, greater_is_better=False),
        cv=KFold(3, shuffle=True, random_state=seed),
        n_jobs=2,
    )


# -- fine-tuned tops ------------------------------------------------------------------------------
class SharedBackbone:
    """dlib's face ResNet, loaded on first use and then shared (by the folds of one CV)."""

    @functools.cached_property
    def model(self) -> Any:
        from facecore.training.chips import load_face_resnet

        return load_face_resnet()


def _backbone(backbone: Any) -> Any:
    return backbone.model if isinstance(backbone, SharedBackbone) else backbone


class TopRegressor(RegressorMixin, BaseEstimator):
    """A fine-tuned trunk top (:func:`facecore.training.tops.train_top`) as an estimator.

    ``X`` are row numbers (N, 1) into ``maps`` (M, C, H, W) and its mirrored version, so
    that the versions of a row travel with it; ``fit`` takes the target
    distributions (N, K) and resumes from ``checkpoint_dir``; ``backbone`` is the face ResNet
    the top is copied from (loaded when None).
    """

    value_is_expectation = True

    def __init__(
        self,
        recipe: Any = None,
        bins: Sequence[float] = (),
        maps: Any = None,
        maps_flipped: Any = None,
        checkpoint_dir: Any = None,
        device: str = "cpu",
        backbone: Any = None,
    ) -> None:
        self.recipe = recipe
        self.bins = bins
        self.maps = maps
        self.maps_flipped = maps_flipped
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.backbone = backbone

    def for_fold(self, k: int, folder: Path | None) -> TopRegressor:
        """This learner for CV fold ``k`` (its checkpoint ``folder/ckpt<k>``). The folds share
        one face ResNet, loaded when the first of them is fitted."""
        if self.backbone is None:
            self.backbone = SharedBackbone()
        return self._with(checkpoint_dir=None if folder is None else folder / f"ckpt{k}")

    def _with(self, **changes: Any) -> Any:
        # A shallow copy: the maps are shared, never copied (sklearn's clone would copy them).
        params = {**self.get_params(deep=False), **changes}
        return type(self)(**params)

    def cache_meta(self, X: np.ndarray, D: np.ndarray) -> dict[str, Any]:
        """What a fold folder of this learner is keyed by."""
        return {"recipe": self.recipe.to_dict(), "n": int(len(X)), "k": int(D.shape[1])}

    def fit(self, X: np.ndarray, D: np.ndarray) -> TopRegressor:
        from facecore.training.tops import train_top

        rows = np.asarray(X).ravel()
        self.top_, self.fit_ = train_top(
            np.asarray(self.maps[rows]),
            D,
            self.recipe,
            maps_flipped=None if self.maps_flipped is None else np.asarray(self.maps_flipped[rows]),
            checkpoint_dir=self.checkpoint_dir,
            backbone=_backbone(self.backbone),
            device=self.device,
            bins=self.bins,
        )
        return self

    def predict_distribution(self, X: np.ndarray) -> np.ndarray:
        from facecore.training.fit import predict

        rows = np.asarray(X).ravel()
        return predict(self.top_, np.asarray(self.maps[rows]), device=self.device)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_distribution(X) @ np.asarray(self.bins, np.float64)


class Int8Top(TopRegressor):
    """A CV fold's finished top (its checkpoint in the fold folder) served in int8.

    ``fit`` reads the checkpoint (it never trains: the float top's CV trains it) and quantizes
    the top (:func:`facecore.nn.quantize.quantize_top`) with ranges from the fold's own training
    rows (:func:`facecore.training.tops.calibration_maps`, seed ``seed + k``). It keeps no fold
    files (``keeps_folds``): the folder is the float top's.
    """

    keeps_folds = False

    def __init__(
        self,
        recipe: Any = None,
        bins: Sequence[float] = (),
        maps: Any = None,
        checkpoint_dir: Any = None,
        seed: int = 0,
    ) -> None:
        self.recipe = recipe
        self.bins = bins
        self.maps = maps
        self.checkpoint_dir = checkpoint_dir
        self.seed = seed

    def for_fold(self, k: int, folder: Path | None) -> Int8Top:
        if folder is None:
            raise ValueError("an int8 fold needs the float top's fold folder")
        return self._with(checkpoint_dir=folder / f"ckpt{k}", seed=self.seed + k)

    def fit(self, X: np.ndarray, D: np.ndarray) -> Int8Top:
        import torch

        from facecore.nn.quantize import quantize_top
        from facecore.training.fit import CHECKPOINT_NAME
        from facecore.training.tops import calibration_maps, new_top

        ckpt = Path(self.checkpoint_dir) / CHECKPOINT_NAME
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt} is missing: rerun the top's cross-validation")
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        if saved["epoch"] != self.recipe.epochs:
            raise ValueError(f"{ckpt} stopped at epoch {saved['epoch']} of {self.recipe.epochs}")
        top = new_top(self.recipe, np.asarray(D).shape[1])  # it loads the face ResNet
        top.load_state_dict(saved["model"])
        rows = np.asarray(X).ravel()
        self.top_ = quantize_top(top.eval(), calibration_maps(self.maps, rows, seed=self.seed))
        return self

    def predict_distribution(self, X: np.ndarray) -> np.ndarray:
        import torch
        from scipy.special import softmax

        rows = np.asarray(X).ravel()
        out = []
        with torch.inference_mode():
            for s in range(0, len(rows), 256):
                x = torch.from_numpy(np.asarray(self.maps[rows[s : s + 256]], dtype=np.float32))
                out.append(softmax(self.top_.predict(x).double().numpy(), axis=1))
        return np.concatenate(out).astype(np.float32)


# -- post-hoc combiners (fitted on out-of-fold predictions) ---------------------------------------
class _Combiner(RegressorMixin, BaseEstimator):
    """Inputs ``X = [distributions (N, K) | other columns]``; ``bins`` gives K."""

    bins: Sequence[float]

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.bins)
        return np.asarray(X[:, :k]), np.asarray(X[:, k:])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X)[0]

    def predict_distribution(self, X: np.ndarray) -> np.ndarray:
        return self._apply(X)[1]

    def _apply(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


#: Temperatures :class:`IsotonicCorrection` tries (tempering a Gaussian by T widens it by
#: sqrt(T)).
CORRECTION_TEMPERATURES = tuple(np.round(np.geomspace(1.0, 30.0, 41), 3))


class IsotonicCorrection(_Combiner):
    """Temperature for 90% coverage and an isotonic map of the tempered expectation.

    For each temperature of :data:`CORRECTION_TEMPERATURES`, the expectation of the tempered
    distribution is mapped by isotonic regression onto ``y``; the temperature whose corrected
    central intervals cover closest to 90% of ``y`` is kept (:func:`coverage_temperature`).
    ``X``: distributions (N, K).
    """

    def __init__(self, bins: Sequence[float] = ()) -> None:
        self.bins = bins

    def fit(self, X: np.ndarray, y: np.ndarray) -> IsotonicCorrection:
        from sklearn.isotonic import IsotonicRegression

        from facecore.ldl.distributions import calibrate, temper

        probs, b = self._split(X)[0], np.asarray(self.bins, np.float64)

        def corrected(t: float) -> tuple[np.ndarray, Any]:
            iso = IsotonicRegression(y_min=float(b[0]), y_max=float(b[-1]), out_of_bounds="clip")
            iso.fit(temper(probs, t) @ b, y)
            knots = (np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))
            return calibrate(probs, b, t, knots)[1], knots

        self.temperature_, self.knots_ = coverage_temperature(
            CORRECTION_TEMPERATURES, corrected, b, y
        )
        return self

    def _apply(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from facecore.ldl.distributions import calibrate

        return calibrate(self._split(X)[0], self.bins, self.temperature_, self.knots_)


class SvrStack(_Combiner):
    """Least-absolute-deviation stack of a top's expectation and an SVR's prediction
    (:mod:`facecore.ldl.stack`), with the temperature giving 90% coverage when
    ``temper_for_coverage`` (else 1). ``X``: ``[distributions (N, K) | svr (N, 1)]``."""

    def __init__(self, bins: Sequence[float] = (), temper_for_coverage: bool = True) -> None:
        self.bins = bins
        self.temper_for_coverage = temper_for_coverage

    def fit(self, X: np.ndarray, y: np.ndarray) -> SvrStack:
        from facecore.ldl.distributions import move_distributions, temper
        from facecore.ldl.stack import TEMPERATURES, TopStack, fit_stack

        probs, svr = self._split(X)
        b = np.asarray(self.bins, np.float64)
        coef, intercept = fit_stack(probs @ b, svr[:, 0], y)
        self.stack_ = TopStack(coef, intercept, 1.0)
        if self.temper_for_coverage:
            values = self.stack_.values(probs @ b, svr[:, 0], b)

            def moved(t: float) -> tuple[np.ndarray, None]:
                return move_distributions(temper(probs, t), b, values), None

            t, _ = coverage_temperature(TEMPERATURES, moved, b, y)
            self.stack_ = TopStack(coef, intercept, t)
        return self

    def _apply(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, svr = self._split(X)
        return self.stack_.apply(probs, self.bins, svr_pred=svr[:, 0])


def final_stack(
    stack: SvrStack,
    X: np.ndarray,
    y: np.ndarray,
    svr: Any,
    log_target: bool,
    inputs: Sequence[str] = ("trunk",),
) -> dict:
    """The shipped stack's document: ``stack`` fitted on every row's out-of-fold ``X``, with the
    SVR pipeline ``svr`` (fitted on every row on the features ``inputs``;
    :meth:`facecore.ldl.stack.RbfSvr.from_pipeline`) in it."""
    import dataclasses

    from facecore.ldl.stack import RbfSvr

    st = stack.fit(X, y).stack_
    svr = RbfSvr.from_pipeline(svr, log_target, inputs)
    return dataclasses.replace(st, svr=svr).to_doc()
