"""app.core.tasks: the kinds of job a worker runs, each item's error kept to itself, and the
images beautify and average make being the library's, byte for byte."""

import io

import numpy as np
import pytest
from PIL import Image

from app.core.pipeline import Analysis, Failure, run_batch
from app.core.tasks import KINDS, Rendered, Task, encode_image, run_task
from facecore.beauty import average_faces, beautify


@pytest.fixture(scope="module")
def photos(fixtures):
    return {n: (fixtures / n).read_bytes() for n in ("obama.jpg", "biden.jpg", "dlib_dog.jpg")}


def test_the_kinds():
    assert set(KINDS) == {"analyze", "beautify", "average"}


def test_analyze_is_the_batched_pipeline(fake_analyzer, png):
    task = Task(
        "analyze", [png, b"junk"], {"stages": ("attractiveness",), "options": {}}, [None] * 2
    )
    out = run_task(fake_analyzer, task)
    want = run_batch(fake_analyzer, [png, b"junk"], ("attractiveness",), {})
    good, bad = out.results
    assert isinstance(good, Analysis) and (good.width, good.height) == (96, 64)
    assert [f.predictions["attractiveness"].value for f in good.faces] == [
        f.predictions["attractiveness"].value for f in want.results[0].faces
    ]
    assert bad == Failure(422, "undecodable_image", want.results[1].message)


def test_encode_image_round_trips():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    png = Image.open(io.BytesIO(encode_image(rgb, "png")))
    assert png.format == "PNG" and np.array_equal(np.asarray(png), rgb)
    jpeg = Image.open(io.BytesIO(encode_image(rgb, "jpeg")))
    assert jpeg.format == "JPEG" and jpeg.size == (30, 20)


def test_beautify_gives_the_librarys_image_and_numbers(analyzer, photos, no_face_photo):
    obama = photos["obama.jpg"]
    params = {"warp": 0.5, "smooth": 0.2, "fmt": "png"}
    task = Task("beautify", [obama, no_face_photo.read_bytes(), b"junk"], params, [None] * 3)
    good, no_face, junk = run_task(analyzer, task).results
    want = beautify(obama, 0.5, 0.2, analyzer)
    assert isinstance(good, Rendered) and good.content == encode_image(want.image, "png")
    assert good.headers == {
        "X-Facecore-Score-Before": f"{want.score_before:.4f}",
        "X-Facecore-Landmark-Shift": f"{want.landmark_shift_mean:.3f}",
        "X-Facecore-Landmark-Shift-Max": f"{want.landmark_shift_max:.3f}",
        "X-Facecore-Face-Box": "366,136,625,395",
        "X-Facecore-Score-After": f"{want.score_after:.4f}",
        "X-Facecore-Identity-Distance": f"{want.identity_distance:.4f}",
    }
    assert float(good.headers["X-Facecore-Score-Before"]) == pytest.approx(2.778, abs=0.01)
    assert (no_face.status, no_face.code) == (422, "no_face")
    assert (junk.status, junk.code) == (422, "undecodable_image")


def test_average_gives_the_librarys_image_and_names_a_bad_file(analyzer, photos):
    named = [("a.jpg", photos["obama.jpg"]), ("b.jpg", photos["biden.jpg"])]
    dog = [("me.jpg", photos["obama.jpg"]), ("dog.jpg", photos["dlib_dog.jpg"])]
    junk = [("junk.png", b"\x89PNG\r\n\x1a\nxx")]
    task = Task("average", [named, dog, junk], {"size": 160, "fmt": "png"}, [None] * 3)
    good, no_face, bad = run_task(analyzer, task).results
    want = average_faces([d for _, d in named], size=160, analyzer=analyzer)
    assert good == Rendered(encode_image(want, "png"), {"X-Facecore-Faces": "2"})
    assert no_face == Failure(422, "no_face", "no face found in dog.jpg")
    assert (bad.status, bad.code) == (422, "undecodable_image")
    assert bad.message.startswith("junk.png: ")
