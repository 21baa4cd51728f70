#!/usr/bin/env python
"""Measure ``tests/fixtures/golden_scores.json``: the default analyzer on every fixture photo.

For each photo under ``tests/fixtures`` (largest face first): the box, the shipped
attractiveness model's score, the shipped age model's estimate and the quality model's quality.
Rerun it only when a model file, the detector, landmarks or alignment changes on purpose; the
golden tests then guard the new numbers.

    .venv/bin/python scripts/golden_scores.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "golden_scores.json"
SUFFIXES = {".jpg", ".jpeg", ".png"}


def main() -> int:
    import torch

    from facecore.analyzer import FaceAnalyzer

    torch.set_num_threads(1)  # as the golden tests run (conftest.single_threaded)
    analyzer = FaceAnalyzer().load()
    models = {
        name: analyzer.stage(name).model_name for name in ("attractiveness", "age", "quality")
    }
    table: dict[str, object] = {
        "_about": (
            "Measured by scripts/golden_scores.py with the default FaceAnalyzer (detector auto, "
            f"every default head): attractiveness model {models['attractiveness']}, age model "
            f"{models['age']}, quality model {models['quality']}. Per photo under "
            "tests/fixtures, its faces largest first: box (x1, y1, x2, y2), score, age, quality."
        )
    }
    photos = sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in SUFFIXES)
    for path in photos:
        faces = analyzer.analyze(path)
        table[str(path.relative_to(FIXTURES))] = [
            {
                "box": [round(v, 3) for v in (f.box.x1, f.box.y1, f.box.x2, f.box.y2)],
                "score": round(f.predictions["attractiveness"].value, 4),
                "age": round(f.predictions["age"].value, 3),
                "quality": round(f.predictions["quality"].value, 4),
            }
            for f in faces
        ]
    OUT.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(
        f"{len(photos)} photos, {sum(len(v) for v in table.values() if isinstance(v, list))} "
        f"faces written to {OUT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
