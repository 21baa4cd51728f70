import numpy as np
import pytest

from facecore.descriptor import DlibDescriptor, face_chips
from facecore.io import load_image
from facecore.trunk import TrunkStage, chip_spec, map_key


def test_torch_trunk_matches_dlib_descriptor(analyzer, two_face_photo, one_face_photo):
    trunk, dlib_desc = TrunkStage(), DlibDescriptor()
    for photo in (two_face_photo, one_face_photo):
        img = load_image(photo)
        faces = analyzer.analyze(img, stages=("landmarks",))
        chips = face_chips(img, faces)
        assert chips.shape == (len(faces), 150, 150, 3)
        ours = trunk(img, faces)
        theirs = dlib_desc.compute(chips)
        got = np.stack([f.embedding for f in ours])
        assert np.abs(got - theirs).max() <= 1e-5
        for f in ours:
            assert f.features["trunk"].shape == (896,)
            # the descriptor is part of the trunk vector: one forward feeds both
            assert np.isin(f.embedding, f.features["trunk"]).all()


def test_trunk_keeps_the_shared_maps_of_the_same_forward(analyzer, one_face_photo):
    img = load_image(one_face_photo)
    (face,) = analyzer.analyze(img, stages=("landmarks",))
    trunk = TrunkStage()
    (out,) = trunk(img, [face])
    assert out.features[map_key("stage2")].shape == (64, 17, 17)
    assert out.features[map_key("stage3")].shape == (128, 8, 8)
    # the kept map is the network's own node for the same chip
    import torch

    net = trunk.network
    with torch.inference_mode():
        nodes = net.forward_feature_dict(net.preprocess(face_chips(img, [face])))
    np.testing.assert_allclose(
        out.features[map_key("stage3")], nodes["stage3"][0].numpy(), atol=1e-6
    )
    # the chip was cut once and is cached on the face by the manifest's spec
    assert chip_spec() in out.crops


def test_trunk_options_are_checked():
    with pytest.raises(ValueError, match="keep_maps"):
        TrunkStage(keep_maps=("stage9",))
    with pytest.raises(ValueError, match="batch_size"):
        TrunkStage(batch_size=0)


def test_empty_inputs():
    assert TrunkStage()(np.zeros((10, 10, 3), np.uint8), []) == []
    assert DlibDescriptor().compute(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)


def test_a_head_top_runs_from_the_shared_map(analyzer, two_face_photo):
    import torch

    from facecore.nn.dlib_resnet import for_inference
    from facecore.nn.top import BackboneTop
    from facecore.trunk import run_top

    img = load_image(two_face_photo)
    faces = analyzer.analyze(img, stages=("trunk",))
    top = BackboneTop(TrunkStage().network, start="stage4", num_outputs=5)
    with torch.no_grad():
        top.fc.weight.copy_(torch.eye(5, 256))  # the first five channels of the pooled output
        top.fc.bias.zero_()
    out = run_top(for_inference(top), faces)
    # "pooled" leads the multi-level trunk vector: the copied top reproduces the trunk's own
    want = np.stack([f.features["trunk"][:5] for f in faces])
    np.testing.assert_allclose(out, want, atol=1e-4)
    with pytest.raises(ValueError, match="lack 'trunk.stage3'"):
        run_top(top, analyzer.analyze(img, stages=("landmarks",)))
