"""facecore.beauty.shape: Procrustes, the reference set and the KNN shape target."""

import numpy as np
import pytest

from facecore.align import similarity_transform
from facecore.beauty.shape import (
    BeautyReference,
    apply_similarity,
    load_reference,
    procrustes_mean,
    shape_target,
)
from facecore.features import geometric_features

from .synthetic import synthetic_face

BASE = synthetic_face()


def similarity(scale, angle, t):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, t[0]], [scale * s, scale * c, t[1]]])


def variant(i, rng):
    """The base face with its jaw and mouth changed a little (distinct geometry per ``i``)."""
    lm = BASE.copy()
    lm[0:17, 0] = 100 + (lm[0:17, 0] - 100) * (1 + 0.03 * i)  # wider or narrower jaw
    lm[48:68, 1] += 1.5 * i  # lower mouth
    return lm + rng.normal(0, 0.05, lm.shape)


def test_procrustes_recovers_one_shape_under_similarities():
    shapes = np.stack(
        [apply_similarity(similarity(s, a, t), BASE)
         for s, a, t in [(1, 0, (0, 0)), (2.5, 0.3, (40, -7)), (0.4, -0.5, (3, 90))]]
    )  # fmt: skip
    mean, aligned = procrustes_mean(shapes)
    # The mean is the base shape normalised: centred, unit RMS radius, eyes level.
    np.testing.assert_allclose(mean.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt((mean**2).sum(1).mean()), 1.0)
    eyes = mean[42:48].mean(0) - mean[36:42].mean(0)
    assert abs(eyes[1]) < 1e-9 and eyes[0] > 0
    for a in aligned:
        np.testing.assert_allclose(a, mean, atol=1e-9)
    base_fit = apply_similarity(similarity_transform(BASE, mean), BASE)
    np.testing.assert_allclose(base_fit, mean, atol=1e-9)


def make_reference(scores, rng=None):
    rng = rng or np.random.default_rng(0)
    shapes = np.stack([variant(i - len(scores) // 2, rng) for i in range(len(scores))])
    mean, aligned = procrustes_mean(shapes)
    ids = np.array([f"R{i}.jpg" for i in range(len(scores))])
    return BeautyReference.from_arrays(aligned, np.array(scores), ids, np.array(["H.jpg"]), mean)


def test_reference_round_trip(tmp_path):
    ref = make_reference([2.0, 3.0, 4.0, 2.5, 3.5])
    path = tmp_path / "ref.npz"
    ref.save(path)
    back = BeautyReference.load(path)
    assert list(back.ids) == list(ref.ids) and list(back.holdout_ids) == ["H.jpg"]
    np.testing.assert_allclose(back.landmarks, ref.landmarks, atol=2e-3)  # float16
    np.testing.assert_allclose(back.scores, ref.scores, atol=2e-3)
    assert back.features.shape == (5, 42)
    np.testing.assert_allclose(back.features.mean(0), 0, atol=1e-9)


def test_reference_rejects_bad_arrays():
    with pytest.raises(ValueError, match="68, 2"):
        BeautyReference.from_arrays(np.zeros((3, 60, 2)), np.zeros(3), [], [], np.zeros((68, 2)))


def test_target_averages_the_nearest_better_rated():
    rng = np.random.default_rng(3)
    scores = [4.0, 1.5, 3.5, 4.5, 2.0, 3.0, 4.2, 1.0, 3.8]
    ref = make_reference(scores, rng)
    face = apply_similarity(similarity(1.7, 0.2, (30, 12)), variant(0, rng))
    t = shape_target(face, score=2.9, reference=ref, k=3, warp=1.0)
    better = [i for i, s in enumerate(scores) if s > 2.9]
    z = (geometric_features(face) - ref.feature_mean) / ref.feature_std
    d = np.linalg.norm(ref.features - z, axis=1)
    nearest = sorted(better, key=lambda i: d[i])[:3]
    assert t.neighbours == tuple(f"R{i}.jpg" for i in nearest)
    w = np.array([scores[i] / (d[i] + 1e-6) for i in nearest])
    w /= w.sum()
    np.testing.assert_allclose(t.weights, w, rtol=1e-3)  # scores are stored as float16
    np.testing.assert_allclose(t.neighbour_scores, [scores[i] for i in nearest], atol=2e-3)
    avg = np.einsum("k,kpd->pd", t.weights, ref.landmarks[[int(i) for i in nearest]])
    placed = apply_similarity(similarity_transform(avg[:60], face[:60]), avg)
    np.testing.assert_allclose(t.average, placed, atol=1e-6)
    np.testing.assert_allclose(t.landmarks, placed, atol=1e-6)
    # warp blends linearly between the face and the placed average.
    half = shape_target(face, score=2.9, reference=ref, k=3, warp=0.25)
    np.testing.assert_allclose(half.landmarks, face + 0.25 * (placed - face), atol=1e-6)
    none = shape_target(face, score=2.9, reference=ref, k=3, warp=0.0)
    np.testing.assert_allclose(none.landmarks, face, atol=1e-12)


def test_target_keeps_pose_and_size():
    rng = np.random.default_rng(4)
    ref = make_reference([3.0, 3.5, 4.0, 4.5], rng)
    face = apply_similarity(similarity(2.0, -0.3, (100, 50)), variant(1, rng))
    t = shape_target(face, score=1.0, reference=ref, k=2)
    m = similarity_transform(t.landmarks[:60], face[:60])
    scale = np.hypot(m[0, 0], m[1, 0])
    assert abs(scale - 1.0) < 0.01 and abs(np.arctan2(m[1, 0], m[0, 0])) < 0.01


def test_target_falls_back_to_the_best_rated():
    ref = make_reference([2.0, 3.0, 4.0, 2.5, 3.5])
    t = shape_target(BASE, score=4.9, reference=ref, k=2)
    assert sorted(t.neighbours) == ["R2.jpg", "R4.jpg"]  # the two best (4.0, 3.5)


def test_target_rejects_bad_arguments():
    ref = make_reference([2.0, 3.0])
    with pytest.raises(ValueError, match="warp"):
        shape_target(BASE, 2.0, ref, warp=1.5)
    with pytest.raises(ValueError, match="k must"):
        shape_target(BASE, 2.0, ref, k=0)
    with pytest.raises(ValueError, match="68, 2"):
        shape_target(BASE[:10], 2.0, ref)


def test_bundled_reference():
    ref = load_reference()
    assert len(ref) == 3200 and len(ref.holdout_ids) == 100
    assert len(set(ref.ids)) == 3200
    assert not set(ref.ids) & set(ref.holdout_ids)
    # The fixed, seeded held-out list (stratified: 37 AF, 36 AM, 14 CF, 13 CM).
    assert list(ref.holdout_ids[:3]) == ["AF100.jpg", "AF1089.jpg", "AF1116.jpg"]
    groups = [i[:2] for i in ref.holdout_ids]
    assert [groups.count(g) for g in ("AF", "AM", "CF", "CM")] == [37, 36, 14, 13]
    # Scores are the dataset's mean ratings (float16), e.g. CM148.jpg: 3.516667.
    assert ref.ids[0] == "CM148.jpg" and abs(ref.scores[0] - 3.516667) < 2e-3
    np.testing.assert_allclose(np.sqrt((ref.mean_shape**2).sum(1).mean()), 1.0, atol=1e-6)
    rms = np.sqrt((ref.landmarks.astype(np.float64) ** 2).sum(-1).mean(-1))
    assert abs(np.median(rms) - 1.0) < 0.01
    assert load_reference() is ref  # read once per process
