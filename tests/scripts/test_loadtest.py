"""scripts/loadtest.py: the overload and soak reports and their pass rules on made-up answers
and samples, and a short overload and soak run against a real uvicorn server over a fake
analyzer (``tests/app/servers.py``'s ``slow_app``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("loadtest", ROOT / "scripts" / "loadtest.py")
loadtest = importlib.util.module_from_spec(_spec)
sys.modules["loadtest"] = loadtest  # dataclasses look their module up
_spec.loader.exec_module(loadtest)


def answers(counts: dict[str, int], latency_s: dict[str, float], seconds: float):
    """Made-up answers: ``counts[status]`` answers of ``latency_s[status]`` each."""
    out = loadtest.Answers(seconds=seconds)
    for status, n in counts.items():
        for _ in range(n):
            out.add(status, latency_s[status])
    return out


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted
    assert loadtest.percentile(values, 0.50) == 50.0
    assert loadtest.percentile(values, 0.99) == 99.0
    assert loadtest.percentile(values, 1.0) == 100.0
    assert loadtest.percentile([0.3], 0.99) == 0.3
    assert loadtest.percentile([], 0.5) is None


def test_summarize_counts_every_status_and_times_all_answers():
    a = answers(
        {"200": 90, "503": 9, "error:ConnectionResetError": 1},
        {"200": 0.4, "503": 0.002, "error:ConnectionResetError": 5.0},
        seconds=10.0,
    )
    a.latencies[0] = 0.9  # the slowest 200
    s = loadtest.summarize(a)
    assert s["answers"] == 99  # a connection error is not an answer
    assert s["status_counts"] == {"200": 90, "503": 9, "error:ConnectionResetError": 1}
    assert s["ok"] == 90 and s["ok_per_s"] == 9.0 and s["answers_per_s"] == 9.9
    assert s["p50_ms"] == 400.0  # of all 99 answers: 9 refusals at 2 ms, then the 200s
    assert s["p99_ms"] == 900.0  # rank ceil(0.99 x 99) = 99 of 99
    assert s["ok_p99_ms"] == 900.0  # rank 90 of 90
    refused = loadtest.summarize(answers({"503": 10}, {"503": 0.001}, seconds=2.0))
    assert refused["ok_per_s"] == 0.0 and refused["ok_p50_ms"] is None
    assert refused["p99_ms"] == 1.0


def overload_report(calm_ok=53.3, storm_ok=46.0, storm_p99=900.0, statuses=None, ready=True):
    calm = {"status_counts": {"200": 2132}, "ok_per_s": calm_ok, "p99_ms": 300.0}
    storm = {
        "status_counts": statuses or {"200": 1840, "503": 20000},
        "ok_per_s": storm_ok,
        "p99_ms": storm_p99,
    }
    after = {"ready": ready, "readyz_status": 200 if ready else 503}
    return {"calm": calm, "storm": storm, "after": after}


def test_overload_rule_passes_at_the_targets_and_fails_past_each():
    assert loadtest.overload_failures(overload_report()) == []
    # At the bounds: 0.85 x the calm goodput, p99 1 s.
    assert loadtest.overload_failures(overload_report(calm_ok=40.0, storm_ok=34.0)) == []
    assert loadtest.overload_failures(overload_report(storm_p99=1000.0)) == []
    (why,) = loadtest.overload_failures(overload_report(calm_ok=53.3, storm_ok=31.5))
    assert why.startswith("storm goodput 31.5/s < 0.85 x calm 53.3/s")
    (why,) = loadtest.overload_failures(overload_report(storm_p99=1400.0))
    assert "p99" in why
    (why,) = loadtest.overload_failures(overload_report(statuses={"200": 9, "504": 1}))
    assert why == "storm: statuses other than 200 and 503: {'504': 1}"
    (why,) = loadtest.overload_failures(overload_report(statuses={"200": 9, "error:timeout": 1}))
    assert "error:timeout" in why
    (why,) = loadtest.overload_failures(overload_report(ready=False))
    assert why.startswith("/readyz not 200")
    assert len(loadtest.overload_failures(overload_report(calm_ok=0.0, storm_p99=None))) == 2


def soak_report(rss, fds, statuses=None, ready=True):
    samples = [{"rss_mib": r, "fds": f} for r, f in zip(rss, fds, strict=True)]
    return {
        "phase": {"status_counts": statuses or {"200": 95000, "503": 3}},
        "samples": samples,
        "after": {"ready": ready, "readyz_status": 200},
    }


def test_soak_growth_compares_the_medians_of_the_first_and_last_quarter():
    # 12 samples: quarters of 3. One high sample in a quarter does not move its median.
    rss = [2000, 2400, 2000, 2010, 2020, 2030, 2040, 2050, 2060, 2090, 2100, 2300]
    g = loadtest.growth([{"rss_mib": r} for r in rss], "rss_mib")
    assert g == {"first_quarter": 2000, "last_quarter": 2100, "change": 100}


def test_soak_rule_holds_flat_series_and_fails_on_growth_errors_and_too_few_samples():
    flat_fds = [40, 41, 40, 40, 42, 40, 40, 41, 40, 40, 40, 40]
    ok = soak_report([2000.0] * 6 + [2098.0] * 6, flat_fds)  # +4.9%
    assert loadtest.soak_failures(ok) == []
    (why,) = loadtest.soak_failures(soak_report([2000.0] * 6 + [2102.0] * 6, flat_fds))
    assert why == "memory grew 2000.0 -> 2102.0 MiB (> 5%)"
    assert loadtest.soak_failures(soak_report([2000.0] * 12, [40] * 6 + [48] * 6)) == []
    (why,) = loadtest.soak_failures(soak_report([2000.0] * 12, [40] * 6 + [49] * 6))
    assert why == "open descriptors grew 40 -> 49 (> +8)"
    assert loadtest.soak_failures(soak_report([2000.0] * 12, [40] * 6 + [45] * 6), fd_tolerance=4)
    (why,) = loadtest.soak_failures(soak_report([2000.0] * 7, [40] * 7))
    assert why == "7 samples, at least 8 needed"
    (why,) = loadtest.soak_failures(soak_report([1.0] * 8, [1] * 8, statuses={"200": 5, "500": 1}))
    assert why == "statuses other than 200 and 503: {'500': 1}"
    assert loadtest.soak_failures(soak_report([1.0] * 8, [1] * 8, ready=False))


def test_table_aligns_columns():
    text = loadtest.table([{"a": 1, "b": {"200": 3}}, {"a": 100, "b": None}], ("a", "b"))
    assert text.splitlines() == ["  a      b", "  1  200:3", "100      -"]


@pytest.fixture
def fake_server():
    """The service over ``slow_app``'s analyzer (no face, 20 ms an image, two thread workers, a
    queue of 32) in a real uvicorn process."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "servers:slow_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'app'}",
        "SLOW_DELAY": "0.02",
        "FACECORE_WORKERS": "2",
        "FACECORE_LOG_LEVEL": "WARNING",
    }
    server = loadtest.Server(command, env, "pytest")
    try:
        server.wait_ready(timeout=120)
        yield server
    finally:
        server.stop()


def test_a_short_overload_and_soak_run_against_a_real_server(fake_server):
    images = loadtest.photos(0)[:5]
    report = loadtest.overload(
        fake_server.pid, fake_server.url, images, seconds=2.0, warmup=0.5, storm_clients=64
    )
    calm, storm = report["calm"], report["storm"]
    # 8 clients never fill a queue of 32: every answer is a 200.
    assert set(calm["status_counts"]) == {"200"} and calm["ok"] > 0
    # 64 clients do: refusals, on kept-alive connections (no connection error), and 200s.
    assert set(storm["status_counts"]) == {"200", "503"}, storm["status_counts"]
    assert storm["ok"] > 0 and storm["status_counts"]["503"] > 0
    assert storm["answers"] == sum(storm["status_counts"].values())
    assert calm["clients"] == 8 and storm["clients"] == 64 and not storm["honour_retry_after"]
    for p in (calm, storm):
        assert p["before"]["processes"] == 1 and p["before"]["fds"] > 0
        assert p["before"]["rss_mib"] > 50
        assert p["p50_ms"] <= p["p99_ms"]
    assert report["after"]["ready"] and report["after"]["healthz_status"] == 200
    assert report["goodput_ratio"] == round(storm["ok_per_s"] / calm["ok_per_s"], 3)
    assert [m for m in report["missed"] if "statuses" in m or "readyz" in m] == []

    soak = loadtest.soak(
        fake_server.pid, fake_server.url, images, seconds=3.0, warmup=0.5, every=0.25
    )
    assert set(soak["phase"]["status_counts"]) == {"200"}
    assert len(soak["samples"]) >= 10
    assert [s["t_s"] for s in soak["samples"]] == sorted(s["t_s"] for s in soak["samples"])
    assert soak["missed"] == [], soak["missed"]
