"""scripts/compare_cv.py finds every number that moved, and only those."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("compare_cv", ROOT / "scripts" / "compare_cv.py")
compare_cv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_cv)

A = {
    "learners": {"top": {"mae": 4.306, "cs5": 0.718}},
    "rows": [1.0, 2.0],
    "chosen": "top",
    "seconds": {"total": 100.0},
}


def test_numbers_within_the_tolerance_and_timings_are_no_difference():
    b = json.loads(json.dumps(A))
    b["learners"]["top"]["mae"] += 5e-5
    b["seconds"]["total"] = 7.0
    assert compare_cv.differences(A, b, 1e-4) == []
    # The quality recipe's milliseconds per face are a timing too.
    a = {"candidates": {"net": {"ms_per_face": 0.514, "parameters": 82177}}}
    c = {"candidates": {"net": {"ms_per_face": 0.358, "parameters": 82177}}}
    assert compare_cv.differences(a, c, 1e-4) == []
    c["candidates"]["net"]["parameters"] = 1
    assert compare_cv.differences(a, c, 1e-4) == ["/candidates/net/parameters: 82177 != 1"]


def test_each_moved_number_missing_key_and_changed_text_is_reported(tmp_path):
    b = json.loads(json.dumps(A))
    b["learners"]["top"]["mae"] = 7.612
    b["rows"][1] = 2.5
    b["chosen"] = "stack"
    del b["learners"]["top"]["cs5"]
    diffs = compare_cv.differences(A, b, 1e-4)
    assert sorted(diffs) == [
        "/chosen: 'top' != 'stack'",
        "/learners/top/cs5: only in the first",
        "/learners/top/mae: 4.306 != 7.612",
        "/rows[1]: 2.0 != 2.5",
    ]
    (tmp_path / "a.json").write_text(json.dumps(A))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert compare_cv.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert compare_cv.main([str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
