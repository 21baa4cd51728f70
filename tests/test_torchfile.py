"""Model files: written atomically, the same bytes for the same document, read back or refused."""

from __future__ import annotations

import hashlib

import pytest
import torch

from facecore.errors import ModelCorruptError
from facecore.torchfile import load_doc, save_doc


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_document_gives_the_same_file_bytes(tmp_path):
    doc = {"format": "demo/1", "weights": {"w": torch.arange(6, dtype=torch.float16)}}
    (tmp_path / "a").mkdir()
    a = save_doc(doc, tmp_path / "a" / "model.pt")
    b = save_doc(doc, tmp_path / "model.pt")
    assert _sha(a) == _sha(b)  # the temporary file's random name is not in the archive
    assert not list(tmp_path.glob(".*.tmp*"))
    back = load_doc(b, "demo/1", "demo model")
    assert torch.equal(back["weights"]["w"], doc["weights"]["w"])


def test_another_format_or_a_broken_file_is_refused(tmp_path):
    path = save_doc({"format": "demo/1"}, tmp_path / "model.pt")
    with pytest.raises(ModelCorruptError):
        load_doc(path, "other/1", "demo model")
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelCorruptError):
        load_doc(path, "demo/1", "demo model")
