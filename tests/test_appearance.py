import numpy as np
import pytest

from facecore.align import face_crops
from facecore.appearance import FEATURE_KEY, AppearanceStage, appearance_features
from facecore.io import load_image
from facecore.model_router import load


def test_the_stage_writes_mirror_averaged_features_of_its_own_crop(analyzer, two_face_photo):
    img = load_image(two_face_photo)
    faces = analyzer.analyze(img, stages=("landmarks",))
    stage = AppearanceStage()
    out = stage(img, faces)
    assert len(out) == len(faces) == 2
    crops = face_crops(img, faces, stage.spec)
    assert crops.shape == (2, stage.spec.size, stage.spec.size, 3)
    net = load(stage.model)
    plain = appearance_features(net, crops, mirror=False)
    mirrored = appearance_features(net, np.ascontiguousarray(crops[:, :, ::-1]), mirror=False)
    got = np.stack([f.features[FEATURE_KEY] for f in out])
    assert got.shape == (2, 1024) and got.dtype == np.float32
    np.testing.assert_allclose(got, 0.5 * (plain + mirrored), rtol=1e-4, atol=1e-5)
    # two different people: the pooled features differ clearly, the crop cache is shared
    cos = got[0] @ got[1] / np.linalg.norm(got[0]) / np.linalg.norm(got[1])
    assert cos < 0.9
    assert stage.spec in out[0].crops


def test_features_do_not_depend_on_the_batch(analyzer, one_face_photo, two_face_photo):
    stage = AppearanceStage(batch_size=1)
    from facecore.multi import analyze_many

    together = analyze_many(analyzer, [one_face_photo, two_face_photo], stages=("appearance",))
    for photo, result in zip((one_face_photo, two_face_photo), together, strict=True):
        faces = result.faces
        alone = stage(load_image(photo), analyzer.analyze(load_image(photo), stages=("landmarks",)))
        for a, b in zip(alone, faces, strict=True):
            np.testing.assert_allclose(
                a.features[FEATURE_KEY], b.features[FEATURE_KEY], rtol=1e-4, atol=1e-4
            )


def test_options_are_checked():
    with pytest.raises(ValueError, match="batch_size"):
        AppearanceStage(batch_size=0)
    assert AppearanceStage()(np.zeros((10, 10, 3), np.uint8), []) == []
    assert appearance_features(None, np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 1024)
