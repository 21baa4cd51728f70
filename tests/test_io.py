"""Tests for :mod:`facecore.io`: input types, formats, colour conversion, orientation, limits.

All images are generated in memory; the files read from disk are the bundled obama.jpg fixture and
one photo of ../shared/data/fixtures (skipped when the shared data is absent; fails under CI).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from facecore.errors import (
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UndecodableImageError,
    UnsupportedImageError,
)
from facecore.io import (
    SUPPORTED_FORMATS,
    ImageLimits,
    ReducedLoad,
    load_image,
    load_image_reduced,
    sniff_format,
)

#: PNG data named .jpg, in ../shared/data/fixtures (insightface, non-commercial: not copied here).
_PNG_NAMED_JPG = ("fixtures", "insightface", "inspireface_rot_0.jpg")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _random_rgb(height: int = 24, width: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _blocks(rows: int = 2, cols: int = 3, block: int = 16) -> np.ndarray:
    """An image of ``rows x cols`` flat blocks in distinct colours: asymmetric and JPEG-safe."""
    colours = np.array(
        [
            (230, 20, 20),
            (20, 200, 30),
            (30, 40, 220),
            (240, 230, 40),
            (20, 220, 230),
            (120, 60, 10),
        ],
        dtype=np.uint8,
    )
    image = np.empty((rows * block, cols * block, 3), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            image[r * block : (r + 1) * block, c * block : (c + 1) * block] = colours[
                (r * cols + c) % len(colours)
            ]
    return image


def _encode(image: np.ndarray | Image.Image, fmt: str, **params: object) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _handmade_png(
    width: int, height: int, bit_depth: int, colour_type: int, scanlines: bytes
) -> bytes:
    """A PNG written chunk by chunk; ``scanlines`` is the filtered data (filter byte per row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(scanlines))
        + _png_chunk(b"IEND", b"")
    )


def _png_16bit(samples: np.ndarray, colour_type: int) -> bytes:
    """A 16-bit PNG from a ``(H, W, C)`` uint16 array (filter type 0 on every row)."""
    height, width = samples.shape[:2]
    rows = samples.astype(">u2").reshape(height, -1)
    scanlines = b"".join(b"\x00" + row.tobytes() for row in rows)
    return _handmade_png(width, height, 16, colour_type, scanlines)


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Reference compositing in float, rounded: ``c * a + 255 * (1 - a)``."""
    alpha = rgba[..., 3:4].astype(np.float64) / 255.0
    return np.rint(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _assert_rgb(array: np.ndarray, shape: tuple[int, int] | None = None) -> None:
    assert isinstance(array, np.ndarray)
    assert array.dtype == np.uint8
    assert array.ndim == 3 and array.shape[2] == 3
    assert array.flags.c_contiguous and array.flags.writeable
    if shape is not None:
        assert array.shape[:2] == shape


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ---------------------------------------------------------------------------------------------
# Accepted input types
# ---------------------------------------------------------------------------------------------


def _as_str_path(data: bytes, tmp_path: Path) -> object:
    path = tmp_path / "image.png"
    path.write_bytes(data)
    return str(path)


def _as_pathlib(data: bytes, tmp_path: Path) -> object:
    path = tmp_path / "image.png"
    path.write_bytes(data)
    return path


SOURCE_MAKERS: dict[str, Callable[[bytes, Path], object]] = {
    "str path": _as_str_path,
    "pathlib path": _as_pathlib,
    "bytes": lambda data, _: data,
    "bytearray": lambda data, _: bytearray(data),
    "memoryview": lambda data, _: memoryview(data),
    "BytesIO": lambda data, _: io.BytesIO(data),
    "PIL image": lambda data, _: Image.open(io.BytesIO(data)),
}


@pytest.mark.parametrize("kind", sorted(SOURCE_MAKERS))
def test_every_encoded_source_type_gives_the_same_pixels(kind: str, tmp_path: Path) -> None:
    expected = _random_rgb()
    source = SOURCE_MAKERS[kind](_encode(expected, "PNG"), tmp_path)
    result = load_image(source)
    _assert_rgb(result, expected.shape[:2])
    np.testing.assert_array_equal(result, expected)


def test_open_binary_file_object_is_read_from_its_position(tmp_path: Path) -> None:
    expected = _random_rgb(seed=3)
    path = tmp_path / "x.bin"
    path.write_bytes(b"HEADER" + _encode(expected, "PNG"))
    with open(path, "rb") as handle:
        handle.read(6)
        np.testing.assert_array_equal(load_image(handle), expected)


def test_text_mode_file_object_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="binary mode"):
        load_image(io.StringIO("not bytes"))


@pytest.mark.parametrize("source", [42, 3.5, None, [[0, 1], [2, 3]], {"a": 1}])
def test_unsupported_source_type_is_a_type_error_not_an_image_error(source: object) -> None:
    with pytest.raises(TypeError, match="load_image") as info:
        load_image(source)
    assert not isinstance(info.value, ImageError)


def test_limits_of_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="ImageLimits"):
        load_image(_random_rgb(), limits={"max_pixels": 10})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Numpy arrays
# ---------------------------------------------------------------------------------------------


def test_uint8_rgb_array_is_copied_not_aliased() -> None:
    original = _random_rgb()
    source = original.copy()
    result = load_image(source)
    np.testing.assert_array_equal(result, original)
    result[:] = 0
    np.testing.assert_array_equal(source, original)


def test_non_contiguous_and_read_only_arrays() -> None:
    base = _random_rgb(30, 50)
    view = base[::-1, ::2]
    view.flags.writeable = False
    result = load_image(view)
    _assert_rgb(result, (30, 25))
    np.testing.assert_array_equal(result, base[::-1, ::2])


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1)])
def test_grey_arrays_are_repeated_to_rgb(shape: tuple[int, ...]) -> None:
    grey = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    result = load_image(grey)
    _assert_rgb(result, (20, 30))
    for channel in range(3):
        np.testing.assert_array_equal(result[:, :, channel], grey.reshape(20, 30))


def test_uint16_array_keeps_the_high_byte() -> None:
    values = np.array([[0, 255, 256, 257 * 128, 65280, 65535]], dtype=np.uint16)
    values = np.repeat(values, 16, axis=0).repeat(3, axis=1)
    result = load_image(values)
    assert result[0, ::3, 0].tolist() == [0, 0, 1, 128, 255, 255]


def test_bool_array_is_black_and_white() -> None:
    mask = np.zeros((16, 20), dtype=bool)
    mask[:, 10:] = True
    result = load_image(mask)
    assert (result[:, :10] == 0).all() and (result[:, 10:] == 255).all()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_array_in_unit_range_is_scaled_to_uint8(dtype: type) -> None:
    values = np.linspace(0.0, 1.0, 16 * 18, dtype=np.float64).reshape(16, 18, 1)
    rgb = np.repeat(values, 3, axis=2).astype(dtype)
    result = load_image(rgb)
    expected = np.rint(rgb.astype(np.float64) * 255).astype(np.uint8)
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 1
    assert result[0, 0, 0] == 0 and result[-1, -1, 0] == 255


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((16, 16, 3), 1.5, dtype=np.float32), r"\[0, 1\]"),
        (np.full((16, 16, 3), -0.1, dtype=np.float64), r"\[0, 1\]"),
        (np.full((16, 16, 3), np.nan, dtype=np.float32), "NaN"),
        (np.zeros((16, 16, 3), dtype=np.int64), "dtype"),
        (np.zeros((16, 16, 3), dtype=np.complex64), "dtype"),
        (np.zeros((16, 16, 2), dtype=np.uint8), "expected"),
        (np.zeros((2, 16, 16, 3), dtype=np.uint8), "expected"),
        (np.zeros(16, dtype=np.uint8), "expected"),
    ],
)
def test_bad_arrays_are_unsupported(array: np.ndarray, message: str) -> None:
    with pytest.raises(UnsupportedImageError, match=message):
        load_image(array)


def test_rgba_array_is_composited_over_white() -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 10, 50)
    rgba[:, :4, 3] = 0
    rgba[:, 4:8, 3] = 255
    rgba[:, 8:12, 3] = 128
    rgba[:, 12:, 3] = 1
    result = load_image(rgba)
    np.testing.assert_array_equal(result, _over_white(rgba))
    assert result[0, 0].tolist() == [255, 255, 255]
    assert result[0, 5].tolist() == [200, 10, 50]


def test_arrays_are_checked_against_the_limits() -> None:
    with pytest.raises(ImageTooLargeError, match="40x30 = 1200 pixels"):
        load_image(np.zeros((30, 40, 3), np.uint8), limits=ImageLimits(max_pixels=1000))
    with pytest.raises(ImageTooSmallError, match="shorter side is 15"):
        load_image(np.zeros((15, 40, 3), np.uint8))
    with pytest.raises(ImageTooSmallError):
        load_image(np.zeros((0, 0, 3), np.uint8))


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------

LOSSLESS_FORMATS: dict[str, dict[str, object]] = {
    "png": {},
    "bmp": {},
    "tiff": {},
    "tiff_deflate": {"compression": "tiff_deflate"},
    "webp": {"lossless": True},
}


@pytest.mark.parametrize("name", sorted(LOSSLESS_FORMATS))
def test_lossless_formats_round_trip_exactly(name: str) -> None:
    expected = _random_rgb(seed=7)
    data = _encode(expected, name.split("_")[0].upper(), **LOSSLESS_FORMATS[name])
    assert sniff_format(data) == name.split("_")[0]
    np.testing.assert_array_equal(load_image(data), expected)


def test_jpeg_decodes_close_to_the_original() -> None:
    expected = _blocks()
    data = _encode(expected, "JPEG", quality=95, subsampling=0)
    assert sniff_format(data) == "jpeg"
    result = load_image(data)
    _assert_rgb(result, expected.shape[:2])
    assert _mean_abs_diff(result, expected) < 3.0


def test_gif_reads_only_the_first_frame() -> None:
    first = Image.new("RGB", (20, 16), (255, 0, 0))
    second = Image.new("RGB", (20, 16), (0, 0, 255))
    data = _encode(first, "GIF", save_all=True, append_images=[second], duration=50)
    assert sniff_format(data) == "gif"
    assert Image.open(io.BytesIO(data)).n_frames == 2
    result = load_image(data)
    _assert_rgb(result, (16, 20))
    assert (result == np.array([255, 0, 0], np.uint8)).all()


def test_gif_transparency_is_composited_over_white() -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0, 0, 0] * 254)
    image.paste(1, (8, 0, 16, 16))
    result = load_image(_encode(image, "GIF", transparency=0))
    assert (result[:, :8] == 255).all()
    assert result[0, 12].tolist() == [10, 200, 30]


def test_png_data_named_jpg_is_read_by_content(tmp_path: Path) -> None:
    expected = _random_rgb(seed=11)
    path = tmp_path / "photo.jpg"
    path.write_bytes(_encode(expected, "PNG"))
    np.testing.assert_array_equal(load_image(path), expected)


@pytest.mark.data
def test_fixture_png_named_jpg(shared) -> None:
    path = shared(*_PNG_NAMED_JPG)
    assert sniff_format(path.read_bytes()) == "png"
    _assert_rgb(load_image(path))


def test_obama_fixture_matches_pil(one_face_photo: Path) -> None:
    path = one_face_photo  # bundled: never skipped
    result = load_image(path)
    with Image.open(path) as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference).convert("RGB"))
    _assert_rgb(result)
    assert result.shape[0] >= 100 and result.shape[1] >= 100
    np.testing.assert_array_equal(result, expected)


# ---------------------------------------------------------------------------------------------
# Colour conversion
# ---------------------------------------------------------------------------------------------


def test_rgba_png_is_composited_over_white() -> None:
    rgba = np.random.default_rng(5).integers(0, 256, (16, 24, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 0
    rgba[0, 1, 3] = 255
    result = load_image(_encode(rgba, "PNG"))
    np.testing.assert_array_equal(result, _over_white(rgba))
    assert result[0, 0].tolist() == [255, 255, 255]


def test_opaque_rgba_png_keeps_its_colours() -> None:
    rgba = np.random.default_rng(6).integers(0, 256, (16, 24, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    np.testing.assert_array_equal(load_image(_encode(rgba, "PNG")), rgba[..., :3])


def test_grey_with_alpha_png() -> None:
    la = np.zeros((16, 16, 2), dtype=np.uint8)
    la[..., 0] = 40
    la[:, 8:, 1] = 255
    data = _encode(Image.fromarray(la, "LA"), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "LA"
    result = load_image(data)
    assert (result[:, :8] == 255).all()
    assert (result[:, 8:] == 40).all()


def test_grey_png_is_repeated_to_rgb() -> None:
    grey = np.random.default_rng(8).integers(0, 256, (20, 24), dtype=np.uint8)
    result = load_image(_encode(grey, "PNG"))
    np.testing.assert_array_equal(result, np.stack([grey] * 3, axis=2))


def test_bilevel_png() -> None:
    image = Image.new("1", (16, 16), 0)
    image.paste(1, (0, 0, 16, 8))
    result = load_image(_encode(image, "PNG"))
    assert (result[:8] == 255).all() and (result[8:] == 0).all()


def test_palette_png_with_per_index_transparency() -> None:
    image = Image.new("P", (18, 16), 0)
    image.putpalette([200, 0, 0, 0, 200, 0, 0, 0, 200] + [0, 0, 0] * 253)
    image.paste(1, (6, 0, 12, 16))
    image.paste(2, (12, 0, 18, 16))
    data = _encode(image, "PNG", transparency=bytes([0, 128, 255]))
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "P" and "transparency" in decoded.info
    result = load_image(data)
    assert result[0, 0].tolist() == [255, 255, 255]  # alpha 0
    assert result[0, 8].tolist() == _over_white(np.array([[0, 200, 0, 128]], np.uint8))[0].tolist()
    assert result[0, 14].tolist() == [0, 0, 200]  # alpha 255


def test_palette_png_without_transparency() -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([12, 34, 56] + [0, 0, 0] * 255)
    assert (load_image(_encode(image, "PNG")) == np.array([12, 34, 56], np.uint8)).all()


def test_grey_png_with_transparent_colour() -> None:
    image = Image.new("L", (16, 16), 5)
    image.paste(90, (0, 0, 16, 8))
    result = load_image(_encode(image, "PNG", transparency=5))
    assert (result[:8] == 90).all() and (result[8:] == 255).all()


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grey_keeps_the_high_byte(fmt: str) -> None:
    values = np.arange(16 * 32, dtype=np.uint16).reshape(16, 32) * 127
    data = _encode(Image.fromarray(values), fmt)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    result = load_image(data)
    np.testing.assert_array_equal(result[:, :, 0], (values >> 8).astype(np.uint8))
    np.testing.assert_array_equal(result[:, :, 0], result[:, :, 2])


def test_16bit_rgb_png_keeps_the_high_byte() -> None:
    samples = np.random.default_rng(9).integers(0, 65536, (16, 20, 3), dtype=np.uint16)
    result = load_image(_png_16bit(samples, colour_type=2))
    np.testing.assert_array_equal(result, (samples >> 8).astype(np.uint8))


def test_16bit_rgba_png_is_composited_over_white() -> None:
    samples = np.random.default_rng(10).integers(0, 65536, (16, 20, 4), dtype=np.uint16)
    samples[0, 0, 3] = 0
    result = load_image(_png_16bit(samples, colour_type=6))
    expected = _over_white((samples >> 8).astype(np.uint8))
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 1
    assert result[0, 0].tolist() == [255, 255, 255]


def test_16bit_grey_alpha_png() -> None:
    samples = np.zeros((16, 16, 2), dtype=np.uint16)
    samples[..., 0] = 0x3000
    samples[:, 8:, 1] = 0xFFFF
    result = load_image(_png_16bit(samples, colour_type=4))
    assert (result[:, :8] == 255).all() and (result[:, 8:] == 0x30).all()


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 0, 0, 0))  # white
    cmyk.paste((255, 0, 0, 0), (16, 0, 32, 16))  # cyan
    cmyk.paste((0, 255, 0, 0), (0, 16, 16, 32))  # magenta
    cmyk.paste((0, 0, 0, 255), (16, 16, 32, 32))  # black
    data = _encode(cmyk, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == "CMYK"
        assert "adobe" in decoded.info  # PIL writes Adobe (inverted) CMYK
    result = load_image(data)
    expected = {(4, 4): (255, 255, 255), (4, 28): (0, 255, 255), (28, 4): (255, 0, 255)}
    for (y, x), colour in expected.items():
        assert np.abs(result[y, x].astype(int) - colour).max() <= 8, (y, x, result[y, x])
    assert result[28, 28].max() <= 8


# ---------------------------------------------------------------------------------------------
# EXIF orientation
# ---------------------------------------------------------------------------------------------

# How the *stored* image is made from the upright one for each EXIF orientation: the inverse of
# the turn a viewer applies to display it.
_STORE_AS: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # stored turned 90 degrees anticlockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,  # stored turned 90 degrees clockwise
}


def _stored(upright: np.ndarray, orientation: int) -> Image.Image:
    image = Image.fromarray(upright)
    method = _STORE_AS[orientation]
    return image if method is None else image.transpose(method)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png_exact(orientation: int) -> None:
    upright = _random_rgb(24, 40, seed=orientation)
    data = _encode(_stored(upright, orientation), "PNG", exif=_exif(orientation))
    if orientation != 1:  # stored differently from what is displayed
        assert not np.array_equal(np.asarray(Image.open(io.BytesIO(data))), upright)
    np.testing.assert_array_equal(load_image(data), upright)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg(orientation: int) -> None:
    upright = _blocks()
    stored = _stored(upright, orientation)
    data = _encode(stored, "JPEG", quality=95, subsampling=0, exif=_exif(orientation))
    result = load_image(data)
    _assert_rgb(result, upright.shape[:2])
    assert _mean_abs_diff(result, upright) < 3.0
    with Image.open(io.BytesIO(data)) as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference).convert("RGB"))
    np.testing.assert_array_equal(result, expected)


def test_exif_orientation_tiff_is_applied_once() -> None:
    upright = _random_rgb(24, 40, seed=21)
    data = _encode(_stored(upright, 6), "TIFF", tiffinfo={0x0112: 6})
    np.testing.assert_array_equal(load_image(data), upright)


def test_pil_image_source_is_oriented_but_not_twice() -> None:
    upright = _random_rgb(24, 40, seed=22)
    data = _encode(_stored(upright, 8), "JPEG", quality=100, subsampling=0, exif=_exif(8))
    with Image.open(io.BytesIO(data)) as opened:
        from_pil = load_image(opened)
        already_upright = ImageOps.exif_transpose(opened)
    assert from_pil.shape[:2] == (24, 40)
    np.testing.assert_array_equal(load_image(already_upright), from_pil)
    np.testing.assert_array_equal(load_image(data), from_pil)


def test_invalid_exif_orientation_is_ignored() -> None:
    upright = _random_rgb(seed=23)
    data = _encode(upright, "PNG", exif=_exif(9))
    np.testing.assert_array_equal(load_image(data), upright)


# ---------------------------------------------------------------------------------------------
# Not images, unsupported images, corrupt images
# ---------------------------------------------------------------------------------------------


def test_empty_bytes_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(UndecodableImageError, match="empty"):
        load_image(b"")
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(UndecodableImageError, match="empty"):
        load_image(path)


def test_truncated_jpeg_is_undecodable() -> None:
    data = _encode(_random_rgb(64, 64), "JPEG", quality=90)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(UndecodableImageError, match="JPEG"):
        load_image(data[: len(data) // 2])


def test_truncated_png_is_undecodable() -> None:
    data = _encode(_random_rgb(64, 64), "PNG")
    with pytest.raises(UndecodableImageError, match="PNG"):
        load_image(data[: len(data) // 2])


def test_png_signature_followed_by_garbage_is_undecodable() -> None:
    with pytest.raises(UndecodableImageError, match="PNG"):
        load_image(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)


def test_text_file_is_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("Hello, this is a plain text file.\nIt has two lines, and é.\n")
    with pytest.raises(UndecodableImageError, match="not an image: content looks like text"):
        load_image(path)


def test_html_named_jpg_is_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>")
    with pytest.raises(UndecodableImageError, match="looks like HTML"):
        load_image(path)


def test_random_bytes_are_undecodable() -> None:
    data = np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert sniff_format(data) is None
    with pytest.raises(UndecodableImageError, match="not an image"):
        load_image(data)


_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
_AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64)
_SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect/></svg>\n'
)


def _ico() -> bytes:
    return _encode(Image.new("RGB", (32, 32), (1, 2, 3)), "ICO", sizes=[(32, 32)])


@pytest.mark.parametrize(
    ("data", "name", "label"),
    [
        (_HEIC, "heic", "HEIC"),
        (_AVIF, "avif", "AVIF"),
        (_SVG, "svg", "SVG"),
        (b"8BPS\x00\x01" + bytes(40), "psd", "PSD"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pdf", "PDF"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(20), "jxl", "JPEG XL"),
        (None, "ico", "ICO"),
    ],
)
def test_recognised_but_unsupported_formats(data: bytes | None, name: str, label: str) -> None:
    data = _ico() if data is None else data
    assert sniff_format(data) == name
    assert name not in SUPPORTED_FORMATS
    with pytest.raises(UnsupportedImageError, match=label):
        load_image(data)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(32), "video"),
        (b"PK\x03\x04" + bytes(40), "ZIP"),
        (b'<?xml version="1.0"?><root><item/></root>', "XML"),
        (b'{"error": "not found"}', "text"),
    ],
)
def test_other_non_images_are_described(data: bytes, words: str) -> None:
    assert sniff_format(data) is None
    with pytest.raises(UndecodableImageError, match=words):
        load_image(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0" + bytes(20), "jpeg"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a" + bytes(20), "gif"),
        (b"GIF87a" + bytes(20), "gif"),
        (b"II*\x00" + bytes(20), "tiff"),
        (b"MM\x00*" + bytes(20), "tiff"),
        (b"BM" + bytes(12) + struct.pack("<I", 40) + bytes(20), "bmp"),
        (b"BMW, the car maker, is not a bitmap header", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"<html><body><svg></svg></body></html>", None),
        (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "svg"),
        (b"", None),
        (b"\xff", None),
    ],
)
def test_sniff_format(data: bytes, expected: str | None) -> None:
    assert sniff_format(data) == expected
    assert sniff_format(bytearray(data)) == expected
    assert sniff_format(memoryview(data)) == expected


def test_missing_path_is_file_not_found_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_photo.jpg"
    with pytest.raises(FileNotFoundError, match="no_such_photo.jpg") as info:
        load_image(missing)
    assert not isinstance(info.value, ImageError)
    assert info.value.filename == str(missing)


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------


def _bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A ~100-byte PNG whose header claims ``width x height`` RGB pixels."""
    scanlines = b"\x00" + bytes(64)  # far fewer bytes than the header promises
    return _handmade_png(width, height, 8, 2, scanlines)


@contextmanager
def no_decoding() -> Iterator[None]:
    """Any pixel decoding (or, for files, reading) in the block fails the test: the refusal must
    come first. (These tests used to time the refusal, < 0.5 s; what makes it fast is that
    nothing is decoded or read, which is checked here without a clock.)"""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were decoded (or the file read) before the limit check")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Image.Image, "load", refuse)
        mp.setattr(ImageFile.ImageFile, "load", refuse)
        mp.setattr("facecore.io._read_capped", refuse)
        yield


def test_pixel_bomb_png_is_refused_from_the_header_without_decoding() -> None:
    data = _bomb_png()
    assert len(data) < 1024
    with no_decoding(), pytest.raises(ImageTooLargeError) as info:
        load_image(data)
    message = str(info.value)
    assert "40000x40000" in message
    assert "1600000000" in message
    assert "40000000" in message


def test_pixel_bomb_jpeg_is_refused_from_the_header() -> None:
    data = bytearray(_encode(_random_rgb(32, 32), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 60_000, 50_000)  # height, width
    with no_decoding(), pytest.raises(ImageTooLargeError, match="50000x60000"):
        load_image(bytes(data))


def test_pil_bomb_check_does_not_fire_within_our_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make PIL's global limit tiny: an image within facecore's limits must still load, without
    # PIL's DecompressionBombWarning (turned into an error here) or DecompressionBombError.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    expected = _random_rgb(32, 40)
    data = _encode(expected, "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_image(data), expected)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_custom_pixel_limit_on_a_real_image() -> None:
    data = _encode(_random_rgb(20, 30), "PNG")
    with pytest.raises(ImageTooLargeError, match="30x20 = 600 pixels, over the limit of 599"):
        load_image(data, limits=ImageLimits(max_pixels=599))
    assert load_image(data, limits=ImageLimits(max_pixels=600)).shape == (20, 30, 3)


def test_min_side() -> None:
    with pytest.raises(ImageTooSmallError, match="below the minimum of 16"):
        load_image(_encode(_random_rgb(15, 40), "PNG"))
    assert load_image(_encode(_random_rgb(16, 16), "PNG")).shape == (16, 16, 3)
    with pytest.raises(ImageTooSmallError, match="minimum of 20"):
        load_image(_random_rgb(16, 40), limits=ImageLimits(min_side=20))


def test_byte_limit_on_bytes_and_path(tmp_path: Path) -> None:
    data = _encode(_random_rgb(), "PNG")
    limits = ImageLimits(max_bytes=len(data) - 1)
    expected = f"input is {len(data)} bytes, over the limit of {len(data) - 1}"
    with pytest.raises(ImageTooLargeError, match=expected):
        load_image(data, limits=limits)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLargeError, match=expected):
        load_image(path, limits=limits)
    with pytest.raises(ImageTooLargeError, match=expected):
        load_image(io.BytesIO(data), limits=limits)
    assert load_image(data, limits=ImageLimits(max_bytes=len(data))).shape == (24, 40, 3)


def test_huge_sparse_file_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0")
        handle.truncate(2**30)  # sparse: takes no disk space
    with no_decoding(), pytest.raises(ImageTooLargeError, match="input is 1073741824 bytes"):
        load_image(path)


def test_lazy_pil_image_is_checked_before_it_is_decoded() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        lazy = Image.open(io.BytesIO(_bomb_png(12_000, 10_000)))
    with no_decoding(), pytest.raises(ImageTooLargeError, match="12000x10000 = 120000000 pixels"):
        load_image(lazy)


class _EndlessStream:
    """A non-seekable stream that never ends and counts what was read from it."""

    def __init__(self) -> None:
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("load_image tried to read an endless stream whole")
        self.bytes_read += size
        return b"\xff" * size


def test_stream_is_never_read_past_the_byte_limit() -> None:
    stream = _EndlessStream()
    with pytest.raises(ImageTooLargeError, match="more than 1000 bytes, over the limit of 1000"):
        load_image(stream, limits=ImageLimits(max_bytes=1000))
    assert stream.bytes_read <= 1001


def test_image_limits_validation() -> None:
    limits = ImageLimits()
    assert (limits.max_bytes, limits.max_pixels, limits.min_side) == (20 * 2**20, 40_000_000, 16)
    with pytest.raises(FrozenInstanceError):
        limits.max_pixels = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_bytes"):
        ImageLimits(max_bytes=0)
    with pytest.raises(TypeError, match="min_side"):
        ImageLimits(min_side=16.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Threads and global state
# ---------------------------------------------------------------------------------------------


def test_concurrent_loads_match_sequential_loads() -> None:
    images = [_random_rgb(48, 64, seed=s) for s in range(6)]
    sources = [_encode(image, "PNG") for image in images[:3]]
    sources += [_encode(image, "JPEG", quality=90) for image in images[3:]]
    expected = [load_image(data) for data in sources]
    sources.append(_bomb_png())
    pil_limit = Image.MAX_IMAGE_PIXELS

    def load(data: bytes) -> np.ndarray | str:
        try:
            return load_image(data)
        except ImageTooLargeError:
            return "too large"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(load, sources * 3))
    for index, got in enumerate(results):
        if index % len(sources) == len(sources) - 1:
            assert got == "too large"
        else:
            assert isinstance(got, np.ndarray)
            np.testing.assert_array_equal(got, expected[index % len(sources)])
    assert pil_limit == Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------------------------------------
# Conversion a strip at a time (no full-size intermediate copy)
# ---------------------------------------------------------------------------------------------


def _whole_image_reference(data: bytes) -> np.ndarray:
    """What a whole-image conversion gives: exif_transpose, then RGB (alpha over white)."""
    with Image.open(io.BytesIO(data)) as opened:
        upright = ImageOps.exif_transpose(opened)
        if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
            rgba = np.asarray(upright.convert("RGBA")).astype(np.uint16)
            alpha = rgba[:, :, 3:4]
            return ((rgba[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        return np.asarray(upright.convert("RGB"))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["jpeg", "png_rgba", "png_palette_trns", "png_grey16"])
def test_strips_give_the_whole_image_conversion(
    kind: str, orientation: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 7 stored rows per strip for a 40-pixel-wide image: 24 rows make 4 strips, the last short.
    monkeypatch.setattr("facecore.io._STRIP_PIXELS", 7 * 40)
    upright = _random_rgb(24, 40, seed=orientation)
    stored = _stored(upright, orientation)
    if kind == "jpeg":
        data = _encode(stored, "JPEG", quality=90, exif=_exif(orientation))
    elif kind == "png_rgba":
        rgba = np.dstack([np.asarray(stored), np.asarray(stored)[:, :, 0]])
        data = _encode(Image.fromarray(rgba, "RGBA"), "PNG", exif=_exif(orientation))
    elif kind == "png_palette_trns":
        palette = stored.quantize(16)
        data = _encode(palette, "PNG", transparency=3, exif=_exif(orientation))
    else:
        grey = (np.asarray(stored.convert("L")).astype(np.uint16) * 257).astype(np.uint16)
        data = _encode(Image.fromarray(grey), "PNG", exif=_exif(orientation))
        expected = np.repeat(np.asarray(_stored_upright_grey(data))[:, :, None], 3, axis=2)
        np.testing.assert_array_equal(load_image(data), expected)
        return
    result = load_image(data)
    assert result.shape[:2] == (24, 40)
    np.testing.assert_array_equal(result, _whole_image_reference(data))


def _stored_upright_grey(data: bytes) -> np.ndarray:
    """A 16-bit grey PNG turned upright, high byte kept."""
    with Image.open(io.BytesIO(data)) as opened:
        upright = ImageOps.exif_transpose(opened)
        return (np.asarray(upright).astype(np.uint16) >> 8).astype(np.uint8)


def test_a_large_photo_is_converted_without_a_second_full_size_copy() -> None:
    """Python-side allocations while loading a 12 Mpx JPEG: the output array (34.6 MB) and the
    strip temporaries (about 6 MB measured), not a second full-size array (the conversion
    through ``numpy.array`` peaked at 65.5 MiB for the 11 Mpx photo: two copies)."""
    import tracemalloc

    data = _encode(np.zeros((3000, 4000, 3), np.uint8), "JPEG", quality=90)
    tracemalloc.start()
    try:
        image = load_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.shape == (3000, 4000, 3)
    assert image.nbytes <= peak < image.nbytes + 12 * 2**20


# -- load_image_reduced: a large JPEG decoded at a reduced scale, the full image meanwhile ------


def _large_jpeg(orientation: int = 1) -> tuple[bytes, np.ndarray]:
    """A smooth 1200x900 upright picture stored for ``orientation``, JPEG q 95."""
    return _large_jpeg_sized(1200, 900, orientation)


def _large_jpeg_sized(width: int, height: int, orientation: int = 1) -> tuple[bytes, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width]
    upright = np.stack(
        [
            xx * 255 // (width - 1),
            yy * 255 // (height - 1),
            (xx + yy) * 255 // (width + height - 2),
        ],
        axis=2,
    )
    upright = upright.astype(np.uint8)
    stored = _stored(upright, orientation)
    return _encode(stored, "JPEG", quality=95, exif=_exif(orientation)), upright


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_large_jpeg_is_decoded_reduced_and_whole(orientation: int) -> None:
    """Decoded at the smallest DCT scale that keeps the longer side asked for (1/4 for 300,
    1/2 for 400), upright; the full image in the background, exactly what load_image gives."""
    data, upright = _large_jpeg(orientation)
    loaded = load_image_reduced(data, 300)
    assert isinstance(loaded, ReducedLoad)
    assert loaded.shape == (900, 1200)
    assert loaded.reduced.shape == (225, 300, 3)  # 1/4: the longer side is exactly 300
    full = loaded.full.result(timeout=30)
    np.testing.assert_array_equal(full, load_image(data))
    assert _mean_abs_diff(full, upright) < 2.0
    assert _mean_abs_diff(loaded.reduced, upright[2::4, 2::4]) < 3.0  # the same picture, upright
    assert load_image_reduced(data, 400).reduced.shape == (450, 600, 3)  # 1/2


def test_a_large_jpeg_copy_that_fits_is_kept_when_it_keeps_the_share() -> None:
    """``min_share``: the 1/4 copy of the 1200 px picture (300 px) has 56% of the pixels of a
    400-px copy and 36% of a 500-px one; below the share, the smallest copy still at least
    the size asked for (1/2, for the caller to resize)."""
    data, upright = _large_jpeg()
    fit = load_image_reduced(data, 400, min_share=0.5)
    assert fit.reduced.shape == (225, 300, 3)
    np.testing.assert_array_equal(fit.full.result(timeout=30), load_image(data))
    assert load_image_reduced(data, 400, min_share=0.6).reduced.shape == (450, 600, 3)
    assert load_image_reduced(data, 500, min_share=0.5).reduced.shape == (450, 600, 3)
    odd, _ = _large_jpeg_sized(1201, 900)  # 1/4 is 301 px: no copy fits 300 but 1/8 (151)
    assert load_image_reduced(odd, 300, min_share=0.5).reduced.shape == (225, 301, 3)


def test_small_images_and_other_sources_load_as_load_image() -> None:
    data, _ = _large_jpeg()
    for source, side in [(data, 601), (_encode(_random_rgb(900, 1200), "PNG"), 300)]:
        got = load_image_reduced(source, side)
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, load_image(source))
    array = _random_rgb(900, 1200)
    np.testing.assert_array_equal(load_image_reduced(array, 300), array)


def test_a_large_jpeg_keeps_the_limits_and_the_errors() -> None:
    data, _ = _large_jpeg()
    with pytest.raises(ImageTooLargeError, match="over the limit of 1000000"):
        load_image_reduced(data, 300, limits=ImageLimits(max_pixels=1_000_000))
    with pytest.raises(ImageTooLargeError, match="bytes, over the limit"):
        load_image_reduced(data, 300, limits=ImageLimits(max_bytes=1000))
    truncated = data[: len(data) // 2]
    with pytest.raises(UndecodableImageError, match="truncated or corrupt JPEG"):
        loaded = load_image_reduced(truncated, 300)
        loaded.full.result(timeout=30)
    with pytest.raises(UndecodableImageError):
        load_image_reduced(b"\xff\xd8\xff garbage", 300)
