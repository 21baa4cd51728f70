#!/usr/bin/env python
"""68-point landmark error on the faces annotated in tests/fixtures/dlib_faces.

Prints the inter-ocular normalised mean error (NME) of the landmark predictor started from the
annotated boxes, and of the whole pipeline (HOG detector upsampled once, then landmarks).

    .venv/bin/python scripts/landmark_error.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def evaluate(folder: Path) -> dict[str, float]:
    from facecore.analyzer import FaceAnalyzer
    from facecore.detect import DetectorConfig
    from facecore.evaluation import inter_ocular_nme, read_dlib_xml
    from facecore.io import load_image
    from facecore.landmarks import LandmarkPredictor
    from facecore.types import Face

    predictor = LandmarkPredictor()
    analyzer = FaceAnalyzer(detector=DetectorConfig("hog", hog_upsample=1), stages=("landmarks",))
    from_box, from_det, missed, cache = [], [], 0, {}
    for xml in sorted(folder.glob("*_with_face_landmarks.xml")):
        for ann in read_dlib_xml(xml):
            if len(ann.points) != 68:
                continue
            if ann.file not in cache:
                img = load_image(folder / ann.file)
                cache[ann.file] = (img, analyzer.analyze(img))
            img, faces = cache[ann.file]
            start = Face(box=ann.box, detector_score=1.0, detector="hog")
            from_box.append(inter_ocular_nme(predictor.predict(img, start), ann.points))
            best = max(faces, key=lambda f: f.box.iou(ann.box), default=None)
            if best is None or best.box.iou(ann.box) < 0.3:
                missed += 1
                continue
            from_det.append(inter_ocular_nme(best.landmarks, ann.points))
    return {
        "faces": len(from_box),
        "nme_from_boxes_mean": float(np.mean(from_box)),
        "nme_detected_mean": float(np.mean(from_det)),
        "nme_detected_median": float(np.median(from_det)),
        "nme_detected_max": float(np.max(from_det)),
        "faces_missed_by_detector": missed,
    }


def main() -> int:
    r = evaluate(ROOT / "tests" / "fixtures" / "dlib_faces")
    print(
        f"{r['faces']} faces; NME from annotated boxes {100 * r['nme_from_boxes_mean']:.2f}%; "
        f"whole pipeline mean {100 * r['nme_detected_mean']:.2f}%, median "
        f"{100 * r['nme_detected_median']:.2f}%, max {100 * r['nme_detected_max']:.2f}%; "
        f"missed by the detector: {r['faces_missed_by_detector']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
