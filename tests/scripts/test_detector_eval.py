"""scripts/detector_eval.py: matching, recall and false positives, landmark and head errors, the
golden drift, the stratified sample, the resumable cache and the decision rule, on synthetic
inputs; and the harness on the golden photos (the default detector must reproduce the table)."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from facecore.types import Box

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    path = ROOT / "scripts" / "detector_eval.py"
    spec = importlib.util.spec_from_file_location("detector_eval", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["detector_eval"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


de = _load_script()


def _box(x, y, side=10.0):
    return Box(x, y, x + side, y + side)


# -- matching ----------------------------------------------------------------------------------
def test_match_is_one_to_one_best_iou_first():
    truth = [_box(0, 0), _box(6, 0)]
    # the first detection overlaps both true boxes, the second only the second one, better
    found = [_box(3, 0), _box(6, 0)]
    assert sorted(de.match(found, truth, 0.3)) == [(0, 0), (1, 1)]
    # at a higher IoU the first detection matches nothing (IoU with either box is 0.538/0.176)
    assert de.match(found, truth, 0.6) == [(1, 1)]
    assert de.match([], truth, 0.3) == [] and de.match(found, [], 0.3) == []


def test_boxed_recall_counts_matches_and_false_positives():
    truth = {"a.jpg": [_box(0, 0), _box(50, 50)], "b.jpg": [_box(0, 0)]}
    found = {
        "a.jpg": [_box(1, 1), _box(100, 100)],  # one hit, one false positive; one face missed
        "b.jpg": [_box(0, 0), _box(0.5, 0.5)],  # a duplicate box: the second is a false positive
    }
    r = de.boxed_recall(found, truth, 0.3)
    assert r == {
        "faces": 3,
        "matched": 2,
        "recall": 0.6667,
        "false_positives": 2,
        "detections": 4,
    }


def test_found_counts():
    assert de.found_counts([0, 1, 2, 1]) == {
        "photos": 4,
        "with_face": 3,
        "exactly_one": 2,
        "faces": 4,
    }


# -- landmarks -------------------------------------------------------------------------------
def _points(shift=0.0):
    pts = np.zeros((68, 2))
    pts[:, 0] = np.arange(68)
    pts[45, 0] = pts[36, 0] + 20.0  # inter-ocular distance 20
    pts[45, 1] = pts[36, 1]
    return pts + shift


def test_landmark_errors_match_detections_to_true_faces():
    truth = {"p.jpg": [(_box(0, 0, 40), _points()), (_box(100, 0, 40), _points())]}
    found = {"p.jpg": [(_box(101, 0, 40), _points(2.0))]}  # only the second face, 2 px off
    errors = de.landmark_errors(found, truth)
    assert errors["p.jpg#0"] is None
    # every point 2 px off diagonally: sqrt(8) / 20
    assert errors["p.jpg#1"] == pytest.approx(np.sqrt(8) / 20)
    s = de.nme_summary(errors)
    assert s["faces"] == 1 and s["missed"] == 1
    assert s["mean"] == pytest.approx(0.14142, abs=1e-5)


def test_paired_nme_uses_the_faces_both_found():
    a = {"x#0": 0.02, "x#1": 0.10, "x#2": None}
    b = {"x#0": 0.03, "x#1": None, "x#2": 0.04}
    assert de.paired_nme(a, b) == (1, 0.02, 0.03)
    assert de.paired_nme({"x#0": None}, b) == (0, None, None)


# -- the heads' error -------------------------------------------------------------------------
def test_head_error_and_paired_head_error():
    targets = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    hog = {"a": 1.5, "b": 2.5, "c": 3.5, "d": None}  # offset 0.5, one photo missed
    cand = {"a": 1.0, "b": 2.0, "c": None, "d": 4.4}
    e = de.head_error(targets, hog)
    assert e == {"n": 3, "pc": 1.0, "mae": 0.5}
    p = de.paired_head_error(targets, cand, hog)
    assert p["n"] == 2  # a and b
    assert p["a"]["mae"] == 0.0 and p["b"]["mae"] == 0.5
    assert de.head_error(targets, {"a": 1.0})["pc"] is None  # one photo: no PC


# -- golden drift ------------------------------------------------------------------------------
def _golden_face(x, score, age=30.0, quality=0.5):
    return {"box": [x, 0.0, x + 40.0, 40.0], "score": score, "age": age, "quality": quality}


def test_golden_drift_counts_lost_and_extra_faces_and_the_drift():
    golden = {
        "one.jpg": [_golden_face(0, 3.0)],
        "two.jpg": [_golden_face(0, 2.0), _golden_face(200, 4.0)],
        "none.jpg": [],
    }
    found = {
        "one.jpg": [_golden_face(2, 3.1, age=32.0)],  # IoU 0.905: matched, drifted
        "two.jpg": [_golden_face(0, 2.0)],  # the second face lost
        "none.jpg": [_golden_face(500, 1.0)],  # an extra face
    }
    d = de.golden_drift(golden, found)
    assert (d["golden_faces"], d["matched"], d["lost"], d["extra"]) == (3, 2, 1, 1)
    assert d["photos_changed"] == ["two.jpg", "none.jpg"]
    assert d["score_drift_max"] == pytest.approx(0.1)
    assert d["score_drift_mean"] == pytest.approx(0.05)
    assert d["age_drift_max"] == pytest.approx(2.0)
    assert d["box_iou_min"] == pytest.approx(0.9048, abs=1e-4)


# -- sampling ----------------------------------------------------------------------------------
def test_spread_takes_evenly_spaced_indices():
    assert de.spread(10, 3) == [0, 4, 9]  # 4.5 rounds to even
    assert de.spread(5, None) == [0, 1, 2, 3, 4]
    assert de.spread(5, 9) == [0, 1, 2, 3, 4]


def test_allocate_splits_by_largest_remainder():
    assert de.allocate([600, 200, 200], 100) == [60, 20, 20]
    assert de.allocate([1, 1, 1], 2) == [1, 1, 0]
    assert de.allocate([5, 3, 2], 7) == [4, 2, 1]  # quotas 3.5, 2.1, 1.4: 3+2+1, then the .5


def test_stratified_sample_keeps_the_groups_shares_and_is_seeded():
    rng = np.random.default_rng(1)
    groups = np.array(["AF"] * 600 + ["CM"] * 200 + ["AM"] * 200)
    targets = rng.uniform(1, 5, size=1000)
    idx = de.stratified_sample(groups, targets, 100, seed=0)
    assert len(idx) == 100 == len(set(idx)) and idx == sorted(idx)
    share = {g: int((groups[idx] == g).sum()) for g in ("AF", "CM", "AM")}
    assert share == {"AF": 60, "CM": 20, "AM": 20}
    # the targets' quintiles: 20 each, within rounding per group
    edges = np.quantile(targets, [0.2, 0.4, 0.6, 0.8])
    per_bin = np.bincount(np.searchsorted(edges, targets[idx], side="right"), minlength=5)
    assert per_bin.min() >= 18 and per_bin.max() <= 22
    assert de.stratified_sample(groups, targets, 100, seed=0) == idx
    assert de.stratified_sample(groups, targets, 100, seed=1) != idx
    assert de.stratified_sample(None, targets[:10], 20, seed=0) == list(range(10))


# -- the cache -----------------------------------------------------------------------------------
def test_photo_cache_resumes_and_ignores_a_cut_line(tmp_path):
    path = tmp_path / "part" / "hog.jsonl"
    c = de.PhotoCache(path)
    c.add("a.jpg", {"n": 1})
    c.add("b.jpg", {"n": 0})
    with path.open("a", encoding="utf-8") as f:
        f.write('{"key": "c.jpg", "val')  # a run killed mid-write
    again = de.PhotoCache(path)
    assert again.done == {"a.jpg": {"n": 1}, "b.jpg": {"n": 0}}
    assert "c.jpg" not in again
    assert de.cache_name("blazeface_back:0.5") == "blazeface_back@0.5.jsonl"


def test_work_dir_refuses_other_settings(tmp_path):
    de.check_work_dir(tmp_path, {"threads": 1})
    de.check_work_dir(tmp_path, {"threads": 1})
    with pytest.raises(ValueError, match="threads"):
        de.check_work_dir(tmp_path, {"threads": 2})


# -- the decision rule -------------------------------------------------------------------------
def _result(t350=30.0, t1280=100.0, recall=0.9, fp=0, nme=0.02, lost=0, found=100, pc=0.9, mae=0.2):
    labelled = {
        name: {
            "found": {"photos": 100, "with_face": found, "exactly_one": found, "faces": found},
            "paired_baseline": {
                "n": 90,
                "a": {"n": 90, "pc": pc, "mae": mae},
                "b": {"n": 90, "pc": 0.9, "mae": 0.2},
            },
        }
        for name in de.LABELLED
    }
    return {
        "fixtures": {
            "dlib_faces": {"recall": recall, "false_positives": fp},
            "face_recognition": {"with_face": 15},
            "hard_cases": {"with_face": 5},
            "no_face": {"faces": 0},
            "landmarks": {"paired_baseline": {"n": 38, "a": nme, "b": 0.02}},
        },
        "golden": {"lost": lost},
        **labelled,
        "timing": {
            "350": {"analyze": {"median_ms": t350}},
            "1280": {"analyze": {"median_ms": t1280}},
        },
    }


def test_decide_picks_a_candidate_faster_and_no_worse():
    results = {
        "auto": _result(),
        "fast": _result(t350=20.0, t1280=50.0, recall=0.95, nme=0.0205, pc=0.897, mae=0.203),
        "faster": _result(t350=15.0, t1280=40.0),
    }
    d = de.decide(results, "auto", de.Tolerances())
    assert d["candidates"]["fast"]["passes"] and d["candidates"]["faster"]["passes"]
    assert d["default"] == "faster"  # both pass: the faster one on 350-pixel photos
    assert "passes every criterion" in de.decision_text(d)


@pytest.mark.parametrize(
    ("change", "criterion"),
    [
        ({"t350": 30.0}, "faster analyze, 350 px"),  # as fast is not faster
        ({"t1280": 101.0}, "faster analyze, 1280 px"),
        ({"recall": 0.89}, "dlib_faces recall"),
        ({"fp": 1}, "dlib_faces false positives"),
        ({"nme": 0.0211}, "landmark NME (faces both found)"),  # 5.5% worse
        ({"lost": 1}, "golden faces kept"),
        ({"found": 99}, "utkface found"),
        ({"pc": 0.894}, "mebeauty attractiveness_mebeauty PC (photos both found)"),
        ({"mae": 0.205}, "utkface age_utkface MAE (photos both found)"),  # 2.5% worse
    ],
)
def test_decide_refuses_a_candidate_worse_on_one_measure(change, criterion):
    good = {"t350": 20.0, "t1280": 50.0}
    results = {"auto": _result(), "cand": _result(**{**good, **change})}
    d = de.decide(results, "auto", de.Tolerances())
    c = d["candidates"]["cand"]
    assert not c["passes"] and criterion in c["failed"]
    assert d["default"] == "auto"
    assert "stays a named detector" in de.decision_text(d)


def test_decide_fails_what_was_not_measured():
    partial = _result(t350=10.0, t1280=10.0)
    del partial["golden"]
    partial["timing"].pop("1280")
    d = de.decide({"auto": _result(), "cand": partial}, "auto", de.Tolerances())
    failed = {c["criterion"]: c["detail"] for c in d["candidates"]["cand"]["criteria"]}
    assert failed["golden faces kept"] == "not measured"
    assert failed["faster analyze, 1280 px"] == "not measured"
    assert d["default"] == "auto"
    assert "fails 2 not measured" in de.decision_text(d)


def test_criteria_does_not_change_its_inputs():
    base, cand = _result(), _result(t350=1.0)
    before = copy.deepcopy(cand)
    de.criteria(cand, base, de.Tolerances())
    assert cand == before


# -- the command line and the harness on real photos ---------------------------------------------
def test_main_rejects_an_unknown_detector(tmp_path, capsys):
    (tmp_path / "fixtures").mkdir()
    argv = ["--detectors", "nope", "--work-dir", str(tmp_path / "w"), "--data", str(tmp_path)]
    assert de.main(argv) == 2
    assert "detector must be one of" in capsys.readouterr().err


def test_the_default_detector_reproduces_the_golden_table(tmp_path):
    """Through the harness (detect_loaded, then the shared stages), the current default gives the
    golden table's faces and numbers within the golden test's tolerances; a second run reads the
    cache."""
    run = de.Runner([de.DetectorConfig().name], tmp_path, threads=1)
    d = de.measure_golden(run)[de.DetectorConfig().name]
    assert d["lost"] == 0 and d["extra"] == 0 and d["golden_faces"] >= 40
    assert d["score_drift_max"] <= 1e-3 and d["quality_drift_max"] <= 1e-3
    assert d["age_drift_max"] <= 1e-2 and d["box_iou_min"] > 0.95
    lines = (tmp_path / "golden" / "auto.jsonl").read_text().splitlines()
    assert len(lines) == len([k for k in json.loads(de.GOLDEN_FILE.read_text()) if k[0] != "_"])
    assert de.measure_golden(run)[de.DetectorConfig().name] == d
