#!/usr/bin/env python
"""Compare two ``cv.json`` files number by number (does a recipe reproduce a model's figures?).

    .venv/bin/python scripts/compare_cv.py OLD.cv.json NEW.cv.json [--tol 1e-4]

Walks both documents and reports every numeric leaf whose values differ by more than ``--tol``
(absolute), every key found in one file only, and every non-numeric value that differs. Timings
(any key path containing ``seconds``, ``timings`` or ``ms_per_face``) are skipped. Exit 0 when
nothing differs, 1 otherwise. This script implements no paper.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SKIP = ("seconds", "timings", "ms_per_face")


def differences(a: Any, b: Any, tol: float, path: str = "") -> list[str]:
    """Every difference between ``a`` and ``b`` beyond ``tol``, as ``path: a != b`` lines."""
    if any(s in path for s in SKIP):
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in the first" for k in a.keys() - b.keys()]
        out += [f"{path}/{k}: only in the second" for k in b.keys() - a.keys()]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], tol, f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, tol, f"{path}[{i}]")
        ]
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool):
        return [] if abs(a - b) <= tol else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    for path in (args.first, args.second):
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    diffs = differences(
        json.loads(args.first.read_text()), json.loads(args.second.read_text()), args.tol
    )
    for d in sorted(diffs):
        print(d)
    print(f"{len(diffs)} difference(s) beyond {args.tol}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
