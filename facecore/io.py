"""Turn whatever a caller hands us into one kind of image: an RGB ``uint8`` array.

This is the first stage of the pipeline (bytes -> image -> faces -> ...); every other stage
takes the array :func:`load_image` returns and nothing else re-decodes the input.

Conventions
-----------
* **Output.** Always a new ``(H, W, 3)`` ``uint8`` array, RGB channel order, C-contiguous and
  writable; it never shares memory with the input. Rows run top to bottom as the image is
  meant to be *displayed*: the EXIF ``Orientation`` tag (all eight values) has been applied.
* **Format by content.** The format is sniffed from the first bytes (:func:`sniff_format`),
  never from a file name or extension, so a PNG named ``photo.jpg`` loads as the PNG it is.
  Read: JPEG (including CMYK and Adobe inverted CMYK), PNG (8/16-bit, grey, palette, alpha),
  WebP, BMP, TIFF and GIF. Only the first frame of an animated GIF, PNG or WebP, or of a
  multi-page TIFF, is read.
* **Colour.** Greyscale, bilevel, palette, CMYK and YCbCr are converted to RGB. 16-bit samples
  keep their high byte (``v >> 8``), as PIL does for 16-bit colour PNGs. Anything with an alpha
  channel or a transparent colour (RGBA, LA, PA, palette or grey with ``tRNS``) is composited
  over a **white** background, the usual "paper" a viewer shows, so transparent pixels never
  turn into black, face-like blobs. No colour management: ICC profiles are ignored.
* **Limits before decoding** (:class:`ImageLimits`). The raw input size is checked before it is
  read whole (at most ``max_bytes + 1`` bytes are read from a file or stream); width and height
  are read from the header and checked before any pixel is decoded, so a small file that claims
  a huge image (a "decompression bomb") is refused in milliseconds.
* **Errors.** Bad *input* raises a subclass of :class:`facecore.errors.ImageError` whose message
  says what was wrong:

  - :class:`~facecore.errors.UndecodableImageError`: empty, truncated, corrupt, or not an image
    at all (text, HTML, random bytes);
  - :class:`~facecore.errors.UnsupportedImageError`: an image, but in a format facecore does not
    read (HEIC, AVIF, SVG, ICO, PSD, PDF, ...) or an array/PIL layout it cannot convert;
  - :class:`~facecore.errors.ImageTooLargeError` / :class:`~facecore.errors.ImageTooSmallError`.

  A misuse of the API raises a built-in exception instead: an unsupported *type* of ``source``
  raises :class:`TypeError`; a path that does not exist raises :class:`FileNotFoundError` (not an
  :class:`~facecore.errors.ImageError`, so that a caller such as the CLI can report a wrong path
  differently from a bad file); other failures to open a path (a directory, no permission)
  propagate as the :class:`OSError` Python raises.

Thread safety: :func:`load_image` may be called from several threads at once. It never changes
PIL's global settings (``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``, warning
filters). PIL's own decompression-bomb check lives in ``Image.open``; facecore does not go
through ``Image.open`` but opens the already-sniffed format's PIL plugin class directly and
applies its own, configurable pixel limit instead, so PIL's check cannot fire first for an image
that is within facecore's limits.
"""

from __future__ import annotations

import errno
import io
import logging
import math
import os
import re
import struct
import threading
import zlib
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from facecore.errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    UndecodableImageError,
    UnsupportedImageError,
)

__all__ = [
    "ImageLimits",
    "ReducedLoad",
    "SUPPORTED_FORMATS",
    "load_image",
    "load_image_reduced",
    "sniff_format",
]

logger = logging.getLogger(__name__)

#: Formats :func:`load_image` decodes, as named by :func:`sniff_format`.
SUPPORTED_FORMATS: Final[frozenset[str]] = frozenset({"jpeg", "png", "webp", "bmp", "tiff", "gif"})

# PIL plugin class per supported format. Constructing one reads the header only (PIL is lazy);
# pixels are decoded by ``.load()``. Unlike ``Image.open`` this performs no global-state-driven
# decompression-bomb check, which facecore replaces by ``ImageLimits.max_pixels``.
_OPENERS: Final[dict[str, type[ImageFile.ImageFile]]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "webp": WebPImagePlugin.WebPImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
    "tiff": TiffImagePlugin.TiffImageFile,
    "gif": GifImagePlugin.GifImageFile,
}

# Display names for messages: recognised formats, supported or not.
_FORMAT_LABELS: Final[dict[str, str]] = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WebP",
    "bmp": "BMP",
    "tiff": "TIFF",
    "gif": "GIF",
    "heic": "HEIC",
    "heif": "HEIF",
    "avif": "AVIF",
    "jxl": "JPEG XL",
    "jp2": "JPEG 2000",
    "ico": "ICO/CUR icon",
    "psd": "Photoshop PSD",
    "pdf": "PDF",
    "eps": "PostScript/EPS",
    "svg": "SVG",
    "exr": "OpenEXR",
    "dds": "DirectDraw Surface",
    "qoi": "QOI",
    "xcf": "GIMP XCF",
    "mng": "MNG",
    "pnm": "PNM/PPM/PGM",
}

_SNIFF_BYTES: Final = 4096

_HEIC_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm"})
_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_BMP_DIB_HEADER_SIZES: Final = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_PNM_RE: Final = re.compile(rb"P[1-7][ \t\r\n]")
_HTML_RE: Final = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]")


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Size limits that :func:`load_image` enforces before decoding pixels.

    Parameters
    ----------
    max_bytes : int
        Largest accepted encoded input, in bytes (default 20 MiB). Not applied to arrays and PIL
        images, which are already decoded.
    max_pixels : int
        Largest accepted ``width * height`` (default 40 000 000, e.g. 8000 x 5000).
    min_side : int
        Smallest accepted width and height, in pixels (default 16).

    Raises
    ------
    TypeError
        If a limit is not an ``int``.
    ValueError
        If a limit is not positive.
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 16

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "min_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"ImageLimits.{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"ImageLimits.{name} must be at least 1, got {value}")


_DEFAULT_LIMITS: Final = ImageLimits()


def load_image(source: Any, *, limits: ImageLimits | None = None) -> np.ndarray:
    """Load an image as an ``(H, W, 3)`` ``uint8`` RGB array.

    Parameters
    ----------
    source : str, os.PathLike, bytes, bytearray, memoryview, binary file object, \
numpy.ndarray or PIL.Image.Image
        Where the image comes from:

        * a path (``str`` or ``os.PathLike``) or a binary file object (anything with
          ``.read()``, read from its current position): encoded image data;
        * ``bytes`` / ``bytearray`` / ``memoryview``: encoded image data;
        * a ``numpy.ndarray`` of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or
          ``(H, W, 4)`` (RGBA), dtype ``uint8``, ``uint16`` (high byte kept), ``bool``
          (``True`` is white) or floating point with values in ``[0, 1]``;
        * a ``PIL.Image.Image``: treated like the file it was opened from, so its EXIF
          orientation is applied too (an image already passed through
          ``ImageOps.exif_transpose`` carries no orientation tag and is not turned twice).

        The format of encoded data is sniffed from its content, never from a file name.
    limits : ImageLimits, optional
        Size limits; ``ImageLimits()`` (20 MiB, 40 Mpx, 16 px) when omitted.

    Returns
    -------
    numpy.ndarray
        A new C-contiguous, writable ``(H, W, 3)`` ``uint8`` RGB array, EXIF orientation
        applied, transparency composited over white.

    Raises
    ------
    UndecodableImageError
        Empty, truncated or corrupt data, or data that is not an image.
    UnsupportedImageError
        An image format, array layout/dtype or PIL mode that facecore does not read.
    ImageTooLargeError
        Input over ``limits.max_bytes``, or image over ``limits.max_pixels``.
    ImageTooSmallError
        Width or height below ``limits.min_side``.
    FileNotFoundError
        ``source`` is a path that does not exist.
    TypeError
        ``source`` is of an unsupported type, a file object is opened in text mode, or
        ``limits`` is not an :class:`ImageLimits`.
    """
    if limits is None:
        limits = _DEFAULT_LIMITS
    elif not isinstance(limits, ImageLimits):
        raise TypeError(f"limits must be an ImageLimits, got {type(limits).__name__}")

    if isinstance(source, np.ndarray):
        return _load_array(source, limits)
    if isinstance(source, Image.Image):
        return _load_pil(source, limits, owned=False)
    return _decode(_read_encoded(source, limits), limits)


def _read_encoded(source: Any, limits: ImageLimits) -> bytes:
    """The encoded bytes of a path, buffer or binary file object, within ``limits.max_bytes``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _buffer_to_bytes(source, limits)
    if isinstance(source, (str, os.PathLike)):
        return _read_path(source, limits)
    if hasattr(source, "read"):
        return _read_capped(source, limits)
    raise TypeError(
        "load_image() expects a path, bytes, a binary file object, a numpy array or a "
        f"PIL image; got {type(source).__module__}.{type(source).__qualname__}"
    )


@dataclass(frozen=True, eq=False)
class ReducedLoad:
    """A large JPEG decoded twice: a reduced copy now, the full-resolution pixels meanwhile.

    Attributes
    ----------
    reduced : ndarray (h, w, 3) uint8
        Upright RGB, decoded with JPEG DCT scaling (``PIL.Image.draft``) at 1/2, 1/4 or 1/8
        (see :func:`load_image_reduced`).
    full : concurrent.futures.Future
        :func:`load_image` of the same bytes and limits, run in a background thread (decoders
        release the GIL, so it overlaps whatever the caller does with ``reduced``).
    shape : tuple of int
        ``(H, W)`` of the upright full-resolution image, known from the header.
    """

    reduced: np.ndarray
    full: Future[np.ndarray]
    shape: tuple[int, int]


def load_image_reduced(
    source: Any, longer_side: int, *, limits: ImageLimits | None = None, min_share: float = 1.0
) -> np.ndarray | ReducedLoad:
    """:func:`load_image`, or a :class:`ReducedLoad` for a JPEG at least twice ``longer_side``.

    For a detector that needs the image with its longer side at most ``longer_side`` pixels: a
    JPEG that large decodes much faster at a reduced scale, while the full-resolution pixels
    (which the landmarks and every head's crop read) decode in a background thread. Other
    sources and formats, and smaller JPEGs, load as :func:`load_image` loads them; errors and
    limits are those of :func:`load_image`.

    The reduced copy is the largest DCT scaling (1/2, 1/4 or 1/8) whose longer side fits
    ``longer_side``, so that it needs no resize, when it keeps at least ``min_share`` of the
    pixels of a copy at ``longer_side`` (0.5: a longer side of at least ``longer_side / 1.414``);
    otherwise the smallest scaling whose longer side is still at least ``longer_side`` (the
    caller resizes it). ``min_share=1`` always gives the latter.
    """
    if limits is None:
        limits = _DEFAULT_LIMITS
    if isinstance(source, (np.ndarray, Image.Image)) or not isinstance(limits, ImageLimits):
        return load_image(source, limits=limits)
    data = _read_encoded(source, limits)
    image, label = _open(data)
    with image:
        width, height = image.size
        if label != "JPEG" or max(width, height) < 2 * longer_side:
            return _load_pil(image, limits, owned=True, label=label)
        _check_size(width, height, limits)
        method = _orientation(image)
        divisor = _dct_divisor(max(width, height), longer_side, min_share)
        image.draft("RGB", (max(1, width // divisor), max(1, height // divisor)))
        try:
            image.load()
        except (SyntaxError, OSError, ValueError, EOFError, struct.error) as exc:
            raise UndecodableImageError(f"truncated or corrupt JPEG image: {exc}") from exc
        reduced = _pil_to_rgb(image if method is None else image.transpose(method), "JPEG")
    shape = (width, height) if method in _SWAPS_AXES else (height, width)
    # The reduced copy first, then the full image in the background: on a busy machine the
    # detector's input is not slowed by the decode it does not need.
    full: Future[np.ndarray] = Future()

    def decode_full() -> None:
        try:
            full.set_result(_decode(data, limits))
        except BaseException as exc:  # re-raised by full.result()
            full.set_exception(exc)

    threading.Thread(target=decode_full, name="facecore-decode", daemon=True).start()
    return ReducedLoad(reduced, full, shape)


def _dct_divisor(longer: int, target: int, min_share: float) -> int:
    """The JPEG DCT scaling divisor (2, 4 or 8) of :func:`load_image_reduced`'s reduced copy
    of an image whose longer side is ``longer`` (at least ``2 * target``)."""
    fits = [d for d in (2, 4, 8) if math.ceil(longer / d) <= target]
    if fits and (math.ceil(longer / fits[0]) / target) ** 2 >= min_share:
        return fits[0]
    return max(d for d in (2, 4, 8) if longer // d >= target)


def sniff_format(data: bytes | bytearray | memoryview) -> str | None:
    """Name the image format of encoded data from its first bytes.

    Parameters
    ----------
    data : bytes-like
        The start of the encoded data (the first 4 KiB suffice; more is ignored).

    Returns
    -------
    str or None
        One of ``"jpeg"``, ``"png"``, ``"webp"``, ``"bmp"``, ``"tiff"``, ``"gif"``
        (:data:`SUPPORTED_FORMATS`); or the name of a recognised image-like format that
        :func:`load_image` refuses: ``"heic"``, ``"heif"``, ``"avif"``, ``"jxl"``, ``"jp2"``,
        ``"ico"``, ``"psd"``, ``"pdf"``, ``"eps"``, ``"svg"``, ``"exr"``, ``"dds"``, ``"qoi"``,
        ``"xcf"``, ``"mng"``, ``"pnm"``; or ``None`` when the data is not recognised as an
        image (including empty data, text, HTML and generic XML).
    """
    raw = data if isinstance(data, bytes) else memoryview(data).tobytes()
    head = raw[:_SNIFF_BYTES]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 18:
        (dib_header_size,) = struct.unpack_from("<I", head, 14)
        if dib_header_size in _BMP_DIB_HEADER_SIZES:
            return "bmp"
    if head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "jp2"
    if _looks_like_ico(head):
        return "ico"
    if head.startswith(b"8BPS") and head[4:6] in (b"\x00\x01", b"\x00\x02"):
        return "psd"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "eps"
    if head.startswith(b"v/1\x01"):
        return "exr"
    if head.startswith(b"DDS "):
        return "dds"
    if head.startswith(b"qoif"):
        return "qoi"
    if head.startswith(b"gimp xcf"):
        return "xcf"
    if head.startswith(b"\x8aMNG\r\n\x1a\n"):
        return "mng"
    if _PNM_RE.match(head):
        return "pnm"
    text = _markup_head(head)
    if text is not None and not _HTML_RE.search(text) and "<svg" in text:
        return "svg"
    return None


# --------------------------------------------------------------------------------------------
# Reading raw bytes under the byte limit
# --------------------------------------------------------------------------------------------


def _too_many_bytes(size: int | str, limits: ImageLimits) -> ImageTooLargeError:
    return ImageTooLargeError(f"input is {size} bytes, over the limit of {limits.max_bytes}")


def _buffer_to_bytes(source: bytes | bytearray | memoryview, limits: ImageLimits) -> bytes:
    view = memoryview(source)
    if view.nbytes > limits.max_bytes:
        raise _too_many_bytes(view.nbytes, limits)
    return source if isinstance(source, bytes) else view.tobytes()


def _read_path(source: str | os.PathLike[Any], limits: ImageLimits) -> bytes:
    path = os.fspath(source)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; the error is translated
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "image file not found", path) from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limits.max_bytes:  # a regular file: refuse without reading it
            raise _too_many_bytes(size, limits)
        # A pipe or a file that grows reports a wrong size; the capped read catches those.
        return _read_capped(handle, limits)


def _read_capped(stream: Any, limits: ImageLimits) -> bytes:
    """Read up to ``limits.max_bytes + 1`` bytes; raise if there were more than the limit."""
    cap = limits.max_bytes + 1
    chunks: list[bytes] = []
    total = 0
    while total < cap:
        chunk = stream.read(cap - total)
        if isinstance(chunk, str):
            raise TypeError("the file object returned str; open it in binary mode ('rb')")
        if not chunk:  # b"" at end of file; None from a non-blocking stream with no data
            break
        chunks.append(bytes(chunk))
        total += len(chunk)
    if total > limits.max_bytes:
        raise _too_many_bytes(_stream_size(stream, total), limits)
    return b"".join(chunks)


def _stream_size(stream: Any, already_read: int) -> str:
    """Total size of a stream for a message: exact when it can seek, else a lower bound."""
    try:
        if stream.seekable():
            position = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(position)
            return str(end - position + already_read)
    except (AttributeError, OSError, ValueError):
        pass
    return f"more than {already_read - 1}"


# --------------------------------------------------------------------------------------------
# Decoding encoded bytes
# --------------------------------------------------------------------------------------------


def _decode(data: bytes, limits: ImageLimits) -> np.ndarray:
    image, label = _open(data)
    with image:
        return _load_pil(image, limits, owned=True, label=label)


def _open(data: bytes) -> tuple[ImageFile.ImageFile, str]:
    """The sniffed format's PIL image of ``data`` (header read, no pixel decoded) and the
    format's label; raises the :class:`~facecore.errors.ImageError` that ``data`` deserves."""
    if not data:
        raise UndecodableImageError("input is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise UndecodableImageError(_describe_non_image(data))
    label = _FORMAT_LABELS[fmt]
    opener = _OPENERS.get(fmt)
    if opener is None:
        supported = ", ".join(_FORMAT_LABELS[f] for f in sorted(SUPPORTED_FORMATS))
        raise UnsupportedImageError(
            f"{label} images are not supported (detected from the content); "
            f"supported formats: {supported}"
        )
    try:
        return opener(io.BytesIO(data)), label
    except Image.DecompressionBombError as exc:  # only GIF frames outside the canvas do this
        raise ImageTooLargeError(f"{label} image is too large: {exc}") from exc
    except (SyntaxError, OSError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise UndecodableImageError(f"corrupt {label} header: {exc}") from exc


def _load_pil(
    image: Image.Image, limits: ImageLimits, *, owned: bool, label: str | None = None
) -> np.ndarray:
    """Check limits on the (lazy) header size, decode, convert to RGB and orient."""
    if label is None:
        label = image.format or "PIL"
    width, height = image.size
    _check_size(width, height, limits)
    _warn_if_truncated_images_allowed()
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{label} image is too large: {exc}") from exc
    except (SyntaxError, OSError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise UndecodableImageError(f"truncated or corrupt {label} image: {exc}") from exc
    logger.debug(
        "decoded %s %dx%d mode=%s (%s)",
        label,
        width,
        height,
        image.mode,
        "opened by facecore" if owned else "PIL image from caller",
    )
    return _upright_rgb(image, label)


def _check_size(width: int, height: int, limits: ImageLimits) -> None:
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {pixels} pixels, over the limit of {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        raise ImageTooSmallError(
            f"image is {width}x{height}; its shorter side is {min(width, height)} pixels, "
            f"below the minimum of {limits.min_side}"
        )


_truncated_warning_lock = threading.Lock()
_truncated_warning_given = False


def _warn_if_truncated_images_allowed() -> None:
    """Log once if other code enabled PIL's process-wide LOAD_TRUNCATED_IMAGES."""
    global _truncated_warning_given
    if ImageFile.LOAD_TRUNCATED_IMAGES and not _truncated_warning_given:
        with _truncated_warning_lock:
            if not _truncated_warning_given:
                _truncated_warning_given = True
                logger.warning(
                    "PIL.ImageFile.LOAD_TRUNCATED_IMAGES was set to True outside facecore; "
                    "truncated images will load with grey areas instead of being refused"
                )


#: The transposition that brings each EXIF ``Orientation`` value upright (as
#: ``PIL.ImageOps.exif_transpose`` maps them); 1 and invalid values need none.
_ORIENTATIONS: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Transpositions that turn rows into columns (the upright image is H x W of a W x H stored one).
_SWAPS_AXES: Final = frozenset(
    {
        Image.Transpose.TRANSPOSE,
        Image.Transpose.TRANSVERSE,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_270,
    }
)

# Transpositions that send the stored rows [top, bottom) to the far end of the upright image.
_REVERSES_ROWS: Final = frozenset(
    {
        Image.Transpose.ROTATE_180,
        Image.Transpose.FLIP_TOP_BOTTOM,
        Image.Transpose.ROTATE_270,
        Image.Transpose.TRANSVERSE,
    }
)

#: Pixels converted at a time (one strip of stored rows): the temporary copies of the
#: conversion stay this small, whatever the size of the image.
_STRIP_PIXELS: Final = 1 << 20


def _orientation(image: Image.Image) -> Image.Transpose | None:
    """The transposition the EXIF ``Orientation`` tag (0x0112) of ``image`` asks for.

    ``None`` for an absent, ``1`` or invalid tag, and for EXIF data that cannot be read:
    corrupt metadata never rejects the pixels. An image already passed through
    ``ImageOps.exif_transpose`` carries no tag, so it is not turned twice.
    """
    try:
        return _ORIENTATIONS.get(image.getexif().get(0x0112, 1))
    except Exception as exc:  # corrupt metadata of any kind
        logger.debug("ignoring unreadable EXIF data: %s", exc)
        return None


def _upright_rgb(image: Image.Image, label: str) -> np.ndarray:
    """A loaded PIL image in its display orientation as a new ``(H, W, 3)`` ``uint8`` array.

    The image is converted a strip of stored rows at a time, each strip turned by the EXIF
    orientation and written to its place in the output, so the only full-size buffers are the
    decoded image and the array returned: no turned, converted or ``tobytes`` copy of the whole
    image is made (``ImageOps.exif_transpose``, ``convert`` and ``numpy.array`` would each make
    one). Every conversion is per pixel, so the result is the one a whole-image conversion gives.
    ``image`` itself is left as it is.
    """
    method = _orientation(image)
    width, height = image.size
    if image.mode == "F":  # its [0, 1] check and message concern the whole image
        return np.ascontiguousarray(
            _pil_to_rgb(image if method is None else image.transpose(method), label)
        )
    shape = (width, height, 3) if method in _SWAPS_AXES else (height, width, 3)
    out = np.empty(shape, np.uint8)
    rows = max(1, _STRIP_PIXELS // max(1, width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        strip = image.crop((0, top, width, bottom))
        if method is not None:
            strip = strip.transpose(method)
        start, stop = (height - bottom, height - top) if method in _REVERSES_ROWS else (top, bottom)
        if method in _SWAPS_AXES:
            out[:, start:stop] = _pil_to_rgb(strip, label)
        else:
            out[start:stop] = _pil_to_rgb(strip, label)
    return out


def _pil_to_rgb(image: Image.Image, label: str) -> np.ndarray:
    """Convert a loaded PIL image of any mode to an ``(H, W, 3)`` ``uint8`` array (possibly
    read-only: the caller copies it into its output)."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey (``I`` holds 16-bit samples for PNG/TIFF): keep the high byte. PIL's own
        # convert("L") would clip at 255 instead of scaling.
        values = np.asarray(image)
        grey = (np.clip(values, 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)
        return _grey_to_rgb(grey)
    if mode == "F":
        grey = _float_to_uint8(np.asarray(image), f"{label} image of mode F")
        return _grey_to_rgb(grey)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        try:
            rgba = np.array(image.convert("RGBA"), dtype=np.uint8)
        except ValueError as exc:
            raise UnsupportedImageError(
                f"{label} image of mode {mode} with transparency cannot be converted: {exc}"
            ) from exc
        return _composite_over_white(rgba)
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    try:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except ValueError as exc:
        raise UnsupportedImageError(
            f"{label} image of mode {mode} cannot be converted to RGB: {exc}"
        ) from exc


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """Blend straight (non-premultiplied) RGBA ``uint8`` over white, rounding to nearest."""
    alpha = rgba[:, :, 3:4]
    if alpha.size == 0 or alpha.min() == 255:
        return np.ascontiguousarray(rgba[:, :, :3])
    # out = (c * a + 255 * (255 - a)) / 255, rounded. The numerator is at most 255 * 255 + 127,
    # so uint16 cannot overflow and needs half the memory of a float or uint32 intermediate.
    a16 = alpha.astype(np.uint16)
    blended = rgba[:, :, :3].astype(np.uint16) * a16
    blended += 255 * (255 - a16) + 127
    blended //= 255
    return blended.astype(np.uint8)


def _float_to_uint8(values: np.ndarray, what: str) -> np.ndarray:
    if values.size and not np.isfinite(values).all():
        raise UnsupportedImageError(f"{what} contains NaN or infinite values")
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise UnsupportedImageError(
            f"{what} has values in [{float(values.min()):g}, {float(values.max()):g}]; "
            "floating-point images must lie in [0, 1]"
        )
    return np.rint(values.astype(np.float32) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------------


def _load_array(array: np.ndarray, limits: ImageLimits) -> np.ndarray:
    what = f"array of shape {array.shape} and dtype {array.dtype}"
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise UnsupportedImageError(
            f"{what} is not an image; expected (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA"
        )
    height, width = array.shape[:2]
    _check_size(width, height, limits)

    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = (array >> 8).astype(np.uint8)
    elif array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * np.uint8(255)
    elif np.issubdtype(array.dtype, np.floating):
        pixels = _float_to_uint8(array, what)
    else:
        raise UnsupportedImageError(
            f"{what} has an unsupported dtype; use uint8, uint16, bool or float in [0, 1] "
            "(e.g. array.astype(numpy.uint8) for integer values in 0..255)"
        )

    channels = pixels.shape[2]
    if channels == 1:
        rgb = _grey_to_rgb(pixels[:, :, 0])
    elif channels == 4:
        rgb = _composite_over_white(pixels)
    else:
        rgb = pixels
    # Always return fresh memory: the caller's array must never alias the pipeline's.
    if np.may_share_memory(rgb, array):
        return np.array(rgb, dtype=np.uint8, order="C", copy=True)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# Sniffing helpers
# --------------------------------------------------------------------------------------------


def _sniff_iso_bmff(head: bytes) -> str | None:
    """HEIC/HEIF/AVIF from an ISO-BMFF ``ftyp`` box; ``None`` for video (mp4, mov, ...)."""
    (box_size,) = struct.unpack_from(">I", head, 0)
    box_end = min(max(box_size, 16), len(head))
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
    for brand_set, name in ((_AVIF_BRANDS, "avif"), (_HEIC_BRANDS, "heic")):
        if brands[0] in brand_set:
            return name
    for brand_set, name in ((_AVIF_BRANDS, "avif"), (_HEIC_BRANDS, "heic"), (_HEIF_BRANDS, "heif")):
        if any(brand in brand_set for brand in brands):
            return name
    return None


def _looks_like_ico(head: bytes) -> bool:
    """ICO/CUR: reserved 0, type 1 or 2, a plausible count and a first entry with reserved 0."""
    if len(head) < 22 or head[:2] != b"\x00\x00" or head[2:4] not in (b"\x01\x00", b"\x02\x00"):
        return False
    (count,) = struct.unpack_from("<H", head, 4)
    return 0 < count <= 256 and head[9] == 0


def _markup_head(head: bytes) -> str | None:
    """The lower-cased start of text that begins with ``<`` (after a BOM and whitespace)."""
    text = _as_text(head)
    if text is None:
        return None
    text = text.lstrip("\ufeff \t\r\n").lower()
    return text if text.startswith("<") else None


def _as_text(head: bytes) -> str | None:
    """Decode the start of the data as UTF-8/UTF-16 text, or ``None`` if it is not text."""
    head = head[:1024]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut off by the 1024-byte window is still text.
            if exc.start < len(head) - 3:
                return None
            text = head[: exc.start].decode("utf-8")
    if not text:
        return None
    printable = sum(ch.isprintable() or ch in "\t\n\r\f\v" for ch in text)
    return text if printable >= 0.95 * len(text) else None


def _describe_non_image(data: bytes) -> str:
    """Say, cheaply, what unrecognised data looks like (for the error message)."""
    head = data[:_SNIFF_BYTES]
    if head.startswith(b"PK\x03\x04"):
        return "not an image: content looks like a ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "not an image: content looks like gzip-compressed data"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1")
        return f"not an image: content looks like a video or other ISO media file (brand {brand!r})"
    markup = _markup_head(head)
    if markup is not None:
        # An XML document (e.g. an XSLT sheet) may contain <html> tags without being HTML.
        if markup.startswith("<?xml") and "<!doctype html" not in markup:
            return "not an image: content looks like XML"
        if _HTML_RE.search(markup):
            return "not an image: content looks like HTML"
    if _as_text(head) is not None:
        return "not an image: content looks like text"
    return f"not an image: unrecognised content starting with {head[:8].hex(' ')}"
