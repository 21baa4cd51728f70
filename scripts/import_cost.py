#!/usr/bin/env python
"""What ``import facecore`` and one ``facecore.analyze`` cost: seconds, modules and memory.

    .venv/bin/python scripts/import_cost.py [--photo tests/fixtures/obama.jpg] [--runs 5]
    cd OTHER_CHECKOUT && .venv/bin/python THIS_CHECKOUT/scripts/import_cost.py   # another tree

The package measured is the one in the current directory (each run's ``facecore`` field gives
its path).

Each run is a fresh interpreter (an import is only ever timed once per process) that times
``import facecore`` and then one ``facecore.analyze(photo)`` (the default heads: the first call
imports torch and loads every model), and reads its resident memory (``VmRSS`` of
``/proc/self/status``, Linux) and peak (``ru_maxrss``) after the analysis. The JSON printed
holds each run and the median of every figure, and lists any of the research networks of
:mod:`facecore.nn` that were imported (none should be). Run it on an idle machine; for the
module-by-module import times use ``python -X importtime -c "import facecore"``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

#: The research networks and training tools of facecore.nn (the serving path imports none).
RESEARCH_ZOO = tuple(
    f"facecore.nn.{m}"
    for m in ("vggface", "resnet", "binary", "orn", "ensembles", "regularizers", "losses", "optim")
)

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import facecore
t1 = time.perf_counter()
n_import = len(sys.modules)
faces = facecore.analyze(sys.argv[1])
t2 = time.perf_counter()
rss_kb = next(
    int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")
)
print(json.dumps({
    "import_s": t1 - t0,
    "first_analyze_s": t2 - t1,
    "modules_after_import": n_import,
    "modules_after_analyze": len(sys.modules),
    "rss_mb_after_analyze": rss_kb / 1024,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "faces": len(faces),
    "facecore": facecore.__file__,
    "research_modules": sorted(m for m in sys.modules if m in json.loads(sys.argv[2])),
}))
"""


def one_run(photo: Path) -> dict:
    """One fresh interpreter's figures (see the module docstring)."""
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(photo), json.dumps(RESEARCH_ZOO)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=Path("tests/fixtures/obama.jpg"))
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters (median kept)")
    args = parser.parse_args()
    runs = [one_run(args.photo) for _ in range(args.runs)]
    numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    median = {k: statistics.median(r[k] for r in runs) for k in numeric}
    research = sorted({m for r in runs for m in r["research_modules"]})
    print(json.dumps({"median": median, "research_modules": research, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
