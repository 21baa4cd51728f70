import numpy as np

from facecore.descriptor import DlibDescriptor, TorchTrunk, face_chips
from facecore.io import load_image


def test_torch_trunk_matches_dlib_descriptor(analyzer, two_face_photo, one_face_photo):
    trunk, dlib_desc = TorchTrunk(), DlibDescriptor()
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


def test_empty_inputs():
    trunk = TorchTrunk()
    assert trunk.compute(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 896)
    assert DlibDescriptor().compute(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
