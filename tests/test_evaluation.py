import numpy as np
import pytest

from facecore.evaluation import inter_ocular_nme, read_dlib_xml


def test_read_dlib_xml(fixtures):
    faces = list(read_dlib_xml(fixtures / "dlib_faces" / "training_with_face_landmarks.xml"))
    assert faces and all(f.points.shape == (68, 2) for f in faces)
    first = faces[0]
    assert first.file == "2007_007763.jpg"
    assert first.box.as_tuple() == (194, 90, 231, 127)


def test_inter_ocular_nme():
    gt = np.zeros((68, 2))
    gt[36], gt[45] = (0, 0), (10, 0)
    pred = gt.copy()
    pred[:, 1] += 1.0  # every point 1 px off, inter-ocular 10 px
    assert inter_ocular_nme(pred, gt) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        inter_ocular_nme(np.zeros((5, 2)), np.zeros((5, 2)))
