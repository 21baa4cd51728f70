"""facecore.atomic: a file is replaced whole or not at all."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from facecore.atomic import atomic_path


def test_writes_and_replaces(tmp_path) -> None:
    path = tmp_path / "sub" / "a.txt"
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp != path
        tmp.write_text("one")
    with atomic_path(path) as tmp:
        tmp.write_text("two")
    assert path.read_text() == "two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_numpy_keeps_the_temporary_name(tmp_path) -> None:
    # numpy.save / savez append their suffix to a name without it; the temporary has it.
    with atomic_path(tmp_path / "x.npy") as tmp:
        np.save(tmp, np.arange(3))
    with atomic_path(tmp_path / "y.npz") as tmp:
        np.savez(tmp, a=np.ones(2))
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2]
    assert np.load(tmp_path / "y.npz")["a"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npz"]
