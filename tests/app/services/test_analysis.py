"""app.services.analysis: what a request asks is checked before anything is queued, refused
parts keep their error, one head's view also runs the stages that warn, and the answers list
the warnings the faces carry."""

import asyncio

import pytest
from fakes import FAKE_QUALITY, FAKE_QUALITY_THRESHOLD

from app.api.uploads import Upload
from app.core.errors import ApiError
from app.core.pipeline import Analysis, Failure
from app.schemas import AnalyzeItem, ScoreBatchResponse, ScoreItem, ScoreResponse
from app.services.analysis import AnalysisService, batch_item, model_options, with_warnings
from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
from facecore.errors import UnknownStageError


class StubEngine:
    """Runs the fake analyzer in this thread and records what was queued."""

    def __init__(self, analyzer):
        self.analyzer = analyzer
        self.queued = []

    async def analyze(self, images, stages, options, request_id=None):
        from app.core.pipeline import run_batch

        self.queued.append((list(images), stages, options, request_id))
        return run_batch(self.analyzer, images, stages, options).results


@pytest.fixture
def service(fake_analyzer):
    return AnalysisService(fake_analyzer, StubEngine(fake_analyzer), "rid-1")


def test_model_options():
    assert model_options(["age=age_x", "other"], "attractiveness") == {
        "age": {"model": "age_x"},
        "attractiveness": {"model": "other"},
    }
    with pytest.raises(ApiError) as e:
        model_options(["=x"])
    assert (e.value.status, e.value.code) == (422, "invalid_request")
    assert e.value.message.startswith("model: a model choice is HEAD=NAME")


def test_views_of_one_head_add_the_stages_that_warn(fake_analyzer):
    assert with_warnings(fake_analyzer, ("attractiveness",)) == ("attractiveness", "quality")
    assert with_warnings(fake_analyzer, ("quality", "age")) == ("quality", "age")
    real = FaceAnalyzer(AnalyzerConfig(stages=("landmarks",)))
    assert with_warnings(real, ("age",)) == ("age", "quality")
    # A stage that cannot be built here (its model is not in the manifest) is left out.
    broken = FaceAnalyzer(
        AnalyzerConfig(stages=("landmarks",), stage_options={"quality": {"model": "no_such"}})
    )
    assert with_warnings(broken, ("age",)) == ("age",)


def test_bad_stages_and_options_fail_before_queueing(service, png):
    with pytest.raises(UnknownStageError):
        asyncio.run(service.run([png], ("nope",)))
    with pytest.raises(ApiError) as e:
        asyncio.run(service.run([png], ("landmarks",), {"landmarks": {"model": "x"}}))
    assert (e.value.status, e.value.code) == (422, "invalid_request")
    assert service.engine.queued == []


def test_refused_parts_keep_their_error(service, png):
    refused = ApiError(422, "invalid_base64", "bad part")
    order, results = asyncio.run(service.run([png, refused, png], ("landmarks",)))
    assert order == ("landmarks",)
    assert [type(r) for r in results] == [Analysis, Failure, Analysis]
    assert results[1] == Failure(422, "invalid_base64", "bad part")
    ((images, stages, options, rid),) = service.engine.queued
    assert images == [png, png] and stages == ("landmarks",) and rid == "rid-1"


def test_head_view_carries_the_warnings_of_the_faces(service, png):
    upload = Upload(
        images=[("a.png", png), (None, ApiError(422, "invalid_base64", "bad"))], batch=True
    )
    out = asyncio.run(
        service.head_view(
            upload, "attractiveness", None, ScoreResponse, ScoreItem, ScoreBatchResponse
        )
    )
    ((_, stages, _, _),) = service.engine.queued
    assert stages == ("attractiveness", "quality")
    first, second = out.results
    assert (second.status, second.error.code) == (422, "invalid_base64")
    (warning,) = first.result.warnings  # the second fake face is below the fake threshold
    assert (warning.face, warning.code, warning.threshold) == (
        1,
        "low_quality",
        FAKE_QUALITY_THRESHOLD,
    )
    assert warning.quality == FAKE_QUALITY[1] and warning.message.startswith(
        "face 1: image quality"
    )
    assert list(first.result.faces[0].predictions) == ["attractiveness"]


def test_batch_item_is_a_result_or_an_error():
    ok = batch_item(AnalyzeItem, 0, "x" * 300, "res", lambda r: None)
    assert (ok.status, len(ok.filename), ok.error) == (200, 255, None)
    bad = batch_item(AnalyzeItem, 1, None, Failure(413, "image_too_large", "big"), None)
    assert (bad.status, bad.error.code, bad.error.message, bad.result) == (
        413,
        "image_too_large",
        "big",
        None,
    )
