"""scripts/bench_compare.py alternates the two trees and reports medians and after/before."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "bench_compare", ROOT / "scripts" / "bench_compare.py"
)
bench_compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_compare)


def test_trees_alternate_and_the_ratio_is_of_the_pooled_medians(monkeypatch):
    calls = []
    fake = {
        Path("/old"): [{"a": [10.0, 12.0]}, {"a": [11.0, 30.0]}],
        Path("/new"): [{"a": [9.0, 10.0]}, {"a": [10.0, 12.0]}],
    }

    def run_child(tree, image, repeat):
        calls.append(tree)
        return fake[tree][sum(c == tree for c in calls) - 1]

    monkeypatch.setattr(bench_compare, "run_child", run_child)
    cases = bench_compare.compare(
        {"before": Path("/old"), "after": Path("/new")}, Path("x.jpg"), rounds=2, repeat=2
    )
    assert calls == [Path("/old"), Path("/new"), Path("/old"), Path("/new")]
    # medians of [10, 12, 11, 30] and [9, 10, 10, 12]
    assert cases == {"a": {"before_median_ms": 11.5, "after_median_ms": 10.0, "ratio": 0.87}}


def test_a_child_times_every_case_in_a_real_tree():
    image = ROOT / "tests" / "fixtures" / "obama.jpg"
    got = bench_compare.run_child(ROOT, image, repeat=1)
    assert set(got) == {"analyze_default_heads", "http_request_analyze", "http_request_score"}
    assert all(len(v) == 1 and 0 < v[0] < 60_000 for v in got.values())
