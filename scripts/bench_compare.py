"""Is this tree slower than another? The same timings in two checkouts, in alternating processes.

``make bench`` times one tree; two runs at different moments differ by more than the changes
one wants to see (a busy minute, a warm cache). This script times the default ``analyze`` and
the in-process HTTP routes in ``--before`` and ``--after`` (each a checkout of facecore with
the same virtual environment), one child process per tree and round, alternating
(before, after, before, after, ...), and reports each case's median over all rounds per tree
and the ratio after/before (below 1: faster).

Cases, on one 350x350 SCUT-FBP5500 photo (``--image``):

* ``analyze_default_heads``: ``FaceAnalyzer().analyze`` with the default heads;
* ``http_request_analyze`` / ``http_request_score``: ``POST /v1/analyze`` and ``/v1/score``
  through the app with its default settings (thread workers of one thread each), as
  ``scripts/bench.py`` times them.

    .venv/bin/python scripts/bench_compare.py --before /path/to/old/checkout \\
        [--after .] [--rounds 3] [--repeat 30] [--out compare.json]

Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("bench_compare")

#: What a child runs in its tree: prints one JSON line of per-case lists of milliseconds.
CHILD = r"""
import json, logging, sys, time
from pathlib import Path
logging.disable(logging.CRITICAL)
image, repeat = Path(sys.argv[1]), int(sys.argv[2])
data = image.read_bytes()
from fastapi.testclient import TestClient
from app.core.config import Settings
from app.main import create_app
from facecore.analyzer import FaceAnalyzer
heads = FaceAnalyzer().load()

def timed(fn):
    for _ in range(3):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out

result = {"analyze_default_heads": timed(lambda: heads.analyze(data))}
with TestClient(create_app(Settings(), analyzer=heads)) as client:
    for route in ("analyze", "score"):
        def post(route=route):
            r = client.post(f"/v1/{route}", files={"file": ("a.jpg", data, "image/jpeg")})
            assert r.status_code == 200, r.text
        result[f"http_request_{route}"] = timed(post)
print(json.dumps(result))
"""


def run_child(tree: Path, image: Path, repeat: int) -> dict[str, list[float]]:
    """The child's timings in ``tree`` (its own ``facecore`` and ``app`` first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(image), str(repeat)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(
    trees: dict[str, Path], image: Path, rounds: int, repeat: int
) -> dict[str, dict[str, float]]:
    """Each case's median per tree over ``rounds`` alternating child runs, and after/before."""
    times: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for r in range(rounds):
        for name, tree in trees.items():
            for case, ms in run_child(tree, image, repeat).items():
                times[name].setdefault(case, []).extend(ms)
            log.info("round %d/%d: %s done", r + 1, rounds, name)
    cases = {}
    for case in times["before"]:
        before = float(np.median(times["before"][case]))
        after = float(np.median(times["after"][case]))
        cases[case] = {
            "before_median_ms": round(before, 3),
            "after_median_ms": round(after, 3),
            "ratio": round(after / before, 3),
        }
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="the checkout to compare against")
    ap.add_argument("--after", type=Path, default=Path("."), help="default: this checkout")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument(
        "--image",
        type=Path,
        default=Path("../shared/data/scut-fbp5500/images/AF10.jpg"),
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    cases = compare(trees, args.image.resolve(), args.rounds, args.repeat)
    print(f"{'case':<24}{'before ms':>11}{'after ms':>10}{'after/before':>14}")
    for case, c in cases.items():
        print(
            f"{case:<24}{c['before_median_ms']:>11.2f}{c['after_median_ms']:>10.2f}"
            f"{c['ratio']:>14.3f}"
        )
    report = {
        "trees": {k: str(v) for k, v in trees.items()},
        "rounds": args.rounds,
        "repeat": args.repeat,
        "image": str(args.image),
        "cases": cases,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
