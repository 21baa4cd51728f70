"""Geometric features: the table, known values on a hand-made face, invariances, validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline

from facecore.features import (
    FEATURE_NAMES,
    GEOMETRIC_FEATURES,
    NORMALISERS,
    GeometricFeatures,
    geometric_features,
)


def face() -> np.ndarray:
    """A mirror-symmetric 68-point face in iBUG order; eye centres (-0.5, -0.25), (0.5, -0.25)."""
    p = np.zeros((68, 2))
    t = np.linspace(0.0, np.pi, 17)
    p[0:17] = np.c_[-1.4 * np.cos(t), -0.2 + 1.5 * np.sin(t)]  # jaw: 0 right ear .. 8 chin .. 16
    p[17:22] = np.c_[np.linspace(-0.9, -0.2, 5), [-0.55, -0.65, -0.7, -0.65, -0.6]]
    p[27:31] = np.c_[np.zeros(4), np.linspace(-0.3, 0.3, 4)]
    p[31:36] = np.c_[np.linspace(-0.25, 0.25, 5), [0.45, 0.48, 0.5, 0.48, 0.45]]
    p[36:42] = [
        [-0.75, -0.25],
        [-0.6, -0.33],
        [-0.4, -0.33],
        [-0.25, -0.25],
        [-0.4, -0.17],
        [-0.6, -0.17],
    ]
    p[48:55] = np.c_[np.linspace(-0.4, 0.4, 7), [0.8, 0.74, 0.71, 0.7, 0.71, 0.74, 0.8]]
    p[55:60] = np.c_[np.linspace(0.27, -0.27, 5), [0.88, 0.93, 0.95, 0.93, 0.88]]
    p[60:65] = np.c_[np.linspace(-0.3, 0.3, 5), [0.8, 0.77, 0.76, 0.77, 0.8]]
    p[65:68] = np.c_[[0.15, 0.0, -0.15], [0.84, 0.86, 0.84]]
    # left side: mirror images of the right side, in iBUG order
    p[22:27] = p[17:22][::-1] * [-1, 1]
    p[42:48] = p[[39, 38, 37, 36, 41, 40]] * [-1, 1]
    return p


def f(landmarks: np.ndarray) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, geometric_features(landmarks), strict=True))


def test_table() -> None:
    assert len(GEOMETRIC_FEATURES) == len(FEATURE_NAMES) == 42
    assert len(set(FEATURE_NAMES)) == 42
    norms = {n.name for n in NORMALISERS}
    assert len(norms) == len(NORMALISERS)
    for spec in GEOMETRIC_FEATURES:
        assert spec.definition and spec.normaliser in norms
        assert all(0 <= i < 68 for i in spec.a + spec.b)
    np.testing.assert_array_equal(GeometricFeatures().get_feature_names_out(), FEATURE_NAMES)


def test_known_values() -> None:
    v = f(face())  # inter-ocular distance is exactly 1
    assert v["right_eye_width"] == pytest.approx(0.5)
    assert v["left_eye_width"] == pytest.approx(0.5)
    assert v["inner_canthal_width"] == pytest.approx(0.5)
    assert v["outer_canthal_width"] == pytest.approx(1.5)
    assert v["eye_spacing_ratio"] == pytest.approx(1 / 3)
    assert v["right_eye_height"] == pytest.approx(0.16)
    assert v["right_eye_aspect"] == pytest.approx(0.32)
    assert v["face_width_eyes"] == pytest.approx(2.8)
    assert v["eyes_to_face_width"] == pytest.approx(1.5 / 2.8)
    assert v["mouth_width"] == pytest.approx(0.8)
    assert v["nose_width"] == pytest.approx(0.5)
    assert v["mouth_to_nose_width"] == pytest.approx(1.6)
    assert v["upper_lip_thickness"] == pytest.approx(0.06)
    assert v["lower_face_height"] == pytest.approx(1.3 - 0.5)
    assert v["brow_gap"] == pytest.approx(0.4)
    for name in FEATURE_NAMES:
        if name.endswith("_symmetry"):
            assert v[name] == pytest.approx(1.0), name


def test_moving_points_changes_the_right_features() -> None:
    p = face()
    p[42:48, 0] += 0.1  # left eye 0.1 further out: inter-ocular distance 1.1
    v = f(p)
    assert v["mouth_width"] == pytest.approx(0.8 / 1.1)
    assert v["left_eye_width"] == pytest.approx(0.5 / 1.1)
    assert v["inner_canthal_width"] == pytest.approx(0.6 / 1.1)
    assert v["eye_width_symmetry"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_similarity_invariance(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = face() + rng.normal(0, 0.02, (68, 2))
    angle = rng.uniform(-np.pi, np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = rng.uniform(0.1, 300.0) * p @ rot.T + rng.uniform(-500, 500, 2)
    np.testing.assert_allclose(geometric_features(moved), geometric_features(p), rtol=1e-9)


def test_batch_shapes_and_flat_input() -> None:
    batch = np.stack([face(), face() * 2.0 + 5.0, face()[:, ::-1]])
    out = GeometricFeatures().fit_transform(batch)
    assert out.shape == (3, 42) and out.dtype == np.float64
    np.testing.assert_allclose(out[0], out[1])
    np.testing.assert_allclose(GeometricFeatures().transform(batch.reshape(3, -1)), out)
    assert geometric_features(face()).shape == (42,)


def test_in_a_pipeline() -> None:
    # The target is one of the 42 features (mouth width over the inter-ocular distance), so a
    # linear model on the transformer's output recovers it; a feature computed wrongly, or rows
    # mixed up, does not. Measured: PC 0.9934, MAE 0.00347 (3-fold, 60 noisy faces).
    rng = np.random.default_rng(0)
    X = face()[None] + rng.normal(0, 0.03, (60, 68, 2))
    iod = np.linalg.norm(X[:, 36:42].mean(1) - X[:, 42:48].mean(1), axis=1)
    y = (X[:, 54, 0] - X[:, 48, 0]) / iod
    pred = cross_val_predict(make_pipeline(GeometricFeatures(), Ridge(alpha=1e-3)), X, y, cv=3)
    assert pred.shape == (60,)
    assert 1 - np.corrcoef(pred, y)[0, 1] < 1.5 * (1 - 0.9934)
    assert np.abs(pred - y).mean() < 1.5 * 0.00347


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((2, 67, 2)), "shape"),
        (np.zeros((2, 68, 3)), "shape"),
        (np.zeros((68, 2)), "batch"),
        (np.full((1, 68, 2), np.nan), "NaN"),
        (np.zeros((1, 68, 2)), "degenerate"),
        (np.array([["a"] * 136]), "numeric"),
    ],
)
def test_validation(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GeometricFeatures().fit(bad).transform(bad)


def test_feature_table_doc_is_in_sync():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, str(root / "scripts" / "geometric_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_a_zero_normaliser_on_a_real_face_is_floored_not_an_error():
    from facecore.features.geometric import FEATURE_NAMES, MIN_NORMALISER, geometric_features

    rng = np.random.default_rng(1)
    lm = rng.uniform(0, 40, (68, 2)).round()
    lm[62] = lm[51]  # closed mouth on a small face: upper-lip thickness exactly zero
    feats = geometric_features(lm)
    assert np.isfinite(feats).all()
    scale = np.abs(lm - lm.mean(0)).max()
    i = FEATURE_NAMES.index("upper_lip_thickness")
    assert feats[i] == 0.0
    # the feature divided by the upper lip uses the floor instead
    j = FEATURE_NAMES.index("lower_to_upper_lip")
    expected = np.linalg.norm(lm[57] - lm[66]) / (MIN_NORMALISER * scale)
    assert feats[j] == pytest.approx(expected, rel=1e-6)
