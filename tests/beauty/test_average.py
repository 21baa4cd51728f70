"""facecore.beauty.average: piecewise-affine warping and average faces."""

import cv2
import numpy as np
import pytest
from scipy.spatial import Delaunay

from facecore.align import similarity_transform
from facecore.beauty.average import (
    average_faces,
    average_of_aligned,
    mean_shape_in_frame,
    piecewise_affine_warp,
)
from facecore.beauty.pipeline import NoFaceError
from facecore.beauty.shape import apply_similarity, procrustes_mean


def test_piecewise_warp_of_a_global_affine_is_that_affine():
    # A linear ramp is reproduced exactly by bilinear sampling, so the output at x must be the
    # ramp at A x + t (to cv2.remap's 1/32 px position resolution).
    h, w = 90, 120
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([xx, yy], -1)  # channel 0 = x, channel 1 = y
    corners = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1], [60, 0], [0, 45], [119, 45]]
    dst = np.array(corners + [[40, 30], [70, 50], [55, 70]], float)
    a, t = np.array([[0.9, 0.1], [-0.05, 0.95]]), np.array([4.0, 2.5])
    src = dst @ a.T + t
    out = piecewise_affine_warp(ramp, src, dst, Delaunay(dst).simplices, (h, w))
    want_x = a[0, 0] * xx + a[0, 1] * yy + t[0]
    want_y = a[1, 0] * xx + a[1, 1] * yy + t[1]
    inside = (want_x >= 0) & (want_x <= w - 1) & (want_y >= 0) & (want_y <= h - 1)
    assert np.abs(out[..., 0] - want_x)[inside].max() < 1 / 32 + 1e-4
    assert np.abs(out[..., 1] - want_y)[inside].max() < 1 / 32 + 1e-4


def test_piecewise_warp_moves_each_triangle_by_its_own_map():
    img = np.zeros((60, 80), np.uint8)
    img[20:30, 10:20] = 200  # a square in the left half
    dst = np.array([[0, 0], [79, 0], [79, 59], [0, 59], [40, 0], [40, 59]], float)
    src = dst.copy()
    src[[4, 5], 0] = 30  # the middle edge moves left in the source: the left half stretches
    tri = np.array([[0, 4, 5], [0, 5, 3], [4, 1, 2], [4, 2, 5]])
    out = piecewise_affine_warp(img, src, dst, tri, (60, 80))
    cols = np.flatnonzero(out[25] > 100)
    # Left half: x_src = 30/40 x_dst; the square's pixels 10-19 sample above 100 for x_src in
    # (9.5, 19.5), i.e. x_dst in (12.7, 26).
    assert cols.tolist() == list(range(13, 26))
    # Right half: x_src = 30 + (x_dst - 40) * 49/39; nothing bright there.
    assert out[:, 40:].max() == 0


def test_piecewise_warp_rejects_bad_input():
    pts = np.zeros((4, 2))
    with pytest.raises(ValueError, match="equal shape"):
        piecewise_affine_warp(np.zeros((8, 8)), pts, pts[:3], [[0, 1, 2]], (8, 8))
    with pytest.raises(ValueError, match="indices"):
        piecewise_affine_warp(np.zeros((8, 8)), pts, pts, [[0, 1, 9]], (8, 8))


def aligned(img, lm, size):
    mean, _ = procrustes_mean(lm[None])
    m = similarity_transform(lm, mean_shape_in_frame(mean, size))
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)  # fmt: skip


def test_average_of_one_face_is_the_aligned_face(make_face):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (260, 240, 3), dtype=np.uint8)
    lm = make_face(offset=(20.0, 10.0))
    out = average_of_aligned([img], [lm], size=128)
    want = aligned(img, lm, 128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - want).max() <= 1
    assert np.mean(out != want) < 0.01


def test_average_is_the_pixel_mean(make_face):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (260, 240, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (260, 240, 3), dtype=np.uint8)
    lm = make_face(offset=(20.0, 10.0))
    got = average_of_aligned([a, b], [lm, lm], size=96)
    one_a = average_of_aligned([a], [lm], size=96).astype(int)
    one_b = average_of_aligned([b], [lm], size=96).astype(int)
    assert np.abs(got - (one_a + one_b) / 2).max() <= 1.0


def test_average_rejects_bad_input(make_face):
    with pytest.raises(ValueError, match="one landmark set per image"):
        average_of_aligned([np.zeros((8, 8, 3), np.uint8)], [])
    with pytest.raises(ValueError, match="size"):
        average_of_aligned([np.zeros((8, 8, 3), np.uint8)], [make_face()], size=8)


def test_average_faces_of_photos(analyzer, one_face_photo, fixtures):
    photos = [one_face_photo, fixtures / "biden.jpg"]
    out = average_faces(photos, analyzer, size=200)
    assert out.shape == (200, 200, 3) and out.dtype == np.uint8
    # The average is a face, where the frame puts the mean shape.
    faces = analyzer.analyze(out, stages=("landmarks",))
    assert len(faces) == 1
    marks = [analyzer.analyze(p, stages=("landmarks",))[0].landmarks for p in photos]
    mean, _ = procrustes_mean(np.stack(marks))
    frame = mean_shape_in_frame(mean, 200)
    err = np.linalg.norm(faces[0].landmarks - frame, axis=1)
    assert np.median(err) < 3.0, np.median(err)
    m = similarity_transform(faces[0].landmarks, frame)
    assert abs(np.hypot(m[0, 0], m[1, 0]) - 1) < 0.05


def test_average_faces_names_the_image_without_a_face(analyzer, one_face_photo, no_face_photo):
    with pytest.raises(NoFaceError, match="image 1.*dlib_dog") as e:
        average_faces([one_face_photo, no_face_photo], analyzer)
    assert e.value.code == "no_face" and e.value.index == 1
    with pytest.raises(ValueError, match="at least one"):
        average_faces([], analyzer)


def test_apply_similarity_matches_cv2():
    m = np.array([[0.9, -0.2, 5.0], [0.2, 0.9, -3.0]])
    pts = np.array([[1.0, 2.0], [30.0, 40.0]])
    want = cv2.transform(pts[None].astype(np.float64), m)[0]
    np.testing.assert_allclose(apply_similarity(m, pts), want)
