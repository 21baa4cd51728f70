"""facecore.multi.analyze_many: several images, each stage once over all their faces, the same
numbers as image by image."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from facecore.analyzer import FaceAnalyzer
from facecore.errors import UndecodableImageError
from facecore.multi import analyze_many, run_stages
from facecore.stages import stage_batching
from facecore.types import Box, Face

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def photos(fixtures):
    return [
        fixtures / "obama.jpg",
        b"not an image",
        fixtures / "two_people.jpg",
        fixtures / "dlib_dog.jpg",
        fixtures / "biden.jpg",
    ]


def test_same_faces_as_one_by_one(analyzer, photos):
    steps = []
    results = analyze_many(analyzer, photos, on_step=lambda s, t, n: steps.append((s, n)))
    assert [len(r.faces) for r in results] == [1, 0, 2, 0, 1]
    assert isinstance(results[1].error, UndecodableImageError)
    assert results[3].error is None and results[3].width > 0  # no face is not an error
    for photo, res in zip(photos, results, strict=True):
        if res.error is not None:
            continue
        ref = analyzer.analyze(photo)
        for f, g in zip(res.faces, ref, strict=True):
            assert f.box == g.box
            np.testing.assert_allclose(f.embedding, g.embedding, atol=1e-5)
            for name, p in g.predictions.items():
                # in one batch with other faces the int8 tops and the SVR's float16 product move
                # the last digits (README, "Batch on a Ray cluster"); not more
                assert f.predictions[name].value == pytest.approx(p.value, abs=2e-3), name
    # Landmarks run per image; the trunk and the map heads once over the 4 faces of 3 images.
    counts = {}
    for s, n in steps:
        counts.setdefault(s, []).append(n)
    assert counts["landmarks"] == [1, 2, 1]
    for name in ("trunk", "attractiveness", "age", "quality"):
        assert counts[name] == [4], name
    assert len(counts["decode"]) == 5 and len(counts["detect"]) == 4


def test_group_false_runs_image_by_image(analyzer, photos):
    steps = []
    results = analyze_many(
        analyzer, photos, ("age",), on_step=lambda s, t, n: steps.append((s, n)), group=False
    )
    assert [n for s, n in steps if s == "trunk"] == [1, 2, 1]
    assert [len(r.faces) for r in results] == [1, 0, 2, 0, 1]


def test_decoded_futures(analyzer, photos):
    with ThreadPoolExecutor(1) as pool:
        futures = [pool.submit(analyzer.load_image, p) for p in photos]
        results = analyze_many(analyzer, photos, ("landmarks",), decoded=futures)
    assert [len(r.faces) for r in results] == [1, 0, 2, 0, 1]
    assert isinstance(results[1].error, UndecodableImageError)


def test_decoded_images_with_their_reduced_copy(analyzer, photos):
    """``analyzer.decode`` in a decoding thread (the batch runner's way): the same faces as the
    arrays of ``analyzer.load_image``, whose reduced copy is made in the loop instead."""
    with ThreadPoolExecutor(1) as pool:
        decoded = [pool.submit(analyzer.decode, p) for p in photos]
        arrays = [pool.submit(analyzer.load_image, p) for p in photos]
        results = analyze_many(analyzer, photos, ("landmarks",), decoded=decoded)
        reference = analyze_many(analyzer, photos, ("landmarks",), decoded=arrays)
    assert [len(r.faces) for r in results] == [1, 0, 2, 0, 1]
    assert isinstance(results[1].error, UndecodableImageError)
    for res, ref in zip(results, reference, strict=True):
        assert (res.width, res.height) == (ref.width, ref.height)
        for f, g in zip(res.faces, ref.faces, strict=True):
            assert f.box == g.box
            np.testing.assert_array_equal(f.landmarks, g.landmarks)


def test_which_stages_group(analyzer):
    assert stage_batching(analyzer.stage("trunk")) == "faces"
    assert stage_batching(analyzer.stage("age")) == "faces"
    assert stage_batching(analyzer.stage("quality")) == "faces"
    assert stage_batching(analyzer.stage("attractiveness")) == "faces"
    assert stage_batching(analyzer.stage("landmarks")) == "image"
    classical = analyzer.stage("attractiveness", {"model": "attractiveness_scut_classical"})
    assert stage_batching(classical) == "image"


def test_bad_stage_choice_raises(analyzer, photos):
    from facecore.errors import UnknownModelError

    with pytest.raises(UnknownModelError):
        analyze_many(analyzer, photos[:1], ("age",), {"age": {"model": "nope"}})


class Recorder:
    """A test stage that records the number of faces of every call; batches as it is told."""

    requires = ()
    provides = ()

    def __init__(self, name, batching=None):
        self.name, self.calls = name, []
        if batching is not None:
            self.batching = batching

    def load(self):
        pass

    def __call__(self, image, faces):
        self.calls.append(len(faces))
        return faces


def test_the_declaration_alone_decides_the_grouping():
    together, alone, default = (
        Recorder("together", "faces"),
        Recorder("alone", "image"),
        Recorder("default"),
    )
    analyzer = FaceAnalyzer(stages=[together, alone, default])
    face = Face(box=Box(0, 0, 10, 10), detector_score=1, detector="fake")
    analyzer.detect_loaded = lambda rgb: [face]
    images = [np.zeros((32, 32, 3), np.uint8)] * 3
    results = analyze_many(analyzer, images)
    assert [len(r.faces) for r in results] == [1, 1, 1]
    assert together.calls == [3] and alone.calls == [1, 1, 1] and default.calls == [1, 1, 1]
    analyzer.analyze(images[0])  # one image: the same loop, each stage called once
    assert together.calls == [3, 1] and alone.calls == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="batching must be one of"):
        stage_batching(Recorder("odd", "pixels"))


def test_the_loop_keeps_the_callers_threads():
    """The batch runner and the service's workers set their own thread counts: the loop itself
    sets none, whatever the analyzer's ``threads`` (only FaceAnalyzer's calls apply it)."""
    import torch

    seen = []

    class ThreadsSeen(Recorder):
        def __call__(self, image, faces):
            seen.append(torch.get_num_threads())
            return faces

    current = torch.get_num_threads()
    analyzer = FaceAnalyzer(stages=[ThreadsSeen("threads_seen")], threads=current + 1)
    face = Face(box=Box(0, 0, 10, 10), detector_score=1, detector="fake")
    analyzer.detect_loaded = lambda rgb: [face]
    image = np.zeros((32, 32, 3), np.uint8)
    analyze_many(analyzer, [image])
    run_stages(analyzer, [image], [[face]])
    assert seen == [current, current]
