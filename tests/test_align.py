import numpy as np
import pytest

from facecore.align import TEMPLATE_5PT_112, align_face, similarity_transform


def _apply(m, pts):
    return pts @ m[:, :2].T + m[:, 2]


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (7, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_reflects():
    src = np.array([[0, 0], [1, 0], [0, 1.0]])
    dst = src * [-1, 1]  # a mirror image: best similarity is not a reflection
    m = similarity_transform(src, dst)
    assert np.linalg.det(m[:, :2]) > 0


def test_similarity_transform_rejects_bad_input():
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((3, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize("size", [64, 112, 224])
def test_align_face_puts_landmarks_on_the_template(size):
    # draw 5 bright dots at rotated/scaled template positions, then align them back
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = (TEMPLATE_5PT_112 - 56) @ rot.T * 2.5 + [300, 250]
    img = np.zeros((500, 600, 3), np.uint8)
    for x, y in pts.round().astype(int):
        img[y - 2 : y + 3, x - 2 : x + 3] = 255
    chip = align_face(img, pts, size=size)
    assert chip.shape == (size, size, 3) and chip.dtype == np.uint8
    expected = TEMPLATE_5PT_112 * size / 112
    for x, y in expected:
        xi, yi = int(round(x)), int(round(y))
        assert chip[yi - 1 : yi + 2, xi - 1 : xi + 2].max() > 100


def test_align_face_checks_shapes():
    with pytest.raises(ValueError):
        align_face(np.zeros((10, 10, 3), np.uint8), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        align_face(np.zeros((10, 10, 3), np.uint8), TEMPLATE_5PT_112, size=4)


def test_face_crop_is_cut_once_and_cached_on_the_face(analyzer, one_face_photo, monkeypatch):
    import facecore.align as align
    from facecore.align import AlignSpec, face_crop, face_crops
    from facecore.io import load_image

    img = load_image(one_face_photo)
    (face,) = analyzer.analyze(img, stages=("landmarks",))
    spec = AlignSpec("similarity5", 128, 0.05)
    crop = face_crop(img, face, spec)
    np.testing.assert_array_equal(crop, align_face(img, face.landmarks, size=128, padding=0.05))
    assert not crop.flags.writeable
    calls = []
    monkeypatch.setattr(align, "_cut", lambda *a: calls.append(a))
    assert face_crop(img, face.with_features(x=np.zeros(1)), spec) is crop  # shared by copies
    assert calls == []
    assert face_crops(img, [face, face], spec).shape == (2, 128, 128, 3)
    assert face_crops(img, [], spec).shape == (0, 128, 128, 3)


def test_align_spec_is_checked():
    from facecore.align import AlignSpec

    with pytest.raises(ValueError, match="align method"):
        AlignSpec("affine", 128, 0.0)
    with pytest.raises(ValueError, match="size"):
        AlignSpec("dlib", 4, 0.0)
    assert AlignSpec.of({"method": "dlib", "size": 150, "padding": 0.25}) == AlignSpec(
        "dlib", 150, 0.25
    )
