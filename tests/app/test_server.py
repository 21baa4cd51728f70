"""A real uvicorn server in a subprocess: graceful shutdown on SIGTERM, a slow client cut off by
the body time limit, and the process workers with the real models under a corpus of bad inputs
sent to every route that takes an image."""

from __future__ import annotations

import base64
import io
import json
import signal
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
from PIL import Image
from servers import Server

pytestmark = pytest.mark.slow


def _png(w=96, h=64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 90, 60)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def slow_server(tmp_path):
    env = {"SLOW_DELAY": "2", "FACECORE_BODY_TIMEOUT_S": "1", "FACECORE_SHUTDOWN_TIMEOUT_S": "20"}
    s = Server("servers:slow_app", env, tmp_path / "server.log", factory=True)
    s.wait()
    yield s
    s.stop()


def test_sigterm_drains(slow_server):
    """In-flight requests finish; new ones get 503 with Retry-After; then the server exits."""
    url = slow_server.url
    done = {}

    def in_flight():
        done["r"] = requests.post(url + "/v1/analyze", files={"file": _png()}, timeout=30)

    t = threading.Thread(target=in_flight)
    t.start()
    time.sleep(0.7)  # the request is being analysed (2 s)
    slow_server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    r = requests.post(url + "/v1/faces", files={"file": _png()}, timeout=10)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "shutting_down"
    assert r.headers["retry-after"] == "1" and r.headers["connection"] == "close"
    assert requests.get(url + "/readyz", timeout=5).json()["status"] == "draining"
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    t.join(30)
    assert done["r"].status_code == 200, done["r"].text  # finished, not cut off
    assert done["r"].json()["faces"] == []
    slow_server.proc.wait(30)  # then the server stops by itself
    assert slow_server.proc.returncode in (0, -signal.SIGTERM)
    log = slow_server.log_path.read_text()
    assert "SIGTERM: draining (1 requests in flight)" in log and "drained; stopping" in log
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=2)


def test_slow_client_is_cut_off(slow_server):
    """A body sent one byte every 100 ms is answered 408 once the 1 s body limit passes, and the
    connection is closed; the server keeps serving others meanwhile."""
    sock = socket.create_connection(("127.0.0.1", slow_server.port), timeout=10)
    head = (
        "POST /v1/faces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n"
    )
    sock.sendall(head.encode())
    t0 = time.monotonic()
    sent, answer = 0, b""
    sock.settimeout(0.1)
    while time.monotonic() - t0 < 10:
        try:
            sock.sendall(b"{")
            sent += 1
        except OSError:
            break
        try:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
        except TimeoutError:
            pass
        if sent == 3:  # others are served meanwhile
            assert requests.get(slow_server.url + "/healthz", timeout=2).status_code == 200
    elapsed = time.monotonic() - t0
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 0.9 < elapsed < 3.0 and sent < 40
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout"


# -- the real models in worker processes, and the bad-input corpus ----------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"FACECORE_WORKER_MODE": "process", "FACECORE_WORKERS": "2"}
    s = Server("app.main:app", env, tmp_path_factory.mktemp("srv") / "server.log")
    s.wait()
    yield s
    s.stop()


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return struct.pack(">I", len(data)) + kind + data + crc


def _png_claiming(w: int, h: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _decompression_bomb() -> bytes:
    """A real, complete 8000 x 8000 PNG (64 M pixels, 192 MB decoded) of about 190 kB."""
    row = b"\0" + b"\0" * (8000 * 3)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(8000)) + z.flush()
    return _png_claiming(8000, 8000, data)


def _tiled_faces(photo: bytes, n: int = 10) -> bytes:
    face = Image.open(io.BytesIO(photo)).crop((316, 86, 675, 445)).resize((128, 128))
    grid = Image.new("RGB", (128 * n, 128 * n))
    for i in range(n):
        for j in range(n):
            grid.paste(face, (j * 128, i * 128))
    buf = io.BytesIO()
    grid.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus(one_face_photo):
    jpeg = one_face_photo.read_bytes()
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="ICO")
    ico = buf.getvalue()
    return {
        # name: (part bytes, part content type, expected status, expected code)
        "zero-bytes": (b"", "image/jpeg", 422, "undecodable_image"),
        "truncated-jpeg": (jpeg[: len(jpeg) // 3], "image/jpeg", 422, "undecodable_image"),
        "jpeg-header-only": (jpeg[:600], "image/jpeg", 422, "undecodable_image"),
        "pixel-bomb": (
            _png_claiming(40000, 40000, zlib.compress(b"\0" * 64)),
            "image/png",
            413,
            "image_too_large",
        ),
        "decompression-bomb": (_decompression_bomb(), "image/png", 413, "image_too_large"),
        "html-with-jpeg-magic": (
            b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>",
            "image/jpeg",
            422,
            "undecodable_image",
        ),
        "gif-js-polyglot": (
            b"GIF89a/*\x00\x00*/=1;alert(document.domain);//",
            "image/gif",
            422,
            "undecodable_image",
        ),
        "pdf-as-jpeg": (
            b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
            "image/jpeg",
            415,
            "unsupported_image",
        ),
        "svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>',
            "image/svg+xml",
            415,
            "unsupported_image",
        ),
        "ico": (ico, "image/x-icon", 415, "unsupported_image"),
        "text-as-png": (b"hello world\n" * 50, "image/png", 422, "undecodable_image"),
        "random-bytes": (
            bytes(range(256)) * 64,
            "application/octet-stream",
            422,
            "undecodable_image",
        ),
    }


def _json_routes(server) -> set[str]:
    """The image routes whose documented body includes JSON."""
    doc = requests.get(server.url + "/openapi.json", timeout=10).json()
    return {
        path
        for path, ops in doc["paths"].items()
        if "application/json" in ops.get("post", {}).get("requestBody", {}).get("content", {})
    }


def _image_routes(server) -> dict[str, str]:
    """Every POST route taking an image, with the multipart field it reads."""
    return {route: fields[0] for route, fields in _image_fields(server).items()}


def _image_fields(server) -> dict[str, list[str]]:
    """Every POST route taking an image, with the multipart fields it needs (``file`` alone
    where it reads one; every required field of a route such as /v1/compare)."""
    doc = requests.get(server.url + "/openapi.json", timeout=10).json()
    out = {}
    for path, ops in doc["paths"].items():
        body = ops.get("post", {}).get("requestBody", {}).get("content", {})
        schema = body.get("multipart/form-data", {}).get("schema", {})
        props = schema.get("properties", {})
        if props:
            out[path] = (
                ["file"] if "file" in props else schema.get("required") or [next(iter(props))]
            )
    return out


def test_process_workers_give_the_library_numbers(server, one_face_photo, golden_scores):
    from pathlib import Path

    for pid in _worker_pids(server):  # thread limits and malloc settings from before start
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        for var in (
            b"OMP_NUM_THREADS=1",
            b"OPENBLAS_NUM_THREADS=1",
            b"MKL_NUM_THREADS=1",
            b"MALLOC_MMAP_THRESHOLD_=131072",
        ):
            assert var in env, (pid, var)
    metrics = requests.get(server.url + "/metrics", timeout=10).text
    assert 'facecore_workers{state="ready"} 2.0' in metrics
    assert "facecore_models_loaded 1.0" in metrics
    data = one_face_photo.read_bytes()
    r = requests.post(server.url + "/v1/score", files={"file": data}, timeout=60)
    assert r.status_code == 200, r.text
    (golden,) = golden_scores["obama.jpg"]
    assert r.json()["faces"][0]["predictions"]["attractiveness"]["value"] == pytest.approx(
        golden, abs=1e-3
    )
    b64 = base64.b64encode(data).decode()
    r = requests.post(server.url + "/v1/analyze", json={"images_base64": [b64, "QUJD"]}, timeout=60)
    good, bad = r.json()["results"]
    assert good["status"] == 200 and len(good["result"]["faces"]) == 1
    assert (bad["status"], bad["error"]["code"]) == (422, "undecodable_image")


def test_bad_input_corpus_on_every_route(server, corpus):
    routes = _image_fields(server)
    assert {"/v1/analyze", "/v1/faces", "/v1/score", "/v1/age", "/v1/compare"} <= set(routes)
    seen = {}
    for route, fields in routes.items():
        for name, (data, ctype, status, code) in corpus.items():
            files = {f: ("x", data, ctype) for f in fields}  # the same bad image in every field
            r = requests.post(server.url + route, files=files, timeout=60)
            seen[route, name] = r.status_code
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (route, name)
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert len(seen) == len(routes) * len(corpus)


def test_bad_requests_on_every_route(server):
    url = server.url
    json_routes = _json_routes(server)
    for route, field in _image_routes(server).items():
        # an empty JSON body: malformed where JSON is accepted, an unsupported type elsewhere
        empty_json = 422 if route in json_routes else 415
        cases = [
            ({"data": b"raw", "headers": {"Content-Type": "text/plain"}}, 415),
            ({"data": b"", "headers": {"Content-Type": "application/json"}}, empty_json),
            ({"json": {"image_base64": "A" * (30 << 20)}}, 413),  # over the request limit
            # 1,000 parts: refused when the limit of files (or fields) is passed
            (
                {"files": [(field, (f"{i}.jpg", b"\xff\xd8", "image/jpeg")) for i in range(1000)]},
                422,
            ),
            ({"files": [(f"f{i}", (None, "v")) for i in range(1000)]}, 422),
            (
                {
                    "data": b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\n',
                    "headers": {"Content-Type": "multipart/form-data; boundary=x"},
                },
                422,
            ),
        ]
        for kwargs, status in cases:
            try:
                r = requests.post(url + route, timeout=60, **kwargs)
            except requests.ConnectionError:  # a refused 30 MB upload may close the socket first
                assert status == 413
                continue
            assert r.status_code == status, (route, kwargs.get("headers"), r.text[:200])
            assert set(r.json()) == {"error"}
            assert requests.get(url + "/healthz", timeout=5).status_code == 200


def test_a_photo_with_100_faces(server, one_face_photo):
    """Capped at ``max_faces`` (20), largest first, in a bounded time."""
    data = _tiled_faces(one_face_photo.read_bytes())
    t0 = time.monotonic()
    r = requests.post(server.url + "/v1/analyze", files={"file": data}, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 20
    assert all("attractiveness" in f["predictions"] for f in faces)
    assert elapsed < 20
    metrics = requests.get(server.url + "/metrics", timeout=10).text
    assert 'facecore_workers{state="ready"} 2.0' in metrics  # no worker was lost on the way
    assert 'facecore_images_total{outcome="internal_error"}' not in metrics


def _worker_pids(server) -> list[int]:
    from pathlib import Path

    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == server.proc.pid and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            out.append(int(d.name))
    return out


def test_a_dead_worker_is_replaced(server, one_face_photo):
    """Last in this module (it kills a worker): the images it had get 503 ``worker_lost``, the
    others go on, and a new worker takes its place."""
    import os

    pids = _worker_pids(server)
    assert len(pids) == 2, pids
    os.kill(pids[0], signal.SIGKILL)
    data = one_face_photo.read_bytes()
    codes = []
    for _ in range(6):
        r = requests.post(server.url + "/v1/faces", files={"file": data}, timeout=60)
        codes.append(r.status_code if r.status_code == 200 else r.json()["error"]["code"])
    assert set(codes) <= {200, "worker_lost"} and codes.count(200) >= 4, codes
    t0 = time.monotonic()
    while requests.get(server.url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() - t0 < 180, "no new worker"
        time.sleep(0.5)
    new = _worker_pids(server)
    assert len(new) == 2 and pids[0] not in new and pids[1] in new
    assert requests.post(server.url + "/v1/faces", files={"file": data}, timeout=60).ok


def test_process_mode_api_process_loads_no_model(tmp_path, analyzer, one_face_photo, fixtures):
    """Every image route, beautify and average included, runs on the worker processes: the API
    process reads the manifest (to check requests) and no model file, and the beautified image
    is the library's, byte for byte."""
    from app.core.tasks import encode_image
    from facecore.beauty import beautify

    opened = tmp_path / "opened.txt"
    env = {
        "FACECORE_WORKER_MODE": "process",
        "FACECORE_WORKERS": "1",
        "FACECORE_TEST_OPENED": str(opened),
    }
    s = Server("servers:audited_app", env, tmp_path / "server.log", factory=True)
    data = one_face_photo.read_bytes()
    files = [
        ("files", ("a.jpg", data)),
        ("files", ("b.jpg", (fixtures / "biden.jpg").read_bytes())),
    ]
    try:
        s.wait()
        pretty = requests.post(s.url + "/v1/beautify", files={"file": data}, timeout=120)
        mean = requests.post(s.url + "/v1/average?size=160", files=files, timeout=120)
        score = requests.post(s.url + "/v1/score", files={"file": data}, timeout=120)
    finally:
        s.stop()
    assert pretty.status_code == 200, pretty.text
    assert (mean.status_code, mean.headers["x-facecore-faces"]) == (200, "2"), mean.text
    assert score.status_code == 200, score.text
    seen = {Path(p).name for p in opened.read_text().split()}
    assert seen == {"manifest.json"}  # the hook sees the models folder; no model was read
    assert pretty.content == encode_image(beautify(data, analyzer=analyzer).image, "png")
