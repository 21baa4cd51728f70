"""68-point landmarks against the ground truth shipped with dlib's example faces.

The XML files hold boxes and 68 iBUG points for 43 faces in 9 PASCAL VOC photos. Their points were
made by dlib's own 68-point model from those boxes, so started from the same boxes our predictor
must reproduce them almost exactly (this checks the box conversion and coordinate plumbing); from
our own HOG detections (upsampled once: the faces are ~40 px) the error shows what the whole
detect + landmark pipeline gives.
"""

import numpy as np
import pytest

from facecore.analyzer import FaceAnalyzer
from facecore.detect import DetectorConfig
from facecore.evaluation import inter_ocular_nme, read_dlib_xml
from facecore.io import load_image
from facecore.landmarks import LandmarkPredictor, five_from_68, predictor_box
from facecore.types import Box, Face


def _ground_truth(fixtures):
    for xml in ("training", "testing"):
        for ann in read_dlib_xml(fixtures / "dlib_faces" / f"{xml}_with_face_landmarks.xml"):
            if len(ann.points) == 68:
                yield ann.file, ann.box, ann.points


_nme = inter_ocular_nme


@pytest.fixture(scope="module")
def landmark_errors(fixtures):
    predictor = LandmarkPredictor()
    analyzer = FaceAnalyzer(detector=DetectorConfig("hog", hog_upsample=1), stages=("landmarks",))
    from_gt, from_det, missed = [], [], 0
    images: dict = {}
    for file, box, gt in _ground_truth(fixtures):
        if file not in images:
            img = load_image(fixtures / "dlib_faces" / file)
            images[file] = (img, analyzer.analyze(img))
        img, faces = images[file]
        from_gt.append(
            _nme(predictor.predict(img, Face(box=box, detector_score=1, detector="hog")), gt)
        )
        best = max(faces, key=lambda f: f.box.iou(box), default=None)
        if best is None or best.box.iou(box) < 0.3:
            missed += 1
            continue
        from_det.append(_nme(best.landmarks, gt))
    return np.array(from_gt), np.array(from_det), missed


def test_landmarks_from_ground_truth_boxes(landmark_errors):
    from_gt, _, _ = landmark_errors
    assert len(from_gt) == 43
    assert from_gt.mean() < 0.01


def test_landmarks_from_detected_faces(landmark_errors):
    _, from_det, missed = landmark_errors
    assert missed <= 1
    assert from_det.mean() < 0.05
    assert np.median(from_det) < 0.03


def test_five_from_68_and_predictor_box():
    lm = np.zeros((68, 2), np.float32)
    lm[36:42] = (10, 20)
    lm[42:48] = (30, 20)
    lm[30] = (20, 30)
    lm[48], lm[54] = (12, 40), (28, 40)
    five = five_from_68(lm)
    assert five.tolist() == [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]]
    with pytest.raises(ValueError):
        five_from_68(np.zeros((5, 2)))
    f = Face(box=Box(0, 0, 1, 1), detector_score=1, detector="mtcnn", keypoints=five)
    b = predictor_box(f)
    # centred between eyes and mouth, side proportional to the eye-mouth distance (20 px)
    assert b.center[0] == pytest.approx(20)
    assert b.width == pytest.approx(2.18 * 20, rel=1e-3)
    hog = Face(box=Box(1, 2, 3, 4), detector_score=1, detector="hog")
    assert predictor_box(hog) == hog.box
