#!/usr/bin/env python
"""Per-stage timing of the face pipeline (``make bench``).

Times each stage on one photo (a 350x350 SCUT-FBP5500 photo when ../shared/data is present, else
a bundled test photo) and prints the median, p90 and mean in milliseconds, then writes them to JSON.
The machine's thread count is left as it is (torch and OpenCV use both cores here).

    .venv/bin/python scripts/bench.py [--repeat 30] [--image PATH] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = [
    ROOT.parent / "shared" / "data" / "scut-fbp5500" / "images" / "AF10.jpg",
    ROOT / "tests" / "fixtures" / "obama_small.jpg",
]


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "repeat": repeat,
    }


def pipeline_stages(data: bytes) -> dict[str, Callable[[], object]]:
    """name -> zero-argument callable, for every stage of the foundation pipeline."""
    import numpy as np
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.main import create_app
    from facecore.align import align_face
    from facecore.analyzer import FaceAnalyzer
    from facecore.descriptor import DlibDescriptor, TorchTrunk, face_chips
    from facecore.detect import HogDetector, MtcnnDetector
    from facecore.io import load_image
    from facecore.landmarks import LandmarkPredictor

    img = load_image(data)
    hog, mtcnn = HogDetector(), MtcnnDetector()
    faces = hog.detect(img) or mtcnn.detect(img)
    if not faces:
        raise SystemExit("the bench photo has no detectable face")
    lm = LandmarkPredictor()
    face = lm(img, faces[:1])[0]
    desc = DlibDescriptor()
    trunk = TorchTrunk()
    chips = face_chips(img, [face])
    chips8 = np.repeat(chips, 8, axis=0)
    analyzer = FaceAnalyzer().load()
    client = TestClient(create_app(Settings(), analyzer=analyzer))
    client.__enter__()

    scorer = FaceAnalyzer(stages=("attractiveness",)).load()

    def request(route: str) -> None:
        r = client.post(route, files={"file": ("a.jpg", data, "image/jpeg")})
        assert r.status_code == 200, r.text

    return {
        "decode": lambda: load_image(data),
        "detect_hog": lambda: hog.detect(img),
        "detect_mtcnn": lambda: mtcnn.detect(img),
        "landmarks_68": lambda: lm.predict(img, face),
        "align_112": lambda: align_face(img, face.landmarks, size=112),
        "dlib_chip_150": lambda: face_chips(img, [face]),
        "descriptor_dlib_per_chip": lambda: desc.compute(chips),
        "trunk_torch_per_chip": lambda: trunk.compute(chips),
        "trunk_torch_batch8": lambda: trunk.compute(chips8),
        "analyze_whole": lambda: analyzer.analyze(data),
        "score_whole": lambda: scorer.analyze(data),
        "http_request_faces": lambda: request("/v1/faces"),
        "http_request_score": lambda: request("/v1/score"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "bench.json")
    args = ap.parse_args(argv)
    image = args.image or next(p for p in DEFAULT_IMAGES if p.exists())
    data = image.read_bytes()

    import torch
    from PIL import Image

    results = {}
    for name, fn in pipeline_stages(data).items():
        results[name] = timeit(fn, args.repeat)
    w, h = Image.open(image).size
    report = {
        "image": str(
            image.relative_to(ROOT.parent) if image.is_relative_to(ROOT.parent) else image
        ),
        "image_size": [w, h],
        "machine": {
            "cpu_count": __import__("os").cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "stages": results,
    }
    print(f"image {report['image']} ({w}x{h}), {args.repeat} runs each")
    print(f"{'stage':<22}{'median ms':>11}{'p90 ms':>10}{'mean ms':>10}")
    for name, r in results.items():
        print(f"{name:<22}{r['median_ms']:>11.2f}{r['p90_ms']:>10.2f}{r['mean_ms']:>10.2f}")
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
