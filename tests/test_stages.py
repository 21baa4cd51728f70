"""The stage registry: a new head registers itself and runs without touching the analyzer."""

import numpy as np
import pytest

import facecore
from facecore import stages as registry
from facecore.analyzer import FaceAnalyzer
from facecore.errors import UnknownStageError
from facecore.serialize import batch_columns
from facecore.stages import Output, list_stages, register_stage, resolve_order, stage_names
from facecore.types import Box, Face, Prediction


@pytest.fixture
def clean_registry():
    saved = dict(registry._STAGES)
    yield
    registry._STAGES.clear()
    registry._STAGES.update(saved)


class EyeDistance:
    """Inter-ocular distance in pixels from the 68 landmarks (a test head)."""

    name = "eye_distance"
    requires = ("landmarks",)
    default = False
    provides = (Output("eye_distance", unit="px"),)

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.loads = 0

    def load(self) -> None:
        self.loads += 1

    def __call__(self, image, faces):
        out = []
        for f in faces:
            d = float(np.linalg.norm(f.landmarks[36:42].mean(0) - f.landmarks[42:48].mean(0)))
            out.append(f.with_prediction(self.name, Prediction(d * self.scale, "geometry")))
        return out


def test_builtin_stages_are_listed():
    infos = {s.name: s for s in list_stages()}
    assert list(infos)[:3] == ["landmarks", "trunk", "attractiveness"]
    assert infos["trunk"].requires == ("landmarks",)
    assert infos["attractiveness"].provides == ("attractiveness",)
    assert infos["attractiveness"].default and not infos["trunk"].default
    assert infos["attractiveness"].options["model"] == "attractiveness_scut"
    assert facecore.list_stages() == list_stages()


def test_a_registered_stage_runs_without_editing_the_analyzer(clean_registry, one_face_photo):
    register_stage(EyeDistance)
    assert "eye_distance" in [s.name for s in list_stages()]
    analyzer = FaceAnalyzer(
        stages=("eye_distance",), stage_options={"eye_distance": {"scale": 2.0}}
    )
    assert analyzer.stages == ("landmarks", "eye_distance")
    assert batch_columns(analyzer.outputs())[-2:] == ("eye_distance", "error")
    (face,) = analyzer.analyze(one_face_photo)
    p = face.predictions["eye_distance"]
    # obama.jpg: eye centres 104.0 px apart (measured), scaled by 2
    assert p.value == pytest.approx(208.03, abs=0.1) and p.model == "geometry"


def test_an_instance_can_be_handed_in(one_face_photo):
    fake = EyeDistance(scale=0.5)
    analyzer = FaceAnalyzer(stages=[fake]).load()
    assert fake.loads == 1 and analyzer.ready
    (face,) = analyzer.analyze(one_face_photo)
    assert face.predictions["eye_distance"].value == pytest.approx(52.01, abs=0.05)


def test_registration_is_checked(clean_registry):
    class NoName:
        requires = ()

    class SelfNeed:
        name = "selfneed"
        requires = ("selfneed",)

    with pytest.raises(ValueError, match="needs a ``name``"):
        register_stage(NoName)
    with pytest.raises(ValueError, match="requires itself"):
        register_stage(SelfNeed)

    class OddBatching:
        name = "odd"
        requires = ()
        batching = "pixels"

    with pytest.raises(ValueError, match="batching must be one of"):
        register_stage(OddBatching)

    class Other:
        name = "trunk"
        requires = ()

    with pytest.raises(ValueError, match="already registered"):
        register_stage(Other)


def test_resolve_order_puts_requirements_first_and_finds_cycles():
    graph = {"a": ("b",), "b": ("c",), "c": (), "d": ("a", "c")}
    assert resolve_order(["d"], graph.__getitem__, known="abcd") == ("c", "b", "a", "d")
    assert resolve_order(["c", "a"], graph.__getitem__, known="abcd") == ("c", "b", "a")
    loop = {"a": ("b",), "b": ("a",)}
    with pytest.raises(ValueError, match="cycle"):
        resolve_order(["a"], loop.__getitem__, known="ab")
    with pytest.raises(UnknownStageError):
        resolve_order(["nope"])


def test_detection_only_and_empty_images_skip_the_stages():
    calls = []

    class Spy(EyeDistance):
        name = "spy"
        requires = ()

        def __call__(self, image, faces):
            calls.append(len(faces))
            return faces

    analyzer = FaceAnalyzer(stages=[Spy()])
    analyzer.detect_loaded = lambda rgb: []  # no face
    assert analyzer.analyze(np.zeros((64, 64, 3), np.uint8)) == []
    assert calls == []
    face = Face(box=Box(0, 0, 10, 10), detector_score=1, detector="fake")
    (out,) = analyzer.run_stages(np.zeros((64, 64, 3), np.uint8), [face], stages=("spy",))
    assert out is face
    assert calls == [1]


def test_registry_order_does_not_depend_on_import_order(clean_registry):
    # as if the attractiveness module had been imported first
    head = registry._STAGES.pop("attractiveness")
    registry._STAGES = {"attractiveness": head, **registry._STAGES}
    assert [s.name for s in list_stages()][:3] == ["landmarks", "trunk", "attractiveness"]


def test_stage_modules_come_from_the_entry_points_in_pipeline_order(monkeypatch) -> None:
    import importlib.metadata as md

    from facecore.builtin import STAGE_MODULES

    assert registry.stage_modules() == STAGE_MODULES
    assert [s.name for s in list_stages()][:6] == [
        "landmarks",
        "trunk",
        "attractiveness",
        "age",
        "quality",
        "appearance",  # not a default stage: heads whose models read it require it
    ]
    plugin = md.EntryPoint("plugin", "facecore.builtin:STAGE_MODULES", registry.ENTRY_POINT_GROUP)
    ours = md.EntryPoint("facecore", "facecore.builtin:STAGE_MODULES", registry.ENTRY_POINT_GROUP)
    registry.stage_modules.cache_clear()
    monkeypatch.setattr(md, "entry_points", lambda group: [plugin, ours])
    try:
        assert registry.stage_modules() == STAGE_MODULES  # facecore's first, no duplicates
        monkeypatch.setattr(md, "entry_points", lambda group: [])
        registry.stage_modules.cache_clear()
        with pytest.raises(RuntimeError, match="install it"):
            registry.stage_modules()
    finally:
        registry.stage_modules.cache_clear()


def test_stage_names_are_list_stages_names_in_order():
    names = stage_names()
    assert names == tuple(info.name for info in list_stages())
    assert names.index("landmarks") < names.index("trunk") < names.index("attractiveness")
