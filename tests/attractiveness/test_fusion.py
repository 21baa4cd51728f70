"""Per-feature-set regressors and score fusion on synthetic block matrices."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_predict

from facecore.attractiveness.deep_regressors import DeepFeatureRegressor
from facecore.attractiveness.face_features import block_columns, layout_width
from facecore.attractiveness.fusion import (
    BlockSelector,
    FeatureSetRegressor,
    ScoreFusionRegressor,
    fusion_combos,
    fusion_cross_val_predict,
    paper_estimators,
)

LAYOUT = (("deep", (6,)), ("geometric", (8,)), ("blbp", (12,)), ("pcanet", (16, 16)))


def stripes(angle_weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """16x16 uint8 images mixing horizontal and vertical stripes by ``angle_weight`` in [0, 1]."""
    yy, xx = np.mgrid[0:16, 0:16]
    h = np.sin(yy * 1.6)[None]
    v = np.sin(xx * 1.6)[None]
    w = angle_weight[:, None, None]
    img = 128 + 60 * (w * h + (1 - w) * v) + 8 * rng.normal(size=(len(w), 16, 16))
    return np.clip(img, 0, 255).astype(np.uint8)


def blocks_data(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A block matrix whose target sums three independent signals, one per block group.

    Returns X, y and the latent signals (n, 3): deep, geometric and texture (blbp + pcanet).
    """
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, size=(n, 3))
    deep = rng.normal(size=(n, 6))
    deep[:, 0] = z[:, 0] + 0.1 * rng.normal(size=n)
    geo = rng.normal(size=(n, 8))
    geo[:, 3] = z[:, 1] + 0.1 * rng.normal(size=n)
    hist = rng.uniform(size=(n, 12))
    hist[:, 5] = (z[:, 2] + 1) / 2
    img = stripes((z[:, 2] + 1) / 2, rng)
    X = np.hstack([deep, geo, hist, img.reshape(n, -1)]).astype(np.float32)
    y = 3.0 + z.sum(axis=1) + 0.05 * rng.normal(size=n)
    return X, y, z


def pc(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def small_pcanet(**kw: object) -> FeatureSetRegressor:
    params = dict(pcanet_filters=(4, 4), pcanet_block=(8, 8), n_components=8)
    params.update(kw)
    return FeatureSetRegressor("pcanet", LAYOUT, **params)  # type: ignore[arg-type]


def test_block_selector() -> None:
    X, _, _ = blocks_data(n=5)
    assert layout_width(LAYOUT) == X.shape[1]
    geo = BlockSelector("geometric", LAYOUT).fit_transform(X)
    np.testing.assert_array_equal(geo, X[:, 6:14])
    imgs = BlockSelector("pcanet", LAYOUT, image=True).fit_transform(X)
    assert imgs.shape == (5, 16, 16) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(imgs.reshape(5, -1), X[:, block_columns(LAYOUT, "pcanet")])
    with pytest.raises(KeyError):
        BlockSelector("lbp", LAYOUT).fit(X)


def near(measured_pc: float) -> float:
    """The floor for a measured correlation: 1.5x its error (1 - PC)."""
    return 1 - 1.5 * (1 - measured_pc)


@pytest.mark.parametrize(
    ("feature_set", "signal", "measured"),
    [("geometric", 1, 0.778), ("blbp", 2, 0.835), ("pcanet", 2, 0.885), ("deep", 0, 0.723)],
)
def test_each_feature_set_finds_its_signal(feature_set: str, signal: int, measured: float) -> None:
    X, y, z = blocks_data()
    est = small_pcanet() if feature_set == "pcanet" else FeatureSetRegressor(feature_set, LAYOUT)
    pred = est.fit(X[:180], y[:180]).predict(X[180:])
    assert pc(pred, z[180:, signal]) > max(0.6, near(measured))
    # ... and nothing of a signal its block does not carry.
    other = (signal + 1) % 3
    assert abs(pc(pred, z[180:, other])) < 0.35


def test_geometric_selection_keeps_the_informative_feature() -> None:
    X, y, _ = blocks_data()
    est = FeatureSetRegressor("geometric", LAYOUT).fit(X, y)
    assert 3 in est.model_.named_steps["greedy"].selected_


def test_rf_learner_and_bad_feature_set() -> None:
    X, y, z = blocks_data()
    est = FeatureSetRegressor("blbp", LAYOUT, learner="rf", n_estimators=30).fit(X[:180], y[:180])
    assert pc(est.predict(X[180:]), z[180:, 2]) > near(0.877)  # measured
    with pytest.raises(ValueError, match="feature_set"):
        FeatureSetRegressor("colour", LAYOUT).fit(X, y)


def members() -> list[tuple[str, object]]:
    return [
        ("deep", DeepFeatureRegressor(block="deep", layout=LAYOUT)),
        ("geometric", FeatureSetRegressor("geometric", LAYOUT)),
        ("texture", FeatureSetRegressor("blbp", LAYOUT)),
    ]


def test_fusion_beats_every_member_and_weights_are_non_negative() -> None:
    X, y, _ = blocks_data()
    fusion = ScoreFusionRegressor(members(), cv=4, random_state=0).fit(X[:180], y[:180])
    fused = pc(fusion.predict(X[180:]), y[180:])
    singles = fusion.member_predictions(X[180:])
    assert singles.shape == (60, 3)
    for j in range(3):
        assert fused > pc(singles[:, j], y[180:]) + 0.1
    assert fused > 0.6  # measured 0.652; members 0.460, 0.268, 0.274
    assert np.all(fusion.weights_ >= 0) and fusion.weights_.sum() > 0.5
    mean = ScoreFusionRegressor(members(), combiner="mean").fit(X[:180], y[:180])
    np.testing.assert_allclose(mean.weights_, 1 / 3)
    np.testing.assert_allclose(mean.predict(X[180:]), mean.member_predictions(X[180:]).mean(1))


def test_fusion_clone_pickle_determinism() -> None:
    X, y, _ = blocks_data(n=120)
    est = ScoreFusionRegressor(members()[:2], cv=3, random_state=1)
    a = clone(est).fit(X, y)
    b = pickle.loads(pickle.dumps(clone(est).fit(X, y)))
    np.testing.assert_allclose(a.predict(X), b.predict(X), atol=1e-5)
    assert clone(est).get_params()["cv"] == 3
    with pytest.raises(ValueError, match="combiner"):
        ScoreFusionRegressor(members(), combiner="max").fit(X, y)
    with pytest.raises(ValueError, match="at least one"):
        ScoreFusionRegressor([]).fit(X, y)


def test_shared_cv_equals_fusion_by_fusion() -> None:
    """fusion_cross_val_predict gives what cross_val_predict of each fusion gives."""
    X, y, _ = blocks_data(n=150)
    est = dict(members())
    combos = [("deep",), ("deep", "geometric"), ("deep", "geometric", "texture")]
    outer = KFold(3, shuffle=True, random_state=5)
    res = fusion_cross_val_predict(est, combos, X, y, cv=outer, inner_cv=3, random_state=2)
    for combo in combos:
        fusion = ScoreFusionRegressor([(m, est[m]) for m in combo], cv=3, random_state=2)
        expected = cross_val_predict(fusion, X, y, cv=outer)
        np.testing.assert_allclose(res.fusions[combo], expected, atol=1e-9)
        assert res.weights[combo].shape == (3, len(combo) + 1)
    solo = cross_val_predict(est["geometric"], X, y, cv=outer)
    np.testing.assert_allclose(res.members["geometric"], solo, atol=1e-9)
    with pytest.raises(ValueError, match="unknown members"):
        fusion_cross_val_predict(est, [("pcanet",)], X, y)


def test_combos_follow_table_4() -> None:
    combos = fusion_combos()
    assert combos[:7] == [
        ("geometric",),
        ("texture",),
        ("pcanet",),
        ("geometric", "texture"),
        ("geometric", "pcanet"),
        ("texture", "pcanet"),
        ("geometric", "texture", "pcanet"),
    ]
    assert combos[7:] == [("deep", *c) for c in combos[:7]]
    assert fusion_combos(extra=()) == combos[:7]


def test_paper_estimators_follow_the_layout() -> None:
    est = paper_estimators(LAYOUT, random_state=0)
    assert list(est) == ["deep", "geometric", "texture", "pcanet"]
    assert est["texture"].feature_set == "blbp"
    assert list(paper_estimators(LAYOUT[:2])) == ["deep", "geometric"]
