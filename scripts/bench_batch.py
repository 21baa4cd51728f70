#!/usr/bin/env python
"""Local batch throughput against single-photo analysis (``make bench``, issue 14's target).

In one run, on the same SCUT-FBP5500 photos (350x350) and the same default heads:

* ``single_ms``: the median time of ``facecore.analyze`` on one photo (the default analyzer in
  this process, after a warm-up; the machine's threads as they are);
* ``batch_ms_per_photo[w]``: the wall time of ``facecore.batch.run_batch(..., workers=w)`` over
  all the photos into a fresh CSV, divided by the number of photos (worker start-up and model
  loading included);
* ``ratio[w]``: batch per photo / single (0.5 is perfect use of two cores; the target is
  <= 0.6 with 2 workers).

    .venv/bin/python scripts/bench_batch.py --data ../shared/data [--photos 400] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--single", type=int, default=60, help="photos timed one by one")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    folder = args.data / "scut-fbp5500" / "images"
    if not folder.is_dir():
        print(f"error: {folder} not found", file=sys.stderr)
        return 2
    import numpy as np

    import facecore
    from facecore.batch import run_batch

    every = sorted(str(p) for p in folder.glob("*.jpg"))
    rng = np.random.default_rng(args.seed)
    photos = [every[i] for i in sorted(rng.choice(len(every), args.photos, replace=False))]

    analyzer = facecore.FaceAnalyzer().load()
    for p in photos[:5]:
        analyzer.analyze(p)
    times = []
    for p in photos[: args.single]:
        t0 = time.perf_counter()
        analyzer.analyze(p)
        times.append((time.perf_counter() - t0) * 1000.0)
    single = statistics.median(times)
    doc: dict[str, object] = {
        "photos": len(photos),
        "single_photos": len(times),
        "single_ms": round(single, 2),
        "heads": list(analyzer.config.stage_names),
        "batch_ms_per_photo": {},
        "ratio": {},
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
    }
    print(f"single photo (median of {len(times)}): {single:.2f} ms")
    for w in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.csv"
            t0 = time.perf_counter()
            summary = run_batch(photos, out, workers=w, progress=False)
            wall = time.perf_counter() - t0
            with out.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        assert summary.processed == len(photos) and {r["path"] for r in rows} == set(photos)
        per = wall * 1000.0 / len(photos)
        doc["batch_ms_per_photo"][str(w)] = round(per, 2)
        doc["ratio"][str(w)] = round(per / single, 3)
        print(f"batch --workers {w}: {per:.2f} ms per photo = {per / single:.3f}x single")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    raise SystemExit(main())
