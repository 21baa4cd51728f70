"""No image is written to disk or to a log: after requests with a large image (multipart, which
Starlette would spool to a temporary file past 1 MiB, and base64), no new file exists in the temp
folder or the working directory, and the image's bytes appear in no log record or output."""

import base64
import contextlib
import logging
import os
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app


def _files(*roots):
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "__pycache__")]
            for f in filenames:
                p = Path(dirpath) / f
                with contextlib.suppress(OSError):
                    out[p] = p.stat().st_mtime_ns
    return out


def test_no_image_on_disk_or_in_logs(
    settings, fake_analyzer, make_png, caplog, capfd, monkeypatch, tmp_path
):
    data = make_png(700, 700)  # ~1.4 MiB: over the multipart spool threshold
    assert len(data) > 1024 * 1024
    marker = data[1000:1064]  # 64 bytes of noise from inside the image
    b64 = base64.b64encode(data).decode()
    spooled = []
    real = tempfile.SpooledTemporaryFile.rollover

    def rollover(self):
        spooled.append(self)
        return real(self)

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", rollover)
    # This process's temporary folder is a private one, so that files other processes write
    # to the machine's /tmp meanwhile are not taken for the service's.
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))
    tmp, cwd = Path(tempfile.gettempdir()), Path.cwd()
    assert tmp == private
    before = _files(tmp, cwd)
    with caplog.at_level(logging.DEBUG):
        app = create_app(settings, analyzer=fake_analyzer)
        with TestClient(app) as c:
            assert c.post("/v1/faces", files={"file": ("x.png", data)}).status_code == 200
            assert (
                c.post(
                    "/v1/analyze",
                    files=[("files", ("x.png", data)), ("files", ("y.png", data[:99]))],
                ).status_code
                == 200
            )
            assert c.post("/v1/faces", json={"image_base64": b64}).status_code == 200
            bad = data[:-5000]  # truncated: an error path too
            assert c.post("/v1/faces", files={"file": ("x.png", bad)}).status_code == 422
    after = _files(tmp, cwd)
    new = {p for p in after if p not in before or after[p] != before[p]}
    assert not new, sorted(new)[:10]
    assert spooled == []  # no upload ever rolled over to a file
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records) + out + err
    assert caplog.records  # something was logged (the access lines) ...
    for needle in (marker.hex(), repr(marker)[2:40], b64[2000:2064]):
        assert needle not in logged  # ... but no part of the image


def test_the_spool_check_can_fail(settings, fake_analyzer, make_png, monkeypatch):
    """Without :func:`app.core.limits.keep_uploads_in_memory` Starlette writes the same upload to
    a temporary file (so the check above would see it)."""
    from starlette.formparsers import MultiPartParser

    spooled = []
    real = tempfile.SpooledTemporaryFile.rollover
    monkeypatch.setattr(
        tempfile.SpooledTemporaryFile, "rollover", lambda self: spooled.append(1) or real(self)
    )
    app = create_app(settings, analyzer=fake_analyzer)
    monkeypatch.setattr(MultiPartParser, "spool_max_size", 1024 * 1024)  # Starlette's default
    with TestClient(app) as c:
        assert c.post("/v1/faces", files={"file": ("x.png", make_png(700, 700))}).status_code == 200
    assert spooled == [1]
