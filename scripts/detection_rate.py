#!/usr/bin/env python
"""Share of SCUT-FBP5500 photos in which the detectors find a face.

Every photo shows one face, so the figure that matters is how often the ``auto`` detector (HOG,
then MTCNN where HOG finds nothing) finds at least one face, and how often exactly one.

    .venv/bin/python scripts/detection_rate.py [--data ../shared/data] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos")
    ap.add_argument("--json", type=Path, default=None, help="write the counts here")
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from facecore.analyzer import FaceAnalyzer

    folder = args.data / "scut-fbp5500" / "images"
    if not folder.is_dir():
        print(f"error: {folder} not found", file=sys.stderr)
        return 2
    paths = sorted(folder.glob("*.jpg"))[: args.limit]
    analyzer = FaceAnalyzer(detector="auto", stages=())
    counts: Counter[str] = Counter()
    misses = []
    t0 = time.perf_counter()
    for p in tqdm(paths, desc="detect", unit="img"):
        faces = analyzer.detect(p)  # auto: HOG, then MTCNN where HOG finds nothing
        if faces:
            counts[f"by_{faces[0].detector}"] += 1
        counts["at_least_one"] += bool(faces)
        counts["exactly_one"] += len(faces) == 1
        if not faces:
            misses.append(p.name)
    n = len(paths)
    result = {
        "photos": n,
        "at_least_one": counts["at_least_one"],
        "exactly_one": counts["exactly_one"],
        "found_by_hog": counts["by_hog"],
        "found_by_mtcnn_fallback": counts["by_mtcnn"],
        "rate_at_least_one": counts["at_least_one"] / n,
        "rate_exactly_one": counts["exactly_one"] / n,
        "missed": misses,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(
        f"{n} photos: a face in {result['at_least_one']} "
        f"({100 * result['rate_at_least_one']:.2f}%),"
        f" exactly one in {result['exactly_one']} ({100 * result['rate_exactly_one']:.2f}%);"
        f" HOG {result['found_by_hog']}, MTCNN fallback {result['found_by_mtcnn_fallback']};"
        f" missed: {', '.join(misses) or 'none'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
