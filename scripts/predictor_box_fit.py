#!/usr/bin/env python
"""Measure the constants of :func:`facecore.landmarks.predictor_box` for a detector's keypoints.

dlib's 68-point shape predictor was trained on dlib's HOG boxes. For a face whose detector gives
keypoints (in MTCNN's 5-point layout, :attr:`facecore.types.Face.keypoints`), the predictor is
started from a square built from them with the HOG box's position and scale: centred
``shift * d`` below the midpoint of the eye centre and the mouth centre, side ``side * d``,
``d`` the eye-centre to mouth-centre distance (the mouth centre is the mean of the two mouth
points).

This script measures ``side`` and ``shift`` on photos where HOG (dlib's default settings, as in
``auto``) and the detector both find exactly one face and the two boxes overlap (IoU >= 0.3):
per photo the HOG box's side over ``d`` and the vertical offset of its centre from the midpoint
over ``d``; the constants are the medians. The photos are a fixed subset of SCUT-FBP5500
(frontal portraits, 350x350): ``--photos`` names spread evenly over the sorted file names, so
that each of the four groups (AF, AM, CF, CM) is in it. Not the landmark ground truth of the
evaluation (``tests/fixtures/dlib_faces``): the constants are not tuned against it.

    .venv/bin/python scripts/predictor_box_fit.py --detectors mtcnn blazeface_back blazeface_short

``--set utkface`` reads the same ratios on another set's photos, to see whether
the constants hold there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecore.types import Box  # noqa: E402

log = logging.getLogger("predictor_box_fit")

MIN_IOU = 0.3


def spread_names(paths: Sequence[Path], n: int) -> list[Path]:
    """``n`` of ``paths`` sorted by name, spread evenly (all of them when ``n`` >= their count)."""
    ordered = sorted(paths, key=lambda p: p.name)
    if n >= len(ordered):
        return ordered
    return [ordered[i] for i in np.linspace(0, len(ordered) - 1, n).round().astype(int)]


def geometry(keypoints: np.ndarray) -> tuple[np.ndarray, float]:
    """Midpoint of the eye centre and the mouth centre, and their distance ``d``, of 5 keypoints
    in MTCNN's layout."""
    kp = np.asarray(keypoints, dtype=np.float64)
    eyes = (kp[0] + kp[1]) / 2.0
    mouth = (kp[3] + kp[4]) / 2.0
    return (eyes + mouth) / 2.0, float(np.linalg.norm(mouth - eyes))


def box_ratios(keypoints: np.ndarray, hog: Box) -> tuple[float, float, float]:
    """For one face: HOG's side over ``d``, and its centre's vertical and horizontal offsets from
    the eye-mouth midpoint over ``d`` (positive: below, right)."""
    mid, d = geometry(keypoints)
    cx, cy = hog.center
    side = (hog.width + hog.height) / 2.0
    return side / d, (cy - mid[1]) / d, (cx - mid[0]) / d


def fit(ratios: Sequence[tuple[float, float, float]]) -> dict[str, float]:
    """The constants (medians) and their spread from per-face :func:`box_ratios`."""
    r = np.asarray(ratios, dtype=np.float64).reshape(-1, 3)
    if not len(r):
        raise ValueError("no face found by both detectors")
    q1, q3 = np.percentile(r, [25, 75], axis=0)
    return {
        "faces": len(r),
        "side": float(np.median(r[:, 0])),
        "side_mean": float(r[:, 0].mean()),
        "side_iqr": float(q3[0] - q1[0]),
        "shift": float(np.median(r[:, 1])),
        "shift_mean": float(r[:, 1].mean()),
        "shift_iqr": float(q3[1] - q1[1]),
        "shift_x": float(np.median(r[:, 2])),
    }


def measure(photos: Sequence[Path], detectors: Sequence[str]) -> dict[str, dict[str, float]]:
    """:func:`fit` per detector, against HOG on the same photos."""
    from facecore.detect import DetectorConfig
    from facecore.io import load_image

    hog = DetectorConfig("hog").build()
    dets = {name: DetectorConfig(name).build() for name in detectors}  # type: ignore[arg-type]
    ratios: dict[str, list[tuple[float, float, float]]] = {name: [] for name in detectors}
    for i, path in enumerate(photos):
        image = load_image(path)
        hogs = hog.detect(image)
        if len(hogs) != 1:
            continue
        for name, det in dets.items():
            faces = det.detect(image)
            if len(faces) != 1 or faces[0].keypoints is None:
                continue
            if faces[0].box.iou(hogs[0].box) < MIN_IOU:
                continue
            ratios[name].append(box_ratios(faces[0].keypoints, hogs[0].box))
        if (i + 1) % 50 == 0:
            log.info("%d of %d photos", i + 1, len(photos))
    return {name: fit(r) for name, r in ratios.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--detectors", nargs="+", default=["mtcnn", "blazeface_back", "blazeface_short"]
    )
    parser.add_argument("--set", default="scut-fbp5500", choices=["scut-fbp5500", "utkface"])
    parser.add_argument("--photos", type=int, default=300, help="photos of the set (spread)")
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data", help="data root"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = args.data / args.set / "images"
    photos = spread_names([p for p in folder.iterdir() if p.suffix.lower() == ".jpg"], args.photos)
    results = measure(photos, args.detectors)
    print(f"{len(photos)} {args.set} photos; constants are medians (IQR), d = eye-mouth distance")
    print(
        "| detector | faces | side / d | centre shift / d (down) | mean side, shift | x shift / d |"
    )
    print("|---|---:|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| `{name}` | {r['faces']} | {r['side']:.3f} ({r['side_iqr']:.3f}) | "
            f"{r['shift']:+.4f} ({r['shift_iqr']:.3f}) | {r['side_mean']:.3f}, "
            f"{r['shift_mean']:+.4f} | {r['shift_x']:+.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
