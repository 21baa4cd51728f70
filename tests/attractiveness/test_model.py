"""AttractivenessModel (predict, clip, save/load checks) and the AttractivenessStage."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from facecore.attractiveness.face_features import FaceFeatureExtractor, layout_width
from facecore.attractiveness.model import AttractivenessModel, AttractivenessStage
from facecore.errors import ModelCorruptError, UnknownModelError
from facecore.io import load_image
from facecore.model_store import sha256_file

SHIPPED = "attractiveness_scut_classical"


@pytest.fixture(scope="module")
def image_and_faces(analyzer, one_face_photo):
    image = load_image(one_face_photo)
    return image, analyzer.analyze(image)


def linear_model(extractor: FaceFeatureExtractor, blocks: tuple[str, ...], scale: float) -> object:
    """A model whose score is ``3 + scale * (first geometric feature - 1)``."""
    layout = extractor.layout(blocks)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, layout_width(layout))).astype(np.float32)
    y = 3.0 + scale * X[:, 0]
    reg = LinearRegression().fit(X, y)
    return AttractivenessModel(reg, extractor, layout, metadata={"note": "test"})


def test_predict_faces_and_clipping(image_and_faces) -> None:
    image, faces = image_and_faces
    ex = FaceFeatureExtractor()
    model = linear_model(ex, ("geometric", "deep"), scale=1.0)
    scores = model.predict_faces(image, faces)
    assert scores.shape == (len(faces),)
    X = ex.extract_faces(image, faces, ("geometric", "deep"))
    np.testing.assert_allclose(scores, np.clip(model.regressor.predict(X), 1, 5))
    wild = linear_model(ex, ("geometric",), scale=100.0)
    assert np.all((wild.predict_faces(image, faces) == 1) | (wild.predict_faces(image, faces) == 5))
    assert model.predict_faces(image, []).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        model.predict_matrix(np.zeros((2, 3)))


def test_layout_must_match_the_extractor() -> None:
    ex = FaceFeatureExtractor()
    with pytest.raises(ValueError, match="shape"):
        AttractivenessModel(LinearRegression(), ex, (("geometric", (40,)),))


def test_save_load_round_trip_and_refusals(tmp_path: Path, image_and_faces) -> None:
    image, faces = image_and_faces
    model = linear_model(FaceFeatureExtractor(), ("geometric",), scale=1.0)
    path = model.save(tmp_path / "m.joblib")
    loaded = AttractivenessModel.load(path)
    assert loaded.blocks == ("geometric",) and loaded.metadata == {"note": "test"}
    np.testing.assert_allclose(
        loaded.predict_faces(image, faces), model.predict_faces(image, faces)
    )

    model.feature_version = "0-old"
    model.save(tmp_path / "old.joblib")
    with pytest.raises(ModelCorruptError, match="feature version"):
        AttractivenessModel.load(tmp_path / "old.joblib")
    joblib.dump({"something": 1}, tmp_path / "other.joblib")
    with pytest.raises(ModelCorruptError, match="not a"):
        AttractivenessModel.load(tmp_path / "other.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ModelCorruptError):
        AttractivenessModel.load(tmp_path / "junk.joblib")


def write_manifest(folder: Path, name: str, file: str) -> None:
    entry = {
        "name": name,
        "file": file,
        "sha256": sha256_file(folder / file),
        "task": "attractiveness",
        "architecture": "score_fusion",
    }
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "models": [entry]}))


def test_scorer_adds_predictions_and_loads_once(tmp_path: Path, image_and_faces) -> None:
    image, faces = image_and_faces
    model = linear_model(FaceFeatureExtractor(), ("geometric", "blbp"), scale=0.5)
    model.save(tmp_path / "tiny.joblib")
    write_manifest(tmp_path, "tiny", "tiny.joblib")
    scorer = AttractivenessStage(model="tiny", models_dir=tmp_path)
    loaded: list[object] = []
    threads = [threading.Thread(target=lambda: loaded.append(scorer.load())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in loaded}) == 1
    assert scorer.batching == "image"  # the classical model cuts its crops from the image
    out = scorer(image, faces)
    assert len(out) == len(faces)
    expected = model.predict_faces(image, faces)
    for face, score in zip(out, expected, strict=True):
        assert face.predictions["attractiveness"].value == pytest.approx(score)
        assert face.predictions["attractiveness"].model == "tiny"
    assert scorer(image, []) == []


def test_scorer_missing_or_corrupt_model(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "models": []}))
    with pytest.raises(UnknownModelError, match="no attractiveness model named 'nope'"):
        AttractivenessStage(model="nope", models_dir=tmp_path)  # refused at construction
    (tmp_path / "bad.joblib").write_bytes(b"x")
    write_manifest(tmp_path, "bad", "bad.joblib")
    (tmp_path / "bad.joblib").write_bytes(b"y")  # sha256 no longer matches
    stage = AttractivenessStage(model="bad", models_dir=tmp_path)
    with pytest.raises(ModelCorruptError, match="corrupt"):
        stage.load()


# -- the shipped model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped_scorer() -> AttractivenessStage:
    return AttractivenessStage(model=SHIPPED)  # a missing manifest entry fails, never skips


def test_shipped_model_scores_a_photo(shipped_scorer, image_and_faces, golden_scores) -> None:
    image, faces = image_and_faces
    model = shipped_scorer.load()
    assert "non-commercial" in model.metadata["licence"]
    pred = shipped_scorer(image, faces)[0].predictions["attractiveness"]
    # the classical model's value on obama.jpg (its golden value while it was the default)
    assert pred.value == pytest.approx(2.7777, abs=1e-3)
    assert pred.model == SHIPPED
