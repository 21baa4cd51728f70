#!/usr/bin/env python
"""Write docs/geometric_features.md: the table of the 42 geometric features, from the code.

    .venv/bin/python scripts/geometric_table.py [--check]

``--check`` exits 1 when the committed file differs from what the code gives (a test runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "geometric_features.md"


def render() -> str:
    from facecore.features.geometric import GEOMETRIC_FEATURES, NORMALISERS

    def pts(p: tuple[int, ...]) -> str:
        return ", ".join(map(str, p)) if len(p) < 4 else f"{p[0]}-{p[-1]} (mean)"

    lines = [
        "# The 42 geometric features",
        "",
        "Generated from `facecore/features/geometric.py` by `scripts/geometric_table.py`; do not",
        "edit by hand. Each feature is the distance between the mean of point group A and the",
        "mean of point group B (0-based iBUG 68-point indices), divided by a normaliser distance,",
        "so it is unchanged by translating, rotating or scaling the face.",
        "",
        "| # | name | definition | A | B | normaliser |",
        "|---:|---|---|---|---|---|",
    ]
    for i, f in enumerate(GEOMETRIC_FEATURES):
        lines.append(
            f"| {i} | `{f.name}` | {f.definition} | {pts(f.a)} | {pts(f.b)} | `{f.normaliser}` |"
        )
    lines += ["", "## Normalisers", "", "| name | definition | A | B |", "|---|---|---|---|"]
    for n in NORMALISERS:
        lines.append(f"| `{n.name}` | {n.definition} | {pts(n.a)} | {pts(n.b)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date; run scripts/geometric_table.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
