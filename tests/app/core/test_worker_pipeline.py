"""The workers' batched pipeline gives the library's numbers, with one trunk forward for every
face of every image of a task, and keeps each image's error to itself."""

import numpy as np
import pytest

from app.core.pipeline import Analysis, Failure, run_batch


@pytest.fixture(scope="module")
def photos(fixtures):
    names = ["obama.jpg", "two_people.jpg", "dlib_dog.jpg", "biden.jpg"]
    return [(fixtures / n).read_bytes() for n in names]


def test_batch_equals_the_library_image_by_image(analyzer, photos, monkeypatch):
    trunk = analyzer.stage("trunk")
    forwards = []
    compute = type(trunk).compute
    monkeypatch.setattr(
        type(trunk),
        "compute",
        lambda self, chips: forwards.append(len(chips)) or compute(self, chips),
    )
    out = run_batch(analyzer, [*photos, b"not an image"])
    *good, bad = out.results
    assert isinstance(bad, Failure) and (bad.status, bad.code) == (422, "undecodable_image")
    assert forwards == [4] and out.trunk_batches == [4]  # 1 + 2 + 0 + 1 faces, one forward
    assert [len(r.faces) for r in good] == [1, 2, 0, 1]
    assert set(out.timings) == {
        "decode",
        "detect",
        "landmarks",
        "trunk",
        "attractiveness",
        "age",
        "quality",
    }
    assert len(out.timings["trunk"]) == 1 and len(out.timings["decode"]) == 5

    forwards.clear()
    for data, res in zip(photos, good, strict=True):
        rgb, ref = analyzer.analyze_image(data)
        assert isinstance(res, Analysis) and (res.height, res.width) == rgb.shape[:2]
        assert len(res.faces) == len(ref)
        for f, g in zip(res.faces, ref, strict=True):
            assert f.box == g.box
            np.testing.assert_allclose(f.landmarks, g.landmarks)
            np.testing.assert_allclose(f.embedding, g.embedding, atol=1e-5)
            p, q = f.predictions["attractiveness"], g.predictions["attractiveness"]
            # batched with other images: the last digits move (README, "Batch on a Ray cluster")
            assert p.value == pytest.approx(q.value, abs=2e-3) and p.model == q.model
            assert f.features == {} and f.crops == {}  # not shipped back from a worker


def test_no_batching_gives_the_same(analyzer, photos):
    a = run_batch(analyzer, photos[:2])
    b = run_batch(analyzer, photos[:2], batch_trunk=False)
    assert b.trunk_batches == [1, 2] and a.trunk_batches == [3]
    for x, y in zip(a.results, b.results, strict=True):
        for f, g in zip(x.faces, y.faces, strict=True):
            np.testing.assert_allclose(f.embedding, g.embedding, atol=1e-5)


def test_stages_and_options(analyzer, photos):
    out = run_batch(analyzer, photos[:1], stages=("landmarks",))
    (res,) = out.results
    assert res.faces[0].landmarks is not None and res.faces[0].embedding is None
    assert set(out.timings) == {"decode", "detect", "landmarks"}
    out = run_batch(
        analyzer, photos[:1], ("attractiveness",), {"attractiveness": {"model": "nope"}}
    )
    assert out.results[0].code == "unknown_model" and out.results[0].status == 422
