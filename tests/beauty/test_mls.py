"""facecore.beauty.mls: the three MLS forms of Schaefer et al. (2006) on a grid."""

import numpy as np
import pytest

from facecore.beauty.mls import (
    MLS_KINDS,
    mls_backward_map,
    mls_deform,
    mls_warp,
    mls_warp_region,
)

RNG = np.random.default_rng(0)
SRC = RNG.uniform(20, 180, (12, 2))
POINTS = RNG.uniform(-40, 240, (500, 2))


def rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def paper_mls(v, p, q, kind):
    """Schaefer et al. (2006) written out literally, one point at a time: eq. 5 (affine), the
    A_i matrices of eq. 7 (similarity) and eq. 9 (rigid)."""
    out = []
    perp = np.array([[0.0, 1.0], [-1.0, 0.0]])  # (x, y) -> (-y, x) for row vectors: x @ perp
    for x in v:
        w = 1.0 / ((p - x) ** 2).sum(1)
        ps, qs = w @ p / w.sum(), w @ q / w.sum()
        ph, qh = p - ps, q - qs
        if kind == "affine":
            a = sum(wi * np.outer(pi, pi) for wi, pi in zip(w, ph, strict=True))
            b = sum(wi * np.outer(pi, qi) for wi, pi, qi in zip(w, ph, qh, strict=True))
            out.append((x - ps) @ np.linalg.inv(a) @ b + qs)
            continue
        d = x - ps
        right = np.stack([d, -(d @ perp)])  # rows (v - p*) and -(v - p*)^perp
        f = np.zeros(2)
        for wi, pi, qi in zip(w, ph, qh, strict=True):
            a_i = wi * np.stack([pi, -(pi @ perp)]) @ right.T
            f += qi @ a_i
        if kind == "similarity":
            mu = (w * (ph**2).sum(1)).sum()
            out.append(f / mu + qs)
        else:
            out.append(np.linalg.norm(d) * f / np.linalg.norm(f) + qs)
    return np.array(out)


@pytest.mark.parametrize("kind", MLS_KINDS)
def test_matches_the_papers_formulas(kind):
    dst = SRC + RNG.normal(0, 6, SRC.shape)
    got = mls_deform(POINTS, SRC, dst, kind)
    want = paper_mls(POINTS, SRC, dst, kind)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("kind", MLS_KINDS)
def test_identity_when_src_equals_dst(kind):
    np.testing.assert_allclose(mls_deform(POINTS, SRC, SRC, kind), POINTS, atol=1e-9)
    img = RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(mls_warp(img, SRC / 3, SRC / 3, kind), img)


@pytest.mark.parametrize("kind", MLS_KINDS)
def test_global_similarity_is_reproduced_everywhere(kind):
    # dst = R src + t: every form contains rotations, so f = R v + t at every point, not only at
    # the handles (the rigid form exactly so, by construction).
    r, t = rotation(0.4), np.array([7.5, -3.25])
    dst = SRC @ r.T + t
    np.testing.assert_allclose(mls_deform(POINTS, SRC, dst, kind), POINTS @ r.T + t, atol=1e-6)


def test_rigid_ignores_scale_similarity_keeps_it():
    dst = 1.5 * SRC
    v = np.array([[0.0, 10.0], [230.0, 50.0]])
    np.testing.assert_allclose(mls_deform(v, SRC, dst, "similarity"), 1.5 * v, atol=1e-6)
    # Rigid: no rotation, unit scale about the weighted centroid: f(v) = v - p* + q*, q* = 1.5 p*.
    w = 1.0 / ((SRC[None] - v[:, None]) ** 2).sum(-1)
    p_star = w @ SRC / w.sum(1, keepdims=True)
    want = v + 0.5 * p_star
    np.testing.assert_allclose(mls_deform(v, SRC, dst, "rigid"), want, atol=1e-6)
    assert np.linalg.norm(want - 1.5 * v, axis=1).min() > 10


@pytest.mark.parametrize("kind", MLS_KINDS)
def test_handles_map_onto_their_targets(kind):
    dst = SRC + RNG.normal(0, 5, SRC.shape)
    np.testing.assert_allclose(mls_deform(SRC, SRC, dst, kind), dst, atol=1e-4)


@pytest.mark.parametrize("kind", MLS_KINDS)
def test_pixel_at_src_lands_at_dst(kind):
    # A bright dot at each handle of an image; after the warp each dot's peak is at its target.
    h, w = 200, 240
    src = np.array([[60.0, 60.0], [180.0, 70.0], [120.0, 150.0], [50.0, 160.0]])
    dst = src + np.array([[6.0, -4.0], [-5.0, 5.0], [3.0, 7.0], [4.0, -3.0]])
    fixed = np.array([[0.0, 0.0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.float32)
    for x, y in src:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    out = mls_warp(img, np.concatenate([src, fixed]), np.concatenate([dst, fixed]), kind)
    for x, y in dst:
        x0, y0 = int(x) - 6, int(y) - 6
        patch = out[y0 : y0 + 13, x0 : x0 + 13]
        py, px = np.unravel_index(np.argmax(patch), patch.shape)
        # sub-pixel peak: intensity-weighted centroid of the 5x5 around the maximum
        sub = patch[py - 2 : py + 3, px - 2 : px + 3]
        gy, gx = np.mgrid[-2:3, -2:3]
        cx = x0 + px + (sub * gx).sum() / sub.sum()
        cy = y0 + py + (sub * gy).sum() / sub.sum()
        assert np.hypot(cx - x, cy - y) < 1.0, (kind, x, y, cx, cy)


def test_grid_map_is_close_to_the_dense_map():
    # A smooth displacement of up to 3 px (as a face's landmarks get): the bilinear grid map
    # stays within 0.3 px of the per-pixel one (measured 0.29 px at grid 9), and is the exact
    # map at the grid vertices (pixels 4, 13, 22, ... for grid 9).
    dst = SRC + 3 * np.sin(SRC[:, ::-1] / 40)
    fixed = np.array([[0.0, 0.0], [199, 0], [199, 199], [0, 199]])
    src, dst = np.concatenate([SRC, fixed]), np.concatenate([dst, fixed])
    coarse = mls_backward_map((200, 200), src, dst, grid=9)
    dense = mls_backward_map((200, 200), src, dst, grid=1)
    err = np.hypot(coarse[0] - dense[0], coarse[1] - dense[1])
    assert 0.1 < err.max() < 0.3
    for c, d in zip(coarse, dense, strict=True):
        np.testing.assert_allclose(c[4::9, 4::9], d[4::9, 4::9], atol=1e-3)


def test_backward_map_is_the_reversed_deformation():
    dst = SRC + RNG.normal(0, 4, SRC.shape)
    mx, my = mls_backward_map((100, 120), SRC, dst, kind="similarity", grid=1)
    v = np.array([[10.0, 20.0], [119.0, 99.0], [57.0, 33.0]])
    want = mls_deform(v, dst, SRC, "similarity")
    got = np.stack([mx[v[:, 1].astype(int), v[:, 0].astype(int)],
                    my[v[:, 1].astype(int), v[:, 0].astype(int)]], 1)  # fmt: skip
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("kind", MLS_KINDS)
def test_collinear_and_duplicated_handles_stay_finite(kind):
    line = np.stack([np.linspace(10, 190, 9), np.full(9, 100.0)], 1)
    moved = line + [2.0, 1.0]
    out = mls_deform(POINTS, line, moved, kind)
    assert np.isfinite(out).all()
    # Collinear handles that all move by t: the fit is that translation, off the line too.
    np.testing.assert_allclose(out, POINTS + [2.0, 1.0], atol=1e-6)

    same = np.array([[50.0, 50.0]] * 3)
    targets = np.array([[52.0, 50.0], [54.0, 50.0], [50.0, 50.0]])
    out = mls_deform(POINTS, same, targets, kind)
    # Coincident handles: a pure translation by the mean target offset (2, 0).
    np.testing.assert_allclose(out, POINTS + [2.0, 0.0], atol=1e-9)

    img = RNG.integers(0, 256, (50, 60), dtype=np.uint8)
    warped = mls_warp(img, np.concatenate([same, line / 4]), np.concatenate([targets, moved / 4]))
    assert warped.shape == img.shape and warped.dtype == img.dtype


def test_single_handle_is_a_translation():
    out = mls_deform(POINTS, [[10.0, 10.0]], [[13.0, 6.0]], "rigid")
    np.testing.assert_allclose(out, POINTS + [3.0, -4.0], atol=1e-9)


def test_large_image_shape_and_dtype():
    img = np.zeros((2000, 2000, 3), np.uint8)
    img[::50] = 255
    src = RNG.uniform(600, 1400, (68, 2))
    out = mls_warp(img, src, src + RNG.normal(0, 8, src.shape))
    assert out.shape == (2000, 2000, 3) and out.dtype == np.uint8
    grey = mls_warp(img[..., 0].astype(np.float32), src, src)
    assert grey.shape == (2000, 2000) and grey.dtype == np.float32
    one = mls_warp(img[..., :1], src, src)
    assert one.shape == (2000, 2000, 1)


@pytest.mark.parametrize(
    "args, match",
    [
        (([[0, 0]], [[0, 0], [1, 1]]), "equal shape"),
        (([[0, 0, 0]], [[0, 0, 0]]), r"\(N, 2\)"),
        (([[np.nan, 0]], [[0, 0]]), "finite"),
    ],
)
def test_bad_points(args, match):
    with pytest.raises(ValueError, match=match):
        mls_warp(np.zeros((8, 8), np.uint8), *args)


def test_bad_kind_grid_alpha():
    img = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="kind"):
        mls_warp(img, [[1, 1]], [[2, 2]], kind="projective")
    with pytest.raises(ValueError, match="grid"):
        mls_warp(img, [[1, 1]], [[2, 2]], grid=0)
    with pytest.raises(ValueError, match="alpha"):
        mls_deform([[0, 0]], [[1, 1]], [[2, 2]], alpha=0)


def test_region_warp_leaves_the_outside_bit_identical():
    img = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    src = np.array([[70.0, 50.0], [90.0, 60.0], [80.0, 75.0]])
    dst = src + [[3.0, -2.0], [-2.0, 2.0], [1.0, 3.0]]
    region = (40, 20, 130, 100)
    out = mls_warp_region(img, src, dst, region)
    outside = np.ones(img.shape[:2], bool)
    outside[20:100, 40:130] = False
    np.testing.assert_array_equal(out[outside], img[outside])
    # The region's border rows and columns are the identity too (the feathered map is).
    np.testing.assert_array_equal(out[20, 40:130], img[20, 40:130])
    np.testing.assert_array_equal(out[20:100, 129], img[20:100, 129])
    assert not np.array_equal(out[45:75, 65:95], img[45:75, 65:95])
    # Without handles that move, nothing changes.
    np.testing.assert_array_equal(mls_warp_region(img, src, src, region), img)
    # A region outside the image changes nothing.
    np.testing.assert_array_equal(mls_warp_region(img, src, dst, (200, 200, 300, 300)), img)


def test_region_warp_moves_handles_like_the_full_warp():
    h, w = 160, 200
    src = np.array([[80.0, 70.0], [120.0, 70.0], [100.0, 100.0]])
    dst = src + [[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]]
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.float32)
    for x, y in src:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
    out = mls_warp_region(img, src, dst, (40, 30, 160, 140), grid=4)
    for x, y in dst:
        patch = out[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4]
        py, px = np.unravel_index(np.argmax(patch), patch.shape)
        assert (px - 3, py - 3) == (0, 0), (x, y, px, py)
