"""app.api.routes.beautify: POST /v1/beautify and POST /v1/average, with the real models."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.api.routes import beautify as route
from app.core.config import Settings
from app.core.tasks import encode_image
from app.main import create_app


@pytest.fixture(scope="module")
def client(analyzer):
    """The service over the session's loaded analyzer: the routes' jobs run on its thread
    workers (the process workers: ``tests/app/test_server.py``)."""
    with TestClient(create_app(Settings(), analyzer=analyzer)) as c:
        yield c


@pytest.fixture(scope="module")
def obama_bytes(one_face_photo):
    return one_face_photo.read_bytes()


def decode(r):
    return Image.open(io.BytesIO(r.content))


def assert_error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


def test_beautify_png_with_scores(client, obama_bytes):
    r = client.post("/v1/beautify", files={"file": obama_bytes})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    im = decode(r)
    assert im.format == "PNG" and im.size == (910, 1137)
    assert float(r.headers["x-facecore-score-before"]) == pytest.approx(2.778, abs=0.01)
    assert float(r.headers["x-facecore-score-after"]) == pytest.approx(2.924, abs=0.01)
    assert float(r.headers["x-facecore-landmark-shift"]) == pytest.approx(2.49, abs=0.05)
    assert float(r.headers["x-facecore-landmark-shift-max"]) == pytest.approx(6.40, abs=0.1)
    assert float(r.headers["x-facecore-identity-distance"]) == pytest.approx(0.131, abs=0.01)
    assert r.headers["x-facecore-face-box"] == "366,136,625,395"


def test_beautify_jpeg_by_accept_or_query(client, obama_bytes):
    q = {"warp": 0, "smooth": 0.3}
    r = client.post("/v1/beautify", params=q, files={"file": obama_bytes},
                    headers={"accept": "image/png;q=0.5, image/jpeg"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert decode(r).format == "JPEG"
    assert float(r.headers["x-facecore-landmark-shift"]) == 0.0
    r = client.post("/v1/beautify", params={**q, "format": "png"}, files={"file": obama_bytes},
                    headers={"accept": "image/jpeg"})  # fmt: skip
    assert r.headers["content-type"] == "image/png"


def test_beautify_is_the_library_result(client, analyzer, obama_bytes):
    from facecore.beauty import beautify

    r = client.post("/v1/beautify?warp=0.5&smooth=0.2", files={"file": obama_bytes})
    want = beautify(obama_bytes, 0.5, 0.2, analyzer)
    np.testing.assert_array_equal(np.asarray(decode(r).convert("RGB")), want.image)
    assert r.content == encode_image(want.image, "png")  # byte for byte


@pytest.mark.parametrize("query", ["warp=1.5", "smooth=-0.1", "warp=abc", "format=gif"])
def test_beautify_bad_query(client, obama_bytes, query):
    r = client.post(f"/v1/beautify?{query}", files={"file": obama_bytes})
    assert_error(r, 422, "invalid_request")


def test_beautify_no_face_and_bad_image(client, no_face_photo):
    r = client.post("/v1/beautify", files={"file": no_face_photo.read_bytes()})
    assert "no face" in assert_error(r, 422, "no_face")
    r = client.post("/v1/beautify", files={"file": ("x.jpg", b"GIF89a")})
    assert_error(r, 422, "undecodable_image")
    r = client.post("/v1/beautify", content=b"x", headers={"content-type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")


def test_average(client, obama_bytes, fixtures):
    files = [
        ("files", ("a.jpg", obama_bytes)),
        ("files", ("b.jpg", (fixtures / "biden.jpg").read_bytes())),
    ]  # noqa: E501
    r = client.post("/v1/average?size=160", files=files)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-facecore-faces"] == "2"
    assert decode(r).size == (160, 160)
    r = client.post("/v1/average?format=jpeg", files=files[:1])
    assert decode(r).format == "JPEG" and decode(r).size == (300, 300)


def test_average_checks_each_files_limits(client, png_bomb):
    r = client.post("/v1/average", files=[("files", ("bomb.png", png_bomb))])
    assert "bomb.png" in assert_error(r, 413, "image_too_large")


def test_average_errors(client, obama_bytes, no_face_photo):
    dog = no_face_photo.read_bytes()
    r = client.post("/v1/average", files=[("files", ("me.jpg", obama_bytes)),
                                          ("files", ("dog.jpg", dog))])  # fmt: skip
    assert "dog.jpg" in assert_error(r, 422, "no_face")
    r = client.post("/v1/average", files=[("files", ("junk.png", b"\x89PNG\r\n\x1a\nxx"))])
    assert "junk.png" in assert_error(r, 422, "undecodable_image")
    many = [("files", (f"{i}.jpg", b"x")) for i in range(route.MAX_AVERAGE_FILES + 1)]
    assert "at most 16" in assert_error(client.post("/v1/average", files=many), 422,
                                        "invalid_request")  # fmt: skip
    r = client.post("/v1/average", files={"file": obama_bytes})
    assert_error(r, 422, "missing_file")
    r = client.post("/v1/average", json={"image_base64": "AAAA"})
    assert_error(r, 415, "unsupported_media_type")
    r = client.post("/v1/average?size=4", files=[("files", ("a.jpg", obama_bytes))])
    assert_error(r, 422, "invalid_request")


def test_choose_format():
    assert route.choose_format(None, None) == "png"
    assert route.choose_format(None, "image/jpeg") == "jpeg"
    assert route.choose_format(None, "image/*, image/jpeg;q=0.9") == "jpeg"
    assert route.choose_format(None, "image/jpeg;q=0.4, image/png;q=0.8") == "png"
    assert route.choose_format(None, "image/png, image/jpeg") == "png"
    assert route.choose_format(None, "image/jpeg;q=0, text/html") == "png"
    assert route.choose_format("jpeg", "image/png") == "jpeg"


def test_openapi_documents_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    ok = paths["/v1/beautify"]["post"]["responses"]["200"]
    assert set(ok["content"]) == {"image/png", "image/jpeg"}
    assert "X-Facecore-Score-Before" in ok["headers"]
    assert "files" in str(paths["/v1/average"]["post"]["requestBody"])
