#!/usr/bin/env python
"""Face detectors compared on everything issue 22 asks, with the rule that picks the default.

For every detector named (default: hog, mtcnn, auto, blazeface_back, blazeface_short), on the
same photos (each photo decoded once for all of them), through the pipeline
(:meth:`facecore.analyzer.FaceAnalyzer.detect_loaded`, then the stages on the detector's faces):

``fixtures`` (``../shared/data/fixtures``)
    * ``dlib_faces``: the 43 boxed faces of the 9 PASCAL VOC photos of dlib's examples
      (``*_with_face_landmarks.xml``, read with :func:`facecore.evaluation.read_dlib_xml`):
      recall and false positives, detections matched one to one to true boxes, best IoU first,
      at IoU >= ``--iou`` (0.3: detectors draw boxes of different shapes around the same face;
      0.5 is reported too); and the **landmark error through the pipeline**: each matched
      detection's box feeds the 68-point predictor, whose points are compared with the XML's 68
      points (inter-ocular NME, :func:`facecore.evaluation.inter_ocular_nme`; the ground truth
      ``tests/test_landmarks.py`` uses);
    * ``face_recognition`` (portraits) and ``hard_cases`` (painting, blur, cartoon, rotation,
      profile, tilt, mask): photos with a face found;
    * ``no_face`` (7 photos without a face): false positives and photos with any.
``golden``
    The default heads on every photo of ``tests/fixtures`` with the detector's faces, against
    ``tests/fixtures/golden_scores.json`` (measured with the default detector): golden faces
    lost (no face at IoU >= 0.5), extra faces, and the drift of the score, age and quality of
    the matched faces. The current default's own row is a check of the harness (drift ~0).
``scut-fbp5500``, ``mebeauty``, ``utkface``
    One face per photo: photos with a face found and with exactly one; the shipped model's error
    from the largest face (SCUT-FBP5500: ``attractiveness_scut`` PC and MAE; MEBeauty:
    ``attractiveness_mebeauty`` PC and MAE; UTKFace: ``age_utkface`` MAE in years), on the photos
    the detector found a face in, and on the photos both it and HOG found one (``paired``: the
    same photos, the same models; the sets are in-sample, so read the difference, not the level).
``timing``
    Per photo, on the first ``--timing-photos`` SCUT-FBP5500 photos (350x350) and on the fixture
    photos with faces resized to a longer side of 1280 (JPEG q 90, in memory): detection alone
    (on the decoded image) and the full ``analyze`` with the default heads (from the JPEG bytes),
    ``--timing-repeat`` passes, the detectors interleaved photo by photo so that a change in the
    machine's load falls on all of them; median and p90 in ms and as ratios to HOG's.

Then the **decision rule** of issue 22, evaluated from these numbers: a candidate becomes the
default only if it is faster than the current default (``DetectorConfig().name``, ``auto``) and
no worse on every measure above (:func:`decide`, its criteria in :data:`CRITERIA_DOC`).

Every per-photo result is appended to a JSON-lines file under ``--work-dir`` (one per part and
detector) as soon as it is measured: a killed run started again with the same ``--work-dir``
skips what is there (timing is kept once a whole size is timed). ``--limit N`` takes N photos
spread evenly over each labelled set; ``--sample N`` a seeded sample stratified by each set's
groups and target quintiles (:func:`stratified_sample`); ``--sets`` runs some parts only.

    .venv/bin/python scripts/detector_eval.py --work-dir detector_eval_work \\
        --out detector_eval_work/detectors.json --markdown detector_eval_work/detectors.md
    .venv/bin/python scripts/detector_eval.py --sample 600 --work-dir detector_eval_work_s600
    .venv/bin/python scripts/detector_eval.py --sets fixtures golden --detectors hog \\
        blazeface_back:0.75 --work-dir /tmp/deteval-075

A detector is a :class:`facecore.detect.DetectorConfig` name, optionally ``:THRESHOLD`` for the
BlazeFace and MTCNN minimum probability. Prints the markdown tables and the decision; ``--out``
writes the figures as JSON, ``--markdown`` the tables for ``docs/detectors.md``. The full run
takes about an hour on 2 cores, ``--sample 600`` about 15 minutes (``docs/detectors.md``).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecore.datasets import load_mebeauty, load_scut_fbp5500, load_utkface  # noqa: E402
from facecore.detect import DetectorConfig  # noqa: E402
from facecore.evaluation import inter_ocular_nme, read_dlib_xml  # noqa: E402
from facecore.metrics import regression_metrics  # noqa: E402
from facecore.types import Box  # noqa: E402

log = logging.getLogger("detector_eval")

DEFAULT_DETECTORS = ("hog", "mtcnn", "auto", "blazeface_back", "blazeface_short")
#: Timing ratios are to this detector's.
REFERENCE = "hog"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
FIXTURE_GROUPS = ("dlib_faces", "face_recognition", "hard_cases", "no_face")
#: Fixture folders whose photos (each with a face) are resized to 1280 px for timing.
LARGE_PHOTO_GROUPS = ("face_recognition", "dlib_faces", "facenet_pytorch", "insightface")
LARGE_SIDE = 1280
GOLDEN_FILE = ROOT / "tests" / "fixtures" / "golden_scores.json"
GOLDEN_IOU = 0.5
LANDMARK_IOU = 0.3  # as tests/test_landmarks.py


@dataclass(frozen=True)
class LabelledSet:
    """A labelled set and the shipped head whose error is read on it."""

    load: Callable[[Path], Any]
    stage: str
    model: str
    #: What is reported for the head: ``"pc"`` and/or ``"mae"`` (keys of :func:`head_error`).
    metrics: tuple[str, ...]

    @property
    def options(self) -> dict[str, dict[str, str]]:
        return {self.stage: {"model": self.model}}


LABELLED = {
    "scut-fbp5500": LabelledSet(
        load_scut_fbp5500, "attractiveness", "attractiveness_scut", ("pc", "mae")
    ),
    "mebeauty": LabelledSet(
        load_mebeauty, "attractiveness", "attractiveness_mebeauty", ("pc", "mae")
    ),
    "utkface": LabelledSet(load_utkface, "age", "age_utkface", ("mae",)),
}
SETS = ("fixtures", "golden", *LABELLED, "timing")

CRITERIA_DOC = """\
A candidate becomes the default only if every criterion holds against the current default
(the baseline), each measured on the same photos:
- faster: its median full `analyze` time is below the baseline's on 350x350 and on 1280-pixel
  photos;
- dlib_faces: recall (IoU --iou) at least the baseline's, false positives at most its;
- face_recognition and hard_cases: photos with a face found at least the baseline's;
- no_face: false positives at most the baseline's;
- landmarks: mean NME on the dlib_faces faces both found at most the baseline's times
  (1 + --nme-tolerance);
- golden table: no golden face lost (every face of tests/fixtures/golden_scores.json has a face
  at IoU >= 0.5); the drift is reported, not gated: the labelled sets' paired errors say whether
  the new boxes make the heads worse;
- each labelled set: photos with a face found at least the baseline's; on the photos both found,
  PC at least the baseline's minus --pc-tolerance and MAE at most the baseline's times
  (1 + --mae-tolerance).
A part that was not run fails its criterion ("not measured"): no default from a partial run."""


# -- matching and counting (pure) ------------------------------------------------------------------
def match(found: Sequence[Box], truth: Sequence[Box], iou: float) -> list[tuple[int, int]]:
    """Pairs ``(found index, truth index)``, one to one, best IoU first, at IoU >= ``iou``."""
    pairs = sorted(
        ((f.iou(t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    used_f: set[int] = set()
    used_t: set[int] = set()
    out = []
    for value, i, j in pairs:
        if value < iou:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def boxed_recall(
    found: Mapping[str, Sequence[Box]], truth: Mapping[str, Sequence[Box]], iou: float
) -> dict[str, Any]:
    """Recall and false positives of detections against true boxes, photo by photo.

    Parameters
    ----------
    found, truth : mapping of photo name to boxes
        Every photo of ``truth`` must be in ``found``.
    iou : float
        Least IoU for a detection to match a true box.

    Returns
    -------
    dict
        ``faces`` (true boxes), ``matched``, ``recall``, ``false_positives`` (detections matching
        no true box) and ``detections``.
    """
    n_true = sum(len(b) for b in truth.values())
    matched = detections = 0
    for name, boxes in truth.items():
        got = found[name]
        detections += len(got)
        matched += len(match(got, boxes, iou))
    return {
        "faces": n_true,
        "matched": matched,
        "recall": round(matched / n_true, 4) if n_true else float("nan"),
        "false_positives": detections - matched,
        "detections": detections,
    }


def found_counts(counts: Sequence[int]) -> dict[str, int]:
    """Photos, photos with at least one face and with exactly one, from faces per photo."""
    return {
        "photos": len(counts),
        "with_face": int(sum(c > 0 for c in counts)),
        "exactly_one": int(sum(c == 1 for c in counts)),
        "faces": int(sum(counts)),
    }


def landmark_errors(
    found: Mapping[str, Sequence[tuple[Box, np.ndarray]]],
    truth: Mapping[str, Sequence[tuple[Box, np.ndarray]]],
    iou: float = LANDMARK_IOU,
) -> dict[str, float | None]:
    """Inter-ocular NME of each true face from the detection matched to it (None if missed).

    Keys are ``"photo#index"`` of the true face in its photo.
    """
    out: dict[str, float | None] = {}
    for name, faces in truth.items():
        got = found[name]
        pairs = dict((j, i) for i, j in match([b for b, _ in got], [b for b, _ in faces], iou))
        for j, (_, points) in enumerate(faces):
            i = pairs.get(j)
            out[f"{name}#{j}"] = None if i is None else inter_ocular_nme(got[i][1], points)
    return out


def nme_summary(errors: Mapping[str, float | None]) -> dict[str, Any]:
    """Faces with a landmark error, their mean and median NME."""
    vals = [v for v in errors.values() if v is not None]
    return {
        "faces": len(vals),
        "missed": len(errors) - len(vals),
        "mean": round(float(np.mean(vals)), 5) if vals else None,
        "median": round(float(np.median(vals)), 5) if vals else None,
    }


def paired_nme(
    a: Mapping[str, float | None], b: Mapping[str, float | None]
) -> tuple[int, float | None, float | None]:
    """(faces with an error in both, mean NME of ``a``, of ``b``) on those faces."""
    keys = [k for k in a if a[k] is not None and b.get(k) is not None]
    if not keys:
        return 0, None, None
    return (
        len(keys),
        round(float(np.mean([a[k] for k in keys])), 5),
        round(float(np.mean([b[k] for k in keys])), 5),
    )


def head_error(
    targets: Mapping[str, float],
    preds: Mapping[str, float | None],
    keys: Iterable[str] | None = None,
) -> dict[str, Any]:
    """PC and MAE of ``preds`` against ``targets`` on ``keys`` (default: every photo with a
    prediction)."""
    keys = [k for k in (preds if keys is None else keys) if preds.get(k) is not None]
    if len(keys) < 2:
        return {"n": len(keys), "pc": None, "mae": None}
    m = regression_metrics(
        np.array([targets[k] for k in keys]), np.array([preds[k] for k in keys], dtype=float)
    )
    return {"n": len(keys), "pc": round(m["pc"], 4), "mae": round(m["mae"], 4)}


def paired_head_error(
    targets: Mapping[str, float], a: Mapping[str, float | None], b: Mapping[str, float | None]
) -> dict[str, Any]:
    """Errors of ``a`` and of ``b`` on the photos both have a prediction for."""
    keys = [k for k in targets if a.get(k) is not None and b.get(k) is not None]
    return {"n": len(keys), "a": head_error(targets, a, keys), "b": head_error(targets, b, keys)}


def golden_drift(
    golden: Mapping[str, Sequence[Mapping[str, Any]]],
    found: Mapping[str, Sequence[Mapping[str, Any]]],
    iou: float = GOLDEN_IOU,
) -> dict[str, Any]:
    """How the faces of the golden table change: lost, extra, and drift of the matched ones.

    Parameters
    ----------
    golden, found : mapping of photo to faces
        Faces as in ``golden_scores.json``: ``box`` (x1, y1, x2, y2), ``score``, ``age``,
        ``quality``.
    """
    lost = extra = matched = 0
    changed_photos = []
    drift: dict[str, list[float]] = {"score": [], "age": [], "quality": [], "box_iou": []}
    for photo, want in golden.items():
        got = found[photo]
        gb = [Box(*f["box"]) for f in want]
        fb = [Box(*f["box"]) for f in got]
        pairs = match(fb, gb, iou)
        matched += len(pairs)
        lost += len(want) - len(pairs)
        extra += len(got) - len(pairs)
        if len(pairs) != len(want) or len(got) != len(want):
            changed_photos.append(photo)
        for i, j in pairs:
            for k in ("score", "age", "quality"):
                drift[k].append(abs(got[i][k] - want[j][k]))
            drift["box_iou"].append(fb[i].iou(gb[j]))
    out: dict[str, Any] = {
        "golden_faces": matched + lost,
        "matched": matched,
        "lost": lost,
        "extra": extra,
        "photos_changed": changed_photos,
    }
    for k in ("score", "age", "quality"):
        v = drift[k]
        out[f"{k}_drift_mean"] = round(float(np.mean(v)), 4) if v else None
        out[f"{k}_drift_max"] = round(float(np.max(v)), 4) if v else None
    out["box_iou_min"] = round(float(np.min(drift["box_iou"])), 4) if drift["box_iou"] else None
    return out


def time_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """Median and p90 (nearest rank below, as ``scripts/bench.py``) of times in ms."""
    s = sorted(samples_ms)
    return {
        "median_ms": round(statistics.median(s), 3),
        "p90_ms": round(s[int(0.9 * (len(s) - 1))], 3),
        "n": len(s),
    }


# -- sampling --------------------------------------------------------------------------------------
def spread(n_total: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``range(n_total)`` (all of them without a limit)."""
    if limit is None or limit >= n_total:
        return list(range(n_total))
    return [int(i) for i in np.linspace(0, n_total - 1, limit).round().astype(int)]


def allocate(sizes: Sequence[int], n: int) -> list[int]:
    """``n`` split in proportion to ``sizes``, largest remainders first (ties: the first)."""
    sizes_a = np.asarray(sizes, dtype=float)
    quota = sizes_a * n / sizes_a.sum()
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: n - int(take.sum())]:
        take[i] += 1
    return [int(t) for t in take]


def stratified_sample(
    groups: Sequence[str] | None, targets: Sequence[float], n: int, seed: int, bins: int = 5
) -> list[int]:
    """``n`` indices drawn without replacement, stratified by group, then by target quantile.

    Each group gets its share of ``n`` in proportion to its size, and within a group each of
    ``bins`` quantile bins of the target (over the whole set) its share of the group's
    (:func:`allocate`), drawn with ``seed``: the sample keeps each set's mix of groups and its
    spread of targets (ages, scores), which PC and MAE depend on. Returns sorted indices; all of
    them when ``n`` is at least the set's size.
    """
    total = len(targets)
    if n >= total:
        return list(range(total))
    t = np.asarray(targets, dtype=float)
    edges = np.quantile(t, np.linspace(0, 1, bins + 1)[1:-1])
    tbin = np.searchsorted(edges, t, side="right")
    g = np.asarray(groups if groups is not None else [""] * total)
    names = sorted(set(g.tolist()))
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for name, k in zip(names, allocate([(g == x).sum() for x in names], n), strict=True):
        members = np.flatnonzero(g == name)
        present = sorted(set(tbin[members].tolist()))
        sizes = [(tbin[members] == b).sum() for b in present]
        for b, kb in zip(present, allocate(sizes, k), strict=True):
            pool = members[tbin[members] == b]
            out.extend(int(i) for i in rng.choice(pool, size=kb, replace=False))
    return sorted(out)


# -- the decision rule (pure) ----------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerances:
    """Noise allowed by :func:`decide` on the continuous measures."""

    pc: float = 0.005
    mae: float = 0.02
    nme: float = 0.05


NOT_MEASURED = "not measured"


def _criterion(name: str, ok: bool | None, detail: str) -> dict[str, Any]:
    return {"criterion": name, "ok": bool(ok) if ok is not None else False, "detail": detail}


def criteria(
    cand: Mapping[str, Any], base: Mapping[str, Any], tol: Tolerances
) -> list[dict[str, Any]]:
    """Each criterion of :data:`CRITERIA_DOC` for one candidate against the baseline.

    ``cand`` and ``base`` are a detector's results as :func:`summarize` gives them; a part
    missing from either fails its criterion as ``not measured``.
    """
    out = []

    def get(r: Mapping[str, Any], *path: str) -> Any:
        for p in path:
            if not isinstance(r, Mapping) or p not in r or r[p] is None:
                return None
            r = r[p]
        return r

    def compare(name: str, path: tuple[str, ...], better: str, slack: float = 0.0) -> None:
        c, b = get(cand, *path), get(base, *path)
        if c is None or b is None:
            out.append(_criterion(name, None, NOT_MEASURED))
            return
        ok = c >= b - slack if better == "higher" else c <= b + slack
        out.append(_criterion(name, ok, f"{c} vs {b}"))

    for size in ("350", "1280"):
        c = get(cand, "timing", size, "analyze", "median_ms")
        b = get(base, "timing", size, "analyze", "median_ms")
        if c is None or b is None:
            out.append(_criterion(f"faster analyze, {size} px", None, NOT_MEASURED))
        else:
            out.append(_criterion(f"faster analyze, {size} px", c < b, f"{c} ms vs {b} ms"))
    compare("dlib_faces recall", ("fixtures", "dlib_faces", "recall"), "higher")
    compare("dlib_faces false positives", ("fixtures", "dlib_faces", "false_positives"), "lower")
    for group in ("face_recognition", "hard_cases"):
        compare(f"{group} found", ("fixtures", group, "with_face"), "higher")
    compare("no_face false positives", ("fixtures", "no_face", "faces"), "lower")
    nme = get(cand, "fixtures", "landmarks", "paired_baseline")
    if nme is None or nme["a"] is None:
        out.append(_criterion("landmark NME (faces both found)", None, NOT_MEASURED))
    else:
        ok = nme["a"] <= nme["b"] * (1 + tol.nme)
        detail = f"{nme['a']} vs {nme['b']} on {nme['n']} faces (tolerance {tol.nme:.0%})"
        out.append(_criterion("landmark NME (faces both found)", ok, detail))
    lost = get(cand, "golden", "lost")
    if lost is None:
        out.append(_criterion("golden faces kept", None, NOT_MEASURED))
    else:
        out.append(_criterion("golden faces kept", lost == 0, f"{lost} lost"))
    for name, spec in LABELLED.items():
        compare(f"{name} found", (name, "found", "with_face"), "higher")
        paired = get(cand, name, "paired_baseline")
        for metric in spec.metrics:
            label = f"{name} {LABELLED[name].model} {metric.upper()} (photos both found)"
            if paired is None or paired["a"][metric] is None or paired["b"][metric] is None:
                out.append(_criterion(label, None, NOT_MEASURED))
                continue
            c, b = paired["a"][metric], paired["b"][metric]
            if metric == "pc":
                ok, slack = c >= b - tol.pc, f"-{tol.pc}"
            else:
                ok, slack = c <= b * (1 + tol.mae), f"+{tol.mae:.0%}"
            out.append(_criterion(label, ok, f"{c} vs {b} on {paired['n']} (tolerance {slack})"))
    return out


def decide(
    results: Mapping[str, Mapping[str, Any]], baseline: str, tol: Tolerances
) -> dict[str, Any]:
    """Apply the rule to every candidate (every detector but the baseline).

    Returns
    -------
    dict
        ``baseline``; ``candidates``: per detector its ``criteria``, ``passes`` and ``failed``
        (names); ``default``: the candidate that passes with the fastest 350-pixel ``analyze``,
        or the baseline when none passes.
    """
    cands: dict[str, Any] = {}
    for spec, r in results.items():
        if spec == baseline:
            continue
        crit = criteria(r, results[baseline], tol)
        failed = [c["criterion"] for c in crit if not c["ok"]]
        cands[spec] = {"passes": not failed, "failed": failed, "criteria": crit}
    passing = [s for s, c in cands.items() if c["passes"]]
    default = min(
        passing,
        key=lambda s: results[s]["timing"]["350"]["analyze"]["median_ms"],
        default=baseline,
    )
    return {"baseline": baseline, "default": default, "candidates": cands}


# -- the per-photo cache ---------------------------------------------------------------------------
class PhotoCache:
    """Per-photo results of one part and detector, appended to a JSON-lines file as measured.

    A line cut short by a killed run is ignored (its photo is measured again).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, Any] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.done[row["key"]] = row["value"]

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def add(self, key: str, value: Any) -> None:
        self.done[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "value": value}) + "\n")


def check_work_dir(work_dir: Path, settings: Mapping[str, Any]) -> None:
    """Record the settings that change per-photo results in ``work_dir/settings.json``; refuse
    a work dir measured with others (its results would be mixed with these)."""
    path = work_dir / "settings.json"
    if path.exists():
        saved = json.loads(path.read_text("utf-8"))
        if saved != dict(settings):
            raise ValueError(
                f"{work_dir} holds results measured with {saved}, not {dict(settings)}"
            )
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(settings)) + "\n", encoding="utf-8")


def cache_name(spec: str) -> str:
    """A file name for a detector spec (``blazeface_back:0.5`` -> ``blazeface_back@0.5``)."""
    return spec.replace(":", "@").replace("/", "_") + ".jsonl"


# -- measuring -------------------------------------------------------------------------------------
def box_list(box: Box) -> list[float]:
    return [round(v, 2) for v in box.as_tuple()]


class Runner:
    """The analyzers (one per detector, sharing the stages' models) and the caches."""

    def __init__(self, specs: Sequence[str], work_dir: Path, threads: int) -> None:
        from facecore.analyzer import FaceAnalyzer

        self.work_dir = work_dir
        self.threads = threads
        check_work_dir(work_dir, {"threads": threads})
        self.heads = FaceAnalyzer(threads=threads)
        shared = [self.heads.stage(n) for n in self.heads.stages]
        self.analyzers = {
            spec: FaceAnalyzer(detector=parse_spec(spec), stages=shared, threads=threads)
            for spec in specs
        }

    def cache(self, part: str, spec: str) -> PhotoCache:
        return PhotoCache(self.work_dir / part / cache_name(spec))

    def caches(self, part: str) -> dict[str, PhotoCache]:
        return {spec: self.cache(part, spec) for spec in self.analyzers}

    def each_photo(
        self,
        part: str,
        items: Sequence[tuple[str, Any]],
        measure: Callable[[str, Any, Any], Any],
    ) -> dict[str, dict[str, Any]]:
        """``measure(spec, decoded image, memo)`` for every photo and detector not in the cache.

        ``items`` are ``(key, source)``; each photo is decoded once for all detectors; ``memo`` is
        a dict shared by the detectors on one photo (to reuse the stages' results on identical
        faces). Returns, per detector, key -> result.
        """
        caches = self.caches(part)
        todo = [(k, s) for k, s in items if any(k not in c for c in caches.values())]
        log.info("%s: %d photos, %d to measure", part, len(items), len(todo))
        t0 = time.perf_counter()
        for n, (key, source) in enumerate(todo, 1):
            decoded = self.heads.decode(source)
            memo: dict[Any, Any] = {}
            for spec, c in caches.items():
                if key not in c:
                    c.add(key, measure(spec, decoded, memo))
            if n % 50 == 0 or n == len(todo):
                rate = (time.perf_counter() - t0) / n
                log.info("%s: %d/%d (%.2f s a photo)", part, n, len(todo), rate)
        keys = [k for k, _ in items]
        return {spec: {k: c.done[k] for k in keys} for spec, c in caches.items()}

    def faces(self, spec: str, decoded: Any) -> list[Any]:
        return self.analyzers[spec].detect_loaded(decoded)

    def run_on(
        self, decoded: Any, faces: list[Any], stages: tuple[str, ...], options: Any, memo: dict
    ) -> list[Any]:
        """The stages on ``faces`` (reused from ``memo`` when another detector gave the same
        faces: same detector name, boxes and keypoints)."""
        key = (
            stages,
            json.dumps(options, sort_keys=True),
            tuple(
                (
                    f.detector,
                    f.box.as_tuple(),
                    None if f.keypoints is None else f.keypoints.tobytes(),
                )
                for f in faces
            ),
        )
        if key not in memo:
            memo[key] = self.heads.run_stages(decoded.pixels, faces, stages, options)
        return memo[key]


def parse_spec(spec: str) -> DetectorConfig:
    """A detector config from ``name`` or ``name:threshold``."""
    name, _, threshold = spec.partition(":")
    fields: dict[str, Any] = {"name": name}
    if threshold:
        key = "mtcnn_threshold" if name in ("mtcnn", "auto") else "blazeface_threshold"
        fields[key] = float(threshold)
    return DetectorConfig(**fields)


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def measure_fixtures(run: Runner, fixtures: Path, iou: float, baseline: str) -> dict[str, Any]:
    truth: dict[str, list[tuple[Box, np.ndarray]]] = {}
    for xml in sorted((fixtures / "dlib_faces").glob("*_with_face_landmarks.xml")):
        for face in read_dlib_xml(xml):
            truth.setdefault(face.file, []).append((face.box, face.points))
    per_spec: dict[str, dict[str, Any]] = {spec: {} for spec in run.analyzers}
    for group in FIXTURE_GROUPS:
        items = [(f"{group}/{p.name}", p) for p in photos(fixtures / group)]

        def measure(spec: str, decoded: Any, memo: dict, group: str = group) -> dict[str, Any]:
            faces = run.faces(spec, decoded)
            out: dict[str, Any] = {"boxes": [box_list(f.box) for f in faces]}
            if faces and group == "dlib_faces":  # the 68 points from each detected box
                faces = run.run_on(decoded, faces, ("landmarks",), None, memo)
                out["landmarks"] = [np.round(f.landmarks, 2).tolist() for f in faces]
            return out

        got = run.each_photo(f"fixtures/{group}", items, measure)
        for spec in run.analyzers:
            per_spec[spec].update(got[spec])
    return summarize_fixtures(per_spec, truth, iou, baseline)


def summarize_fixtures(
    per_spec: Mapping[str, Mapping[str, Any]],
    truth: Mapping[str, Sequence[tuple[Box, np.ndarray]]],
    iou: float,
    baseline: str,
) -> dict[str, Any]:
    """Per detector: dlib_faces recall/FP/landmarks and the found counts of the other groups."""
    out: dict[str, Any] = {}
    errors: dict[str, dict[str, float | None]] = {}
    for spec, rows in per_spec.items():
        found = {n: [Box(*b) for b in rows[f"dlib_faces/{n}"]["boxes"]] for n in truth}
        truth_boxes = {n: [b for b, _ in t] for n, t in truth.items()}
        r: dict[str, Any] = {
            "dlib_faces": {
                **boxed_recall(found, truth_boxes, iou),
                "recall_iou50": boxed_recall(found, truth_boxes, 0.5)["recall"],
            }
        }
        with_lm = {
            n: [
                (Box(*b), np.array(p))
                for b, p in zip(
                    rows[f"dlib_faces/{n}"]["boxes"],
                    rows[f"dlib_faces/{n}"].get("landmarks", []),
                    strict=False,
                )
            ]
            for n in truth
        }
        errors[spec] = landmark_errors(with_lm, truth)
        r["landmarks"] = nme_summary(errors[spec])
        for group in FIXTURE_GROUPS[1:]:
            counts = [len(v["boxes"]) for k, v in rows.items() if k.startswith(group + "/")]
            r[group] = found_counts(counts)
        out[spec] = r
    for spec in out:
        for other, label in ((baseline, "paired_baseline"), (REFERENCE, "paired_reference")):
            if other in errors:
                n, a, b = paired_nme(errors[spec], errors[other])
                out[spec]["landmarks"][label] = {"n": n, "a": a, "b": b, "versus": other}
    return out


def measure_golden(run: Runner) -> dict[str, Any]:
    golden = {k: v for k, v in json.loads(GOLDEN_FILE.read_text("utf-8")).items() if k[0] != "_"}
    fixtures = GOLDEN_FILE.parent
    items = [(name, fixtures / name) for name in sorted(golden)]

    def measure(spec: str, decoded: Any, memo: dict) -> list[dict[str, Any]]:
        faces = run.faces(spec, decoded)
        faces = run.run_on(decoded, faces, run.heads.config.stage_names, None, memo)
        return [
            {
                "box": [round(v, 3) for v in f.box.as_tuple()],
                "score": round(f.predictions["attractiveness"].value, 4),
                "age": round(f.predictions["age"].value, 3),
                "quality": round(f.predictions["quality"].value, 4),
            }
            for f in faces
        ]

    got = run.each_photo("golden", items, measure)
    return {spec: golden_drift(golden, rows) for spec, rows in got.items()}


def labelled_indices(ds: Any, limit: int | None, sample: int | None, seed: int) -> list[int]:
    if sample is not None:
        return stratified_sample(ds.groups, ds.targets, sample, seed)
    return spread(len(ds), limit)


def measure_labelled(
    run: Runner, name: str, data: Path, idx_of: Callable[[Any], list[int]], baseline: str
) -> dict[str, Any]:
    spec_set = LABELLED[name]
    ds = spec_set.load(data)
    idx = idx_of(ds)
    items = [(ds.relative_paths[i], ds.paths[i]) for i in idx]
    targets = {ds.relative_paths[i]: float(ds.targets[i]) for i in idx}

    def measure(spec: str, decoded: Any, memo: dict) -> dict[str, Any]:
        faces = run.faces(spec, decoded)
        out: dict[str, Any] = {"n": len(faces)}
        if faces:
            (face,) = run.run_on(decoded, faces[:1], (spec_set.stage,), spec_set.options, memo)
            out["box"] = box_list(face.box)
            out["pred"] = round(float(face.predictions[spec_set.stage].value), 5)
        return out

    got = run.each_photo(name, items, measure)
    return summarize_labelled(got, targets, baseline)


def summarize_labelled(
    got: Mapping[str, Mapping[str, Mapping[str, Any]]],
    targets: Mapping[str, float],
    baseline: str,
) -> dict[str, Any]:
    """Per detector: found counts, the head's error on its photos and paired with HOG and the
    baseline."""
    preds = {spec: {k: r.get("pred") for k, r in rows.items()} for spec, rows in got.items()}
    out: dict[str, Any] = {}
    for spec, rows in got.items():
        r: dict[str, Any] = {
            "found": {**found_counts([rows[k]["n"] for k in targets]), "missed": []},
            "error": head_error(targets, preds[spec]),
        }
        r["found"]["missed"] = [k for k in targets if rows[k]["n"] == 0][:20]
        for other, label in ((REFERENCE, "paired_reference"), (baseline, "paired_baseline")):
            if other in preds:
                r[label] = {
                    **paired_head_error(targets, preds[spec], preds[other]),
                    "versus": other,
                }
        out[spec] = r
    return out


def large_photos(fixtures: Path) -> list[bytes]:
    """The fixture photos with faces, resized to a longer side of 1280, JPEG q 90."""
    from PIL import Image

    out = []
    for group in LARGE_PHOTO_GROUPS:
        for p in photos(fixtures / group):
            with Image.open(p) as im:
                im = im.convert("RGB")
                s = LARGE_SIDE / max(im.size)
                im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=90)
            out.append(buf.getvalue())
    return out


def time_detectors(run: Runner, datas: Sequence[bytes], repeat: int) -> dict[str, Any]:
    """Detection alone and the full ``analyze`` per photo, detectors interleaved."""
    from facecore.threads import call_threads

    specs = list(run.analyzers)
    det: dict[str, list[float]] = {s: [] for s in specs}
    ana: dict[str, list[float]] = {s: [] for s in specs}
    for data in datas[:2]:  # warm-up: every model loaded, caches filled
        decoded = run.heads.decode(data)
        for s in specs:
            run.faces(s, decoded)
            run.analyzers[s].analyze(data)
    for r in range(repeat):
        for i, data in enumerate(datas):
            decoded = run.heads.decode(data)
            k = (r + i) % len(specs)
            for s in specs[k:] + specs[:k]:  # a different detector first each photo
                with call_threads(run.threads):
                    t = time.perf_counter()
                    run.faces(s, decoded)
                    det[s].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                run.analyzers[s].analyze(data)
                ana[s].append((time.perf_counter() - t) * 1000)
    out = {s: {"detect": time_summary(det[s]), "analyze": time_summary(ana[s])} for s in specs}
    if REFERENCE in out:
        ref = out[REFERENCE]
        for s in specs:
            for what in ("detect", "analyze"):
                for stat in ("median_ms", "p90_ms"):
                    ratio = out[s][what][stat] / ref[what][stat]
                    out[s][what][f"{stat.removesuffix('_ms')}_vs_{REFERENCE}"] = round(ratio, 3)
    return out


def measure_timing(run: Runner, data: Path, n_photos: int, repeat: int) -> dict[str, Any]:
    """Timing of both sizes, each kept in the work dir once whole (for these detectors)."""
    scut = sorted((data / "scut-fbp5500" / "images").glob("*.jpg"))[:n_photos]
    sizes = {
        "350": lambda: [p.read_bytes() for p in scut],
        "1280": lambda: large_photos(data / "fixtures")[:n_photos],
    }
    out: dict[str, Any] = {spec: {} for spec in run.analyzers}
    for size, make in sizes.items():
        path = run.work_dir / "timing" / f"{size}.json"
        settings = {"detectors": sorted(run.analyzers), "photos": n_photos, "repeat": repeat}
        saved = json.loads(path.read_text("utf-8")) if path.exists() else None
        if saved is None or saved["settings"] != settings:
            datas = make()
            log.info("timing %s px: %d photos x %d passes", size, len(datas), repeat)
            saved = {"settings": settings, "photos": len(datas)}
            saved["results"] = time_detectors(run, datas, repeat)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(saved, indent=1), encoding="utf-8")
        for spec in run.analyzers:
            out[spec][size] = {"photos": saved["photos"], **saved["results"][spec]}
    return out


# -- reporting -------------------------------------------------------------------------------------
def _f(v: Any, fmt: str = "{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def markdown(results: Mapping[str, Mapping[str, Any]], decision: Mapping[str, Any] | None) -> str:
    """The comparison tables (those whose part was run) and the decision."""
    specs = list(results)
    parts = {p for r in results.values() for p in r}
    blocks = []

    def table(head: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    sets = [s for s in LABELLED if s in parts]
    if "fixtures" in parts or sets:
        head = ["detector"]
        if "fixtures" in parts:
            head += [
                "dlib_faces recall (IoU 0.3 / 0.5)",
                "dlib_faces FP",
                "face_recognition found",
                "hard_cases found",
                "no_face FP (photos)",
            ]
        head += [f"{s} found / exactly one" for s in sets]
        rows = []
        for spec in specs:
            r = results[spec]
            row = [f"`{spec}`"]
            if "fixtures" in r:
                fx = r["fixtures"]
                b, nf = fx["dlib_faces"], fx["no_face"]
                row += [
                    f"{b['recall']:.3f} / {b['recall_iou50']:.3f} of {b['faces']}",
                    str(b["false_positives"]),
                    f"{fx['face_recognition']['with_face']}/{fx['face_recognition']['photos']}",
                    f"{fx['hard_cases']['with_face']}/{fx['hard_cases']['photos']}",
                    f"{nf['faces']} ({nf['with_face']}/{nf['photos']})",
                ]
            for s in sets:
                fd = r[s]["found"]
                row.append(f"{fd['with_face']}/{fd['photos']} / {fd['exactly_one']}")
            rows.append(row)
        blocks.append("Detection:\n\n" + table(head, rows))
    if "fixtures" in parts or "golden" in parts:
        head, rows = ["detector"], []
        if "fixtures" in parts:
            head += ["landmark NME mean / median (faces)", "NME on faces both found, vs baseline"]
        if "golden" in parts:
            head += ["golden faces lost / extra", "score drift mean / max", "age drift mean / max",
                     "quality drift mean / max"]  # fmt: skip
        for spec in specs:
            r, row = results[spec], [f"`{spec}`"]
            if "fixtures" in parts:
                lm = r["fixtures"]["landmarks"]
                pb = lm.get("paired_baseline", {})
                row += [
                    f"{_f(lm['mean'], '{:.4f}')} / {_f(lm['median'], '{:.4f}')} ({lm['faces']})",
                    f"{_f(pb.get('a'), '{:.4f}')} vs {_f(pb.get('b'), '{:.4f}')} "
                    f"({pb.get('n', 0)})",
                ]
            if "golden" in parts:
                g = r["golden"]
                row += [f"{g['lost']} / {g['extra']} of {g['golden_faces']}"]
                row += [
                    f"{_f(g[f'{k}_drift_mean'], '{:.4f}')} / {_f(g[f'{k}_drift_max'], '{:.4f}')}"
                    for k in ("score", "age", "quality")
                ]
            rows.append(row)
        blocks.append(
            "Landmarks (dlib_faces, inter-ocular NME) and the golden table:\n\n" + table(head, rows)
        )
    if sets:
        head = ["detector"]
        for s in sets:
            spec_set = LABELLED[s]
            m = "/".join(x.upper() for x in spec_set.metrics)
            head += [
                f"{s} {spec_set.model} {m} (photos)",
                f"{s} paired with {REFERENCE}: {REFERENCE} -> detector (photos)",
            ]
        rows = []
        for spec in specs:
            row = [f"`{spec}`"]
            for s in sets:
                r = results[spec][s]
                ms = LABELLED[s].metrics
                e = r["error"]
                row.append(" / ".join(_f(e[m], "{:.4f}") for m in ms) + f" ({e['n']})")
                p = r.get("paired_reference")
                if p is None:
                    row.append("-")
                else:
                    row.append(
                        " / ".join(
                            f"{_f(p['b'][m], '{:.4f}')} -> {_f(p['a'][m], '{:.4f}')}" for m in ms
                        )
                        + f" ({p['n']})"
                    )
            rows.append(row)
        blocks.append(
            "The shipped heads' error with each detector's boxes (same models):\n\n"
            + table(head, rows)
        )
    if "timing" in parts:
        head = ["detector"]
        sizes = [s for s in ("350", "1280") if s in results[specs[0]]["timing"]]
        for size in sizes:
            head += [
                f"{size} px detect median / p90 ms (x {REFERENCE})",
                f"{size} px analyze median / p90 ms (x {REFERENCE})",
            ]
        rows = []
        for spec in specs:
            row = [f"`{spec}`"]
            for size in sizes:
                for what in ("detect", "analyze"):
                    t = results[spec]["timing"][size][what]
                    row.append(
                        f"{t['median_ms']:.1f} / {t['p90_ms']:.1f} "
                        f"({_f(t.get(f'median_vs_{REFERENCE}'), '{:.2f}')} / "
                        f"{_f(t.get(f'p90_vs_{REFERENCE}'), '{:.2f}')})"
                    )
            rows.append(row)
        blocks.append("Time per photo:\n\n" + table(head, rows))
    if decision is not None:
        blocks.append(decision_text(decision))
    return "\n\n".join(blocks)


def decision_text(decision: Mapping[str, Any]) -> str:
    """The rule's verdict for each candidate, as markdown."""
    base = decision["baseline"]
    lines = [f"Decision (baseline: the current default `{base}`):", ""]
    for spec, c in decision["candidates"].items():
        if c["passes"]:
            lines.append(f"- `{spec}`: passes every criterion")
            continue
        failed = [x for x in c["criteria"] if not x["ok"]]
        worse = [f"{x['criterion']} ({x['detail']})" for x in failed if x["detail"] != NOT_MEASURED]
        why = "; ".join(worse)
        if len(worse) < len(failed):
            why += ("; and " if worse else "") + f"{len(failed) - len(worse)} not measured"
        lines.append(f"- `{spec}`: stays a named detector: fails {why}")
    d = decision["default"]
    lines += ["", f"Default: `{d}`" + (" (unchanged)" if d == base else " (the rule picks it)")]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------
def evaluate(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each part asked for, per detector: ``{spec: {part: figures}}``."""
    specs = list(dict.fromkeys(args.detectors))
    run = Runner(specs, args.work_dir, args.threads)
    results: dict[str, dict[str, Any]] = {spec: {} for spec in specs}

    def put(part: str, per_spec: Mapping[str, Any]) -> None:
        for spec, v in per_spec.items():
            results[spec][part] = v

    if "fixtures" in args.sets:
        put("fixtures", measure_fixtures(run, args.data / "fixtures", args.iou, args.baseline))
    if "golden" in args.sets:
        put("golden", measure_golden(run))
    for name in LABELLED:
        if name in args.sets:
            put(
                name,
                measure_labelled(
                    run,
                    name,
                    args.data,
                    lambda ds: labelled_indices(ds, args.limit, args.sample, args.seed),
                    args.baseline,
                ),
            )
    if "timing" in args.sets:
        n = args.timing_photos if args.limit is None else min(args.limit, args.timing_photos)
        put("timing", measure_timing(run, args.data, n, args.timing_repeat))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=CRITERIA_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--detectors", nargs="+", default=list(DEFAULT_DETECTORS))
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="parts to run")
    pick = ap.add_mutually_exclusive_group()
    pick.add_argument(
        "--limit",
        type=int,
        default=None,
        help="photos per labelled set (spread evenly; also caps --timing-photos)",
    )
    pick.add_argument(
        "--sample",
        type=int,
        default=None,
        help="photos per labelled set, a seeded sample stratified by group and target quintile",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of --sample")
    ap.add_argument(
        "--work-dir", type=Path, required=True, help="per-photo results, kept between runs"
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="write the figures and the decision as JSON"
    )
    ap.add_argument("--markdown", type=Path, default=None, help="write the tables and the decision")
    ap.add_argument("--iou", type=float, default=0.3, help="IoU for a boxed face to count")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the golden table's: 1)")
    ap.add_argument("--timing-photos", type=int, default=30)
    ap.add_argument("--timing-repeat", type=int, default=3)
    ap.add_argument(
        "--baseline",
        default=DetectorConfig().name,
        help="the detector candidates must beat (the current default)",
    )
    ap.add_argument("--pc-tolerance", type=float, default=Tolerances.pc)
    ap.add_argument("--mae-tolerance", type=float, default=Tolerances.mae, help="relative")
    ap.add_argument("--nme-tolerance", type=float, default=Tolerances.nme, help="relative")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if not (args.data / "fixtures").is_dir():
        sys.stderr.write(f"error: {args.data / 'fixtures'} not found (pass --data)\n")
        return 2
    try:
        for spec in args.detectors:
            parse_spec(spec)
    except (TypeError, ValueError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if args.limit is not None and args.limit < 1 or args.sample is not None and args.sample < 1:
        sys.stderr.write("error: --limit and --sample must be at least 1\n")
        return 2
    import torch

    torch.set_num_threads(args.threads)
    try:
        results = evaluate(args)
    except ValueError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    tol = Tolerances(args.pc_tolerance, args.mae_tolerance, args.nme_tolerance)
    decision = decide(results, args.baseline, tol) if args.baseline in results else None
    text = markdown(results, decision)
    sys.stdout.write(text + "\n")
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.out:
        doc = {
            "settings": {
                "detectors": args.detectors,
                "sets": args.sets,
                "limit": args.limit,
                "sample": args.sample,
                "seed": args.seed,
                "iou": args.iou,
                "threads": args.threads,
                "timing_photos": args.timing_photos,
                "timing_repeat": args.timing_repeat,
                "baseline": args.baseline,
                "tolerances": vars(tol),
            },
            "results": results,
            "decision": decision,
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
