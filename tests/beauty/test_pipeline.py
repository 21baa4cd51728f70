"""facecore.beauty.pipeline: the ``beautify`` verb on real photos with the shipped models."""

import numpy as np
import pytest

from facecore.beauty import (
    DEFAULT_SMOOTH,
    DEFAULT_WARP,
    BeautifyResult,
    NoFaceError,
    beautify,
    face_region,
    grid_step,
    skin_mask,
    warp_face,
)
from facecore.errors import FacecoreError


@pytest.fixture(scope="module")
def obama(analyzer, one_face_photo):
    """The photo, its analysis and its beautification with the defaults."""
    rgb, faces = analyzer.analyze_image(one_face_photo, stages=("attractiveness",))
    return rgb, faces[0], beautify(one_face_photo, analyzer=analyzer)


def test_defaults():
    # Chosen from scripts/eval_beautify.py on the 100 held-out SCUT-FBP5500 photos (docs).
    assert (DEFAULT_WARP, DEFAULT_SMOOTH) == (0.75, 0.5)


def test_result_record(obama):
    rgb, face, r = obama
    assert isinstance(r, BeautifyResult)
    assert r.image.shape == rgb.shape and r.image.dtype == np.uint8
    assert not r.image.flags.writeable
    assert r.box == face.box
    assert (r.warp, r.smooth) == (0.75, 0.5)
    assert r.steps == (
        "shape: 10 references, rigid MLS, warp 0.75",
        "skin: multi-level median, smooth 0.5",
    )
    assert len(r.neighbours) == 10 and all(n.endswith(".jpg") for n in r.neighbours)
    np.testing.assert_array_equal(r.landmarks_before, face.landmarks)
    shift = np.linalg.norm(r.landmarks_after - r.landmarks_before, axis=1)
    assert r.landmark_shift_mean == pytest.approx(shift.mean())
    assert r.landmark_shift_max == pytest.approx(shift.max())


def test_scores_and_identity(obama):
    _, face, r = obama
    # The score before is the classical model's (facecore.beauty.pipeline.SCORE_OPTIONS);
    # golden values measured with the shipped models.
    assert r.score_before == pytest.approx(2.7777, abs=1e-3)
    assert r.score_before == pytest.approx(2.778, abs=0.01)
    assert r.score_after == pytest.approx(2.924, abs=0.01)
    assert r.score_change == pytest.approx(r.score_after - r.score_before)
    assert r.identity_distance == pytest.approx(0.131, abs=0.01)
    assert r.landmark_shift_mean == pytest.approx(2.49, abs=0.05)
    assert r.landmark_shift_max == pytest.approx(6.40, abs=0.1)


def test_only_the_face_changes(obama):
    rgb, _, r = obama
    region = face_region(np.concatenate([r.landmarks_before, r.landmarks_after]), rgb.shape)
    x0, y0, x1, y1 = region
    untouched = skin_mask(rgb.shape, r.landmarks_after) == 0
    untouched[y0:y1, x0:x1] = False
    assert untouched.mean() > 0.7
    np.testing.assert_array_equal(r.image[untouched], rgb[untouched])
    assert not np.array_equal(r.image[y0:y1, x0:x1], rgb[y0:y1, x0:x1])


def test_warp_moves_the_landmarks_to_their_targets(analyzer, obama):
    rgb, face, _ = obama
    r = beautify(rgb, warp=1.0, smooth=0.0, analyzer=analyzer)
    # The landmark predictor, run on the result, finds the points near where they were sent.
    again = analyzer.run_stages(r.image, [face.evolve(landmarks=None)], stages=("landmarks",))
    found = np.asarray(again[0].landmarks, np.float64)
    assert r.landmark_shift_mean > 3.0
    # The predictor (a regression with a shape prior) follows about 57% of the displacement
    # overall, and the eyes, whose corners are sharp, closely.
    d = r.landmarks_after - r.landmarks_before
    followed = ((found - r.landmarks_before) * d).sum() / (d * d).sum()
    assert 0.45 < followed < 1.1, followed
    eyes = slice(36, 48)
    to_target = np.linalg.norm(found[eyes] - r.landmarks_after[eyes], axis=1).mean()
    to_source = np.linalg.norm(found[eyes] - r.landmarks_before[eyes], axis=1).mean()
    assert to_target < 0.6 * to_source, (to_target, to_source)


def test_nothing_to_do_returns_the_photo(analyzer, obama):
    rgb, face, _ = obama
    r = beautify(rgb, warp=0.0, smooth=0.0, analyzer=analyzer)
    np.testing.assert_array_equal(r.image, rgb)
    assert r.steps == () and r.neighbours == ()
    assert r.landmark_shift_mean == 0.0 and r.landmark_shift_max == 0.0
    # The same image and box give the same score and descriptor.
    assert r.score_after == pytest.approx(r.score_before, abs=1e-9)
    assert r.identity_distance == pytest.approx(0.0, abs=1e-5)


def test_rescore_off(analyzer, obama):
    rgb, _, full = obama
    r = beautify(rgb, analyzer=analyzer, rescore=False)
    assert r.score_after is None and r.identity_distance is None and r.score_change is None
    np.testing.assert_array_equal(r.image, full.image)


def test_only_the_largest_face_changes(analyzer, two_face_photo):
    rgb, faces = analyzer.analyze_image(two_face_photo, stages=("landmarks",))
    r = beautify(two_face_photo, analyzer=analyzer)
    assert r.box == faces[0].box
    b = faces[1].box
    x0, y0, x1, y1 = (int(v) for v in (b.x1, b.y1, b.x2, b.y2))
    np.testing.assert_array_equal(r.image[y0:y1, x0:x1], rgb[y0:y1, x0:x1])


def test_no_face_is_a_clear_error(analyzer, no_face_photo):
    with pytest.raises(NoFaceError, match="no face") as e:
        beautify(no_face_photo, analyzer=analyzer)
    assert isinstance(e.value, FacecoreError) and isinstance(e.value, ValueError)
    assert e.value.code == "no_face"


@pytest.mark.parametrize("kw", [{"warp": -0.1}, {"smooth": 1.01}, {"warp": "a lot"}])
def test_strengths_are_checked(analyzer, one_face_photo, kw):
    with pytest.raises(ValueError, match="warp|smooth"):
        beautify(one_face_photo, analyzer=analyzer, **kw)


def test_warp_face_keeps_the_inner_lips_as_followers(make_face):
    lm = make_face(offset=(20.0, 10.0))
    target = lm.copy()
    target[48:60, 1] += 4.0  # the outer lips move down
    target[60:68] = lm[60:68] + [0.0, -30.0]  # an inner-lip target that must be ignored
    img = np.random.default_rng(0).integers(0, 256, (260, 240, 3), dtype=np.uint8)
    out, moved = warp_face(img, lm, target)
    np.testing.assert_array_equal(moved[:60], target[:60])
    # The inner lips go down with the outer lips (3.0-3.3 px: the fixed handles around hold
    # back a little), not up to their own target.
    down = moved[60:68, 1] - lm[60:68, 1]
    assert np.all((down > 2.8) & (down < 4.0)), down
    np.testing.assert_allclose(moved[60:68, 0], lm[60:68, 0], atol=0.2)
    assert grid_step(lm) == 3  # 160 px face / 50, rounded
    assert out.shape == img.shape


def test_front_door_verb_survives_importing_the_package():
    """``facecore.beautify`` is the verb, also after ``facecore.beauty`` is imported (a
    subpackage of the verb's name would replace it on the parent package)."""
    import facecore
    import facecore.beauty  # noqa: F401

    assert callable(facecore.beautify) and facecore.beautify.__module__ == "facecore"
