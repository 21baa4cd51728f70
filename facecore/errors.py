"""Typed errors raised by facecore.

Every error a user can cause by giving bad input derives from :class:`FacecoreError` and carries a
short machine-readable ``code`` (used verbatim in the HTTP API's ``{"error": {"code": ...}}`` body
and mapped to an HTTP status there) and a message that says what was wrong.
"""

from __future__ import annotations

__all__ = [
    "FacecoreError",
    "ImageError",
    "UndecodableImageError",
    "UnsupportedImageError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "ModelFileError",
    "ModelNotFoundError",
    "ModelCorruptError",
    "UnknownModelError",
    "UnknownStageError",
]


class FacecoreError(Exception):
    """Base class of all facecore errors."""

    code: str = "facecore_error"


class ImageError(FacecoreError, ValueError):
    """The input could not be turned into an RGB image."""

    code = "bad_image"


class UndecodableImageError(ImageError):
    """The bytes are empty, truncated or not an image at all."""

    code = "undecodable_image"


class UnsupportedImageError(ImageError):
    """The bytes are an image, but in a format or layout facecore does not read."""

    code = "unsupported_image"


class ImageTooLargeError(ImageError):
    """The input exceeds the configured byte or pixel limit (checked before full decoding)."""

    code = "image_too_large"


class ImageTooSmallError(ImageError):
    """The image is smaller than the minimum side length."""

    code = "image_too_small"


class ModelFileError(FacecoreError, RuntimeError):
    """A model file needed by a stage cannot be used."""

    code = "model_file_error"


class ModelNotFoundError(ModelFileError):
    """A model file is missing, or its name is not in the manifest."""

    code = "model_not_found"


class ModelCorruptError(ModelFileError):
    """A model file exists but its sha256 does not match the manifest."""

    code = "model_corrupt"


class UnknownModelError(FacecoreError, ValueError):
    """A model asked for by name (an option, ``--model``, ``?model=``) is not one the stage can
    use: not in the manifest, or made for another task. A usage error, not a broken install."""

    code = "unknown_model"


class UnknownStageError(FacecoreError, ValueError):
    """A stage asked for by name (``stages=``, ``--stages``, ``?stages=``) is not registered."""

    code = "unknown_stage"
