"""Time beautification: the whole ``beautify`` call on a 512 x 512 photo, its parts, and the MLS
warp of a 2000 x 2000 photo.

Each figure is the median (and the minimum) of ``--runs`` timed runs after one warm-up run, on
the CPU threads torch is configured with. The 512 x 512 photo is a held-out SCUT-FBP5500 photo
scaled up (``--image`` to use another; it is resized to 512 x 512); the 2000 x 2000 photo is the
same scaled up again, with its landmarks scaled with it, warped with the 68 landmarks + 32 border
handles at the default grid step (and with beautify's face-region warp).

    .venv/bin/python scripts/bench_beautify.py --data ../shared/data

The machine should be otherwise idle: other jobs on the same cores inflate every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecore.analyzer import FaceAnalyzer  # noqa: E402
from facecore.beauty.mls import mls_warp  # noqa: E402
from facecore.beauty.pipeline import (  # noqa: E402
    DEFAULT_SMOOTH,
    DEFAULT_WARP,
    SCORE_STAGE,
    beautify,
    grid_step,
    warp_face,
)
from facecore.beauty.shape import load_reference, shape_target  # noqa: E402
from facecore.beauty.skin import smooth_skin  # noqa: E402
from facecore.io import load_image  # noqa: E402
from facecore.types import Face  # noqa: E402


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median, min) wall time of ``fn`` in ms over ``runs`` runs after one warm-up."""
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts)), 1000 * float(np.min(ts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    import torch

    ref = load_reference()
    source = args.image or args.data / "scut-fbp5500" / "images" / ref.holdout_ids[0]
    img = cv2.resize(load_image(source), (512, 512), interpolation=cv2.INTER_CUBIC)
    analyzer = FaceAnalyzer(stages=(SCORE_STAGE,)).load()
    rgb, faces = analyzer.analyze_image(img, stages=(SCORE_STAGE,))
    face = faces[0]
    lm = np.asarray(face.landmarks, np.float64)
    score = float(face.predictions[SCORE_STAGE].value)
    target = shape_target(lm, score, ref, warp=DEFAULT_WARP).landmarks
    warped, moved = warp_face(img, lm, target)
    again = Face(box=face.box, detector_score=face.detector_score, detector=face.detector)

    big = cv2.resize(img, (2000, 2000), interpolation=cv2.INTER_CUBIC)
    k = 2000 / 512
    t = np.linspace(0, 1999, 9)[:-1]
    edge = [np.stack([t, 0 * t], 1), np.stack([1999 + 0 * t, t], 1)]
    edge += [np.stack([1999 - t, 1999 + 0 * t], 1), np.stack([0 * t, 1999 - t], 1)]
    fixed_big = np.concatenate(edge)  # 32 fixed handles on the photo's border
    src_big = np.concatenate([lm * k, fixed_big])
    dst_big = np.concatenate([target * k, fixed_big])

    r = args.runs
    rows = [
        (
            "512x512: beautify(), defaults (both scorings)",
            timed(lambda: beautify(img, analyzer=analyzer), r),
        ),
        (
            "512x512: beautify(rescore=False)",
            timed(lambda: beautify(img, analyzer=analyzer, rescore=False), r),
        ),
        (
            "  analysis: detect + landmarks + trunk + attractiveness",
            timed(lambda: analyzer.analyze_image(img, stages=(SCORE_STAGE,)), r),
        ),
        (
            "  shape target (K=10 of 3200 references)",
            timed(lambda: shape_target(lm, score, ref), r),
        ),
        (
            f"  MLS warp of the face region (rigid, grid {grid_step(lm)})",
            timed(lambda: warp_face(img, lm, target), r),
        ),
        ("  skin smoothing", timed(lambda: smooth_skin(warped, target, DEFAULT_SMOOTH), r)),
        (
            "  second scoring (landmarks + trunk + attractiveness)",
            timed(lambda: analyzer.run_stages(warped, [again], stages=(SCORE_STAGE,)), r),
        ),
        ("2000x2000: MLS warp (rigid, grid 10)", timed(lambda: mls_warp(big, src_big, dst_big), r)),
        (
            "2000x2000: MLS warp (affine, grid 10)",
            timed(lambda: mls_warp(big, src_big, dst_big, kind="affine"), r),
        ),
        (
            f"2000x2000: beautify's face-region warp (grid {grid_step(lm * k)})",
            timed(lambda: warp_face(big, lm * k, target * k), r),
        ),
        (
            "2000x2000: skin smoothing",
            timed(lambda: smooth_skin(big, target * k, DEFAULT_SMOOTH), r),
        ),
    ]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}; {r} runs; "
        f"image {source.name}"
    )
    print("| what | median ms | min ms |")
    print("|---|---:|---:|")
    for name, (med, low) in rows:
        print(f"| {name} | {med:.1f} | {low:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
