#!/usr/bin/env python
"""Recall and false positives of each face detector on the fixtures and the labelled sets.

For every detector named (default: hog, mtcnn, auto, blazeface_back, blazeface_short):

* ``dlib_faces``: the 43 boxed faces of the 9 PASCAL VOC photos of dlib's examples
  (``fixtures/dlib_faces/*_with_face_landmarks.xml``, read with
  :func:`facecore.evaluation.read_dlib_xml`): recall and false positives, a detection matching
  an unmatched true box (best IoU first) at IoU >= ``--iou`` (0.3: detectors draw boxes of
  different shapes around the same face; 0.5 is reported too);
* ``face_recognition`` (portraits) and ``hard_cases`` (painting, blur, cartoon, rotation,
  profile, tilt, mask): the share of photos with a face found;
* ``no_face`` (7 photos without a face): false positives and photos with any;
* SCUT-FBP5500, MEBeauty and UTKFace (one face per photo): the share of photos with at least
  one face found and with exactly one (``--limit N`` photos spread evenly over each set).

    .venv/bin/python scripts/detector_eval.py --limit 100 --json /tmp/detectors.json
    .venv/bin/python scripts/detector_eval.py --detectors hog blazeface_back:0.75 --limit 50

A detector is a :class:`facecore.detect.DetectorConfig` name, optionally ``:THRESHOLD`` for the
BlazeFace and MTCNN minimum probability. Prints a markdown table; ``--json`` writes the figures.
Nothing is timed (``make bench`` times the detectors).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecore.datasets import load_mebeauty, load_scut_fbp5500, load_utkface  # noqa: E402
from facecore.detect import DetectorConfig, FaceDetector  # noqa: E402
from facecore.evaluation import read_dlib_xml  # noqa: E402
from facecore.io import load_image  # noqa: E402
from facecore.types import Box  # noqa: E402

log = logging.getLogger("detector_eval")

DEFAULT_DETECTORS = ("hog", "mtcnn", "auto", "blazeface_back", "blazeface_short")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
DATASETS = {
    "scut-fbp5500": load_scut_fbp5500,
    "mebeauty": load_mebeauty,
    "utkface": load_utkface,
}


def make(spec: str) -> tuple[str, FaceDetector]:
    """A detector from ``name`` or ``name:threshold``."""
    name, _, threshold = spec.partition(":")
    fields: dict[str, Any] = {"name": name}
    if threshold:
        key = "mtcnn_threshold" if name in ("mtcnn", "auto") else "blazeface_threshold"
        fields[key] = float(threshold)
    return spec, DetectorConfig(**fields).build()


def match(found: list[Box], truth: list[Box], iou: float) -> int:
    """How many true boxes a detection matches (greedy, best IoU first, one to one)."""
    pairs = sorted(
        ((f.iou(t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
        reverse=True,
    )
    used_f, used_t = set(), set()
    for value, i, j in pairs:
        if value < iou:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    return len(used_t)


Detectors = dict[str, FaceDetector]


def detect_all(path: Path, detectors: Detectors) -> dict[str, list[Box]]:
    """Each detector's boxes on one photo (decoded once for all of them)."""
    image = load_image(path)
    return {spec: [f.box for f in d.detect(image)] for spec, d in detectors.items()}


def boxed_faces(fixtures: Path, detectors: Detectors, iou: float) -> dict[str, dict[str, Any]]:
    truth: dict[str, list[Box]] = {}
    for xml in sorted((fixtures / "dlib_faces").glob("*_with_face_landmarks.xml")):
        for face in read_dlib_xml(xml):
            truth.setdefault(face.file, []).append(face.box)
    n_true = sum(len(b) for b in truth.values())
    found = {spec: 0 for spec in detectors}
    hit = {spec: 0 for spec in detectors}
    hit50 = {spec: 0 for spec in detectors}
    for name, boxes in sorted(truth.items()):
        for spec, got in detect_all(fixtures / "dlib_faces" / name, detectors).items():
            found[spec] += len(got)
            hit[spec] += match(got, boxes, iou)
            hit50[spec] += match(got, boxes, 0.5)
    return {
        spec: {
            "photos": len(truth),
            "faces": n_true,
            "recall": round(hit[spec] / n_true, 4),
            "recall_iou50": round(hit50[spec] / n_true, 4),
            "false_positives": found[spec] - hit[spec],
        }
        for spec in detectors
    }


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def counts(paths: list[Path], detectors: Detectors) -> dict[str, list[int]]:
    """Faces found in each photo, per detector."""
    out: dict[str, list[int]] = {spec: [] for spec in detectors}
    for p in paths:
        for spec, got in detect_all(p, detectors).items():
            out[spec].append(len(got))
    return out


def found_share(paths: list[Path], detectors: Detectors) -> dict[str, dict[str, Any]]:
    return {
        spec: {
            "photos": len(paths),
            "with_face": int(sum(c > 0 for c in n)),
            "exactly_one": int(sum(c == 1 for c in n)),
            "missed": [p.name for p, c in zip(paths, n, strict=True) if c == 0][:20],
        }
        for spec, n in counts(paths, detectors).items()
    }


def no_face(folder: Path, detectors: Detectors) -> dict[str, dict[str, Any]]:
    return {
        spec: {
            "photos": len(n),
            "false_positives": int(sum(n)),
            "photos_with_a_face": int(sum(c > 0 for c in n)),
        }
        for spec, n in counts(photos(folder), detectors).items()
    }


def subsample(paths: tuple[Path, ...], limit: int | None) -> list[Path]:
    """``limit`` paths spread evenly over the list (all of them without a limit)."""
    if limit is None or limit >= len(paths):
        return list(paths)
    idx = np.linspace(0, len(paths) - 1, limit).round().astype(int)
    return [paths[i] for i in idx]


def evaluate(detectors: Detectors, data: Path, args: argparse.Namespace) -> list[dict]:
    """One result per detector: every photo is decoded once and given to all of them."""
    fixtures = data / "fixtures"
    parts: dict[str, dict[str, dict[str, Any]]] = {}
    log.info("dlib_faces")
    parts["dlib_faces"] = boxed_faces(fixtures, detectors, args.iou)
    for group in ("face_recognition", "hard_cases"):
        log.info(group)
        parts[group] = found_share(photos(fixtures / group), detectors)
    log.info("no_face")
    parts["no_face"] = no_face(fixtures / "no_face", detectors)
    for name in args.datasets:
        log.info(name)
        parts[name] = found_share(subsample(DATASETS[name](data).paths, args.limit), detectors)
    return [{"detector": spec, **{k: v[spec] for k, v in parts.items()}} for spec in detectors]


def markdown(results: list[dict[str, Any]], datasets: list[str]) -> str:
    head = [
        "detector",
        "dlib_faces recall (IoU 0.3 / 0.5)",
        "dlib_faces FP",
        "face_recognition found",
        "hard_cases found",
        "no_face FP (photos)",
        *(f"{d} found / exactly one" for d in datasets),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        b, nf = r["dlib_faces"], r["no_face"]
        cells = [
            f"`{r['detector']}`",
            f"{b['recall']:.3f} / {b['recall_iou50']:.3f} of {b['faces']}",
            str(b["false_positives"]),
            f"{r['face_recognition']['with_face']}/{r['face_recognition']['photos']}",
            f"{r['hard_cases']['with_face']}/{r['hard_cases']['photos']}",
            f"{nf['false_positives']} ({nf['photos_with_a_face']}/{nf['photos']})",
        ]
        for d in datasets:
            s = r[d]
            cells.append(f"{s['with_face']}/{s['photos']} / {s['exactly_one']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--detectors", nargs="+", default=list(DEFAULT_DETECTORS))
    ap.add_argument("--datasets", nargs="*", choices=sorted(DATASETS), default=sorted(DATASETS))
    ap.add_argument("--limit", type=int, default=None, help="photos per labelled set")
    ap.add_argument("--iou", type=float, default=0.3, help="IoU for a boxed face to count")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.data / "fixtures").is_dir():
        sys.stderr.write(f"error: {args.data / 'fixtures'} not found (pass --data)\n")
        return 2
    try:
        detectors = dict(make(s) for s in args.detectors)
    except (TypeError, ValueError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    results = evaluate(detectors, args.data, args)
    sys.stdout.write(markdown(results, args.datasets) + "\n")
    if args.json:
        doc = {"limit": args.limit, "iou": args.iou, "results": results}
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
