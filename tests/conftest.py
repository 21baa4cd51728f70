"""Shared test fixtures: photo paths, the shared data folder, one loaded analyzer per session."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is not available (needs ../shared/data)")
    return p


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def one_face_photo() -> Path:
    return FIXTURES / "obama.jpg"


@pytest.fixture(scope="session")
def two_face_photo() -> Path:
    return FIXTURES / "two_people.jpg"


@pytest.fixture(scope="session")
def no_face_photo() -> Path:
    return FIXTURES / "dlib_dog.jpg"


@pytest.fixture(scope="session")
def png_bomb() -> bytes:
    """A ~100-byte valid PNG whose header claims 40000 x 40000 RGB pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def analyzer():
    """A fully loaded default analyzer, shared by the whole session."""
    from facecore.analyzer import FaceAnalyzer

    return FaceAnalyzer().load()
