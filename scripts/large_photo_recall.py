#!/usr/bin/env python
"""What detecting a large JPEG on its DCT-scaled copy costs in faces found, and saves in time.

``DetectorConfig.large_jpeg_share`` (default 0.5) lets the detector see a JPEG of at least twice
``max_side`` (1280) on the largest DCT-scaled copy (1/2, 1/4 or 1/8) that fits 1280 px when
that copy keeps half the pixels of a 1280-px one; 1.0 always detects at 1280 px. This script
enlarges every photo of the dlib face-detection fixtures (``dlib_faces``: small faces, with
boxes in their imglab XML files) to phone-photo sizes, JPEG q 90 (as
``scripts/make_large_photo.py`` does), and runs the default detector through
:meth:`facecore.FaceAnalyzer.detect` with each setting: recall at IoU 0.5 against the true
boxes, false positives, and the median time of decode + detection.

    .venv/bin/python scripts/large_photo_recall.py --out large_recall.json

This module implements no paper.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from detector_eval import boxed_recall  # scripts/ is sys.path[0]
from make_large_photo import make_large_photo

ROOT = Path(__file__).resolve().parent.parent
DLIB_FACES = ROOT.parent / "shared" / "data" / "fixtures" / "dlib_faces"
XMLS = ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml")
#: Longer sides of common phone photos: 8, 11-12 (3:4 portrait of obama.jpg's bench) and 12 MP.
LONGER_SIDES = (3264, 3780, 4032)
SHARES = (1.0, 0.5)

log = logging.getLogger("large_photo_recall")


def true_boxes(folder: Path) -> dict[str, list]:
    """The annotated face boxes of each photo of the dlib fixtures (both XML files)."""
    from facecore.evaluation import read_dlib_xml

    boxes: dict[str, list] = defaultdict(list)
    for name in XMLS:
        for face in read_dlib_xml(folder / name):
            boxes[face.file].append(face.box)
    return dict(boxes)


def run(folder: Path, sides: tuple[int, ...], repeat: int) -> dict[str, object]:
    from PIL import Image

    from facecore import FaceAnalyzer
    from facecore.detect import DetectorConfig
    from facecore.types import Box

    truth = true_boxes(folder)
    analyzers = {s: FaceAnalyzer(detector=DetectorConfig(large_jpeg_share=s)) for s in SHARES}
    for a in analyzers.values():
        a.detector.load()
    out: dict[str, object] = {"photos": len(truth), "faces": sum(map(len, truth.values()))}
    with tempfile.TemporaryDirectory() as tmp:
        for side in sides:
            found: dict[float, dict[str, list]] = {s: {} for s in SHARES}
            times: dict[float, list[float]] = {s: [] for s in SHARES}
            views: dict[float, set[int]] = {s: set() for s in SHARES}
            for name in sorted(truth):
                with Image.open(folder / name) as im:
                    w, h = im.size
                k = side / max(w, h)
                path = make_large_photo(
                    Path(tmp) / "large.jpg", folder / name, (round(w * k), round(h * k))
                )
                data = path.read_bytes()
                for share, analyzer in analyzers.items():
                    decoded = analyzer.decode(data)
                    views[share].add(max(decoded.view.shape[:2]))
                    decoded.pixels  # noqa: B018  its background decode ends before the timing
                    spent = []
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        faces = analyzer.detect(data)
                        spent.append(time.perf_counter() - t0)
                    times[share].append(float(np.median(spent)) * 1000.0)
                    found[share][name] = [Box(*(v / k for v in f.box.as_tuple())) for f in faces]
            row = {}
            for share in SHARES:
                row[str(share)] = {
                    **boxed_recall(found[share], truth, 0.5),
                    "detector_input_longer_side": sorted(views[share]),
                    "median_ms": round(float(np.median(times[share])), 1),
                }
            out[str(side)] = row
            log.info("%d px: %s", side, json.dumps(row))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=DLIB_FACES)
    ap.add_argument("--sides", type=int, nargs="+", default=list(LONGER_SIDES))
    ap.add_argument("--repeat", type=int, default=3, help="timed detections per photo")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder} is missing (the shared data's fixtures)")
    result = run(args.folder, tuple(args.sides), args.repeat)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
        log.info("wrote %s", args.out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
