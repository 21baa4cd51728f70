"""Settings -> the app's analyzer: the app builds its analyzer from ``settings.analyzer``, and
``FACECORE_ANALYZER__...`` variables reach it."""

import json
import os

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.core.config import Settings
from app.main import create_app
from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
from facecore.detect import DetectorConfig
from facecore.errors import UnknownModelError
from facecore.io import ImageLimits
from facecore.model_store import models_dir

MIB = 1024 * 1024


@pytest.fixture
def env(monkeypatch):
    """``env(NAME=value)`` sets ``FACECORE_NAME`` for one test; the other ``FACECORE_*``
    settings of the caller's shell are removed (the models folder is kept)."""
    for k in list(os.environ):
        if k.startswith("FACECORE_") and k not in ("FACECORE_MODELS_DIR", "FACECORE_WORKER_MODE"):
            monkeypatch.delenv(k)

    def set_(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(f"FACECORE_{k}", v)

    return set_


@pytest.mark.parametrize(
    "limits,size,status,code",
    [
        (ImageLimits(max_bytes=2 * MIB), (900, 900), 413, "image_too_large"),
        (ImageLimits(max_pixels=4000), (96, 64), 413, "image_too_large"),
        (ImageLimits(min_side=100), (96, 64), 422, "image_too_small"),
    ],
    ids=["bytes", "pixels", "min-side"],
)
def test_image_limits_reach_the_analyzer(make_png, assert_error, limits, size, status, code):
    """No analyzer given, nothing overridden: the app's own analyzer applies the configured
    limits (the image is refused before any model is needed)."""
    data = make_png(*size)
    settings = Settings(
        analyzer=AnalyzerConfig(limits=limits), max_request_bytes=16 * MIB, preload=False
    )
    if limits.max_bytes == 2 * MIB:
        assert limits.max_bytes < len(data) < ImageLimits().max_bytes  # between the two limits
    with TestClient(create_app(settings)) as c:
        assert c.app.state.analyzer.config.limits == limits
        for route in ("/v1/faces", "/v1/score", "/v1/analyze"):
            assert_error(c.post(route, files={"file": ("x.png", data, "image/png")}), status, code)


def test_environment_reaches_the_analyzer(env):
    env(
        ANALYZER__DETECTOR="hog",
        ANALYZER__MAX_FACES="1",
        ANALYZER__STAGES="landmarks",
        ANALYZER__LIMITS__MAX_BYTES=str(MIB),
        PRELOAD="false",
    )
    settings = Settings()
    with TestClient(create_app(settings)) as c:
        analyzer = c.app.state.analyzer
        assert analyzer.config == AnalyzerConfig(
            detector=DetectorConfig(name="hog"),
            max_faces=1,
            stages=("landmarks",),
            limits=ImageLimits(max_bytes=MIB),
        )
        assert analyzer.detector.name == "hog"
        assert analyzer.stages == ("landmarks",)
        assert c.app.state.loader is None and not analyzer.ready
    assert settings.request_limit == MIB * 4 // 3 + 64 * 1024


def test_nested_detector_settings(env):
    env(ANALYZER__DETECTOR__NAME="mtcnn", ANALYZER__DETECTOR__MTCNN_MIN_FACE_SIZE="40")
    assert Settings().analyzer.detector == DetectorConfig(name="mtcnn", mtcnn_min_face_size=40)


@pytest.fixture
def alt_models(tmp_path):
    """A models folder whose manifest also names a second attractiveness model."""
    manifest = json.loads((models_dir() / "manifest.json").read_text())
    (scut,) = [m for m in manifest["models"] if m["name"] == "attractiveness_scut_classical"]
    manifest["models"].append({**scut, "name": "attractiveness_alt"})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_stage_options_reach_the_stage(env, alt_models):
    env(
        ANALYZER__STAGE_OPTIONS__ATTRACTIVENESS__MODEL="attractiveness_alt",
        ANALYZER__STAGE_OPTIONS__ATTRACTIVENESS__MODELS_DIR=str(alt_models),
        PRELOAD="false",
    )
    with TestClient(create_app(Settings())) as c:
        analyzer = c.app.state.analyzer
        assert analyzer.config.stage_options == {
            "attractiveness": {"model": "attractiveness_alt", "models_dir": str(alt_models)}
        }
        stage = analyzer.stage("attractiveness")
        assert stage.model_name == "attractiveness_alt" and stage.models_dir == alt_models


def test_stage_options_as_json(env):
    env(ANALYZER__STAGE_OPTIONS='{"attractiveness": {"model": "attractiveness_scut"}}')
    assert Settings().analyzer.stage_options == {"attractiveness": {"model": "attractiveness_scut"}}


def test_quality_threshold_is_the_quality_stages_option(env):
    """``FACECORE_QUALITY_THRESHOLD`` reaches the stage that makes the warnings (in every
    worker: it is part of the analyzer's settings), over a ``warn_below`` set there."""
    env(ANALYZER__STAGE_OPTIONS='{"quality": {"model": "quality_faces", "warn_below": 0.1}}')
    assert Settings().analyzer.stage_options["quality"]["warn_below"] == 0.1
    env(QUALITY_THRESHOLD="0.35")
    settings = Settings()
    assert settings.analyzer.stage_options == {
        "quality": {"model": "quality_faces", "warn_below": 0.35}
    }
    stage = FaceAnalyzer(settings.analyzer).stage("quality")
    assert stage.threshold == 0.35


def test_unknown_model_setting_fails_at_start_up(env):
    env(ANALYZER__STAGE_OPTIONS__ATTRACTIVENESS__MODEL="nope", PRELOAD="false")
    app = create_app(Settings())
    with pytest.raises(UnknownModelError, match="nope"), TestClient(app):
        pass


@pytest.mark.parametrize(
    "name,value",
    [
        ("ANALYZER__DETECTOR", "nope"),
        ("ANALYZER__MAX_FACES", "0"),
        ("ANALYZER__LIMITS__MAX_BYTES", "lots"),
        ("ANALYZER__STAGE_OPTIONS", "{not json"),
    ],
)
def test_bad_setting_is_an_error(env, name, value):
    env(**{name: value})
    with pytest.raises(ValidationError):
        Settings()


def test_unknown_facecore_variables_are_reported(caplog):
    from app.core.config import unknown_variables

    env = {
        "FACECORE_MAX_IMAGE_BYTES": "1",  # the name of an older release
        "FACECORE_ANALYZER__MAX_FACES": "3",
        "FACECORE_MODELS_DIR": "/x",
        "FACECORE_PRELOAD": "0",
        "HOME": "/root",
    }
    assert unknown_variables(env) == ["FACECORE_MAX_IMAGE_BYTES"]


def test_create_app_logs_unknown_variables(monkeypatch, caplog):
    import logging

    from app.core.config import Settings
    from app.main import create_app

    monkeypatch.setenv("FACECORE_DETECTOR", "hog")
    with caplog.at_level(logging.WARNING, logger="app"):
        create_app(Settings(preload=False))
    assert "FACECORE_DETECTOR is not a facecore setting" in caplog.text
