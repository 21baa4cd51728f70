"""Evaluate beautification on the 100 SCUT-FBP5500 photos held out of the reference set.

For every held-out photo (``holdout_ids`` of ``models/beauty_reference_scut.npz``) and every
(warp, smooth) setting, ``facecore.beauty.beautify`` is run with the shipped scorer. For the
default setting the original and the result are also analysed from scratch
(``analyzer.analyze(image)``: detector, landmarks, trunk, attractiveness), which gives the two
target figures:

* the share of faces the shipped scorer rates higher after than before (target >= 80%);
* the share whose dlib descriptors before and after are closer than 0.4 (target >= 95%).

The other settings report the same figures from ``beautify``'s own second scoring (the detected
box is reused; see :mod:`facecore.beauty.pipeline`) - the sweep the defaults were chosen from.
Writes ``docs/img/beautify_eval.json`` and a strip of six faces, originals over results, to
``docs/img/beautify_strip.png``.

    .venv/bin/python scripts/eval_beautify.py --data ../shared/data

About 2 minutes on two idle cores (estimated; 9.5 minutes on two cores shared with other jobs);
``--no-sweep`` runs the default setting only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecore.analyzer import FaceAnalyzer  # noqa: E402
from facecore.beauty.pipeline import (  # noqa: E402
    DEFAULT_SMOOTH,
    DEFAULT_WARP,
    SCORE_STAGE,
    beautify,
)
from facecore.beauty.shape import load_reference  # noqa: E402
from facecore.io import load_image  # noqa: E402

log = logging.getLogger("eval_beautify")

SWEEP = ((0.0, 0.5), (0.5, 0.0), (0.5, 0.5), (0.75, 0.0), (0.75, 0.5), (1.0, 0.5), (1.0, 1.0))
IDENTITY_THRESHOLD = 0.4
STRIP_FACES = 6
STRIP_WIDTH = 160


def _summary(before: np.ndarray, after: np.ndarray, identity: np.ndarray, shift: np.ndarray):
    d = after - before
    return {
        "n": int(len(d)),
        "rated_higher": round(float(np.mean(d > 0)), 4),
        "score_change_mean": round(float(d.mean()), 4),
        "score_change_median": round(float(np.median(d)), 4),
        "score_change_min": round(float(d.min()), 4),
        "identity_below_0.4": round(float(np.mean(identity < IDENTITY_THRESHOLD)), 4),
        "identity_distance_median": round(float(np.median(identity)), 4),
        "identity_distance_p95": round(float(np.percentile(identity, 95)), 4),
        "identity_distance_max": round(float(identity.max()), 4),
        "landmark_shift_mean_px": round(float(shift.mean()), 3),
    }


def _fresh(analyzer: FaceAnalyzer, image: np.ndarray, box) -> tuple[float, np.ndarray] | None:
    """Score and descriptor of the face overlapping ``box`` most, from a full analysis."""
    faces = analyzer.analyze(image, stages=(SCORE_STAGE,))
    if not faces:
        return None
    face = max(faces, key=lambda f: f.box.iou(box))
    if face.box.iou(box) < 0.3:
        return None
    return float(face.predictions[SCORE_STAGE].value), np.asarray(face.embedding)


def _strip(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    cols = []
    for before, after in pairs:
        h = int(round(before.shape[0] * STRIP_WIDTH / before.shape[1]))
        top = cv2.resize(before, (STRIP_WIDTH, h), interpolation=cv2.INTER_AREA)
        bottom = cv2.resize(after, (STRIP_WIDTH, h), interpolation=cv2.INTER_AREA)
        cols.append(np.concatenate([top, bottom], 0))
    height = max(c.shape[0] for c in cols)
    cols = [
        np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0)), constant_values=255) for c in cols
    ]
    return np.concatenate(cols, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N held-out photos.")
    ap.add_argument("--no-sweep", action="store_true", help="Only the default setting.")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    ref = load_reference()
    ids = list(ref.holdout_ids[: args.limit] if args.limit else ref.holdout_ids)
    folder = args.data / "scut-fbp5500" / "images"
    images = {i: load_image(folder / i) for i in ids}
    analyzer = FaceAnalyzer(stages=(SCORE_STAGE,), max_faces=5).load()
    default = (DEFAULT_WARP, DEFAULT_SMOOTH)
    settings = [default] + ([] if args.no_sweep else [s for s in SWEEP if s != default])
    report: dict = {
        "holdout": len(ids),
        "default": {"warp": DEFAULT_WARP, "smooth": DEFAULT_SMOOTH},
        "identity_threshold": IDENTITY_THRESHOLD,
        "settings": [],
    }
    strip_ids = ids[:: max(1, len(ids) // STRIP_FACES)][:STRIP_FACES]
    pairs = []
    t0 = time.perf_counter()
    for warp, smooth in settings:
        before, after, ident, shift, skipped = [], [], [], [], []
        fresh_b, fresh_a, fresh_id, agree = [], [], [], []
        for i in ids:
            try:
                r = beautify(images[i], warp, smooth, analyzer, reference=ref)
            except ValueError as e:  # NoFaceError: the photo has no detectable face
                skipped.append(f"{i}: {e}")
                continue
            before.append(r.score_before)
            after.append(r.score_after if r.score_after is not None else r.score_before)
            ident.append(r.identity_distance if r.identity_distance is not None else np.inf)
            shift.append(r.landmark_shift_mean)
            if (warp, smooth) == default:
                fb = _fresh(analyzer, images[i], r.box)
                fa = _fresh(analyzer, r.image, r.box)
                if fb is None or fa is None:
                    skipped.append(f"{i}: face not found again by a fresh analysis")
                    continue
                fresh_b.append(fb[0])
                fresh_a.append(fa[0])
                fresh_id.append(float(np.linalg.norm(fa[1] - fb[1])))
                agree.append((fa[0] > fb[0]) == (after[-1] > before[-1]))
                if i in strip_ids:
                    pairs.append((images[i], r.image))
        row = {"warp": warp, "smooth": smooth, "skipped": skipped}
        row["beautify"] = _summary(
            np.array(before), np.array(after), np.array(ident), np.array(shift)
        )
        if fresh_b:
            row["fresh_analysis"] = _summary(
                np.array(fresh_b), np.array(fresh_a), np.array(fresh_id), np.array(shift)
            )
            row["fresh_agrees_with_beautify"] = round(float(np.mean(agree)), 4)
        report["settings"].append(row)
        s = row.get("fresh_analysis", row["beautify"])
        log.info(
            "warp %.2f smooth %.2f: rated higher %.0f%%, change %+.3f (median %+.3f), identity < "
            "0.4 %.0f%% (median %.3f, max %.3f), shift %.2f px  [%.0f s]",
            warp, smooth, 100 * s["rated_higher"], s["score_change_mean"],
            s["score_change_median"], 100 * s["identity_below_0.4"],
            s["identity_distance_median"], s["identity_distance_max"],
            s["landmark_shift_mean_px"], time.perf_counter() - t0,
        )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "beautify_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    if pairs:
        strip = _strip(pairs)
        cv2.imwrite(
            str(args.out / "beautify_strip.png"),
            cv2.cvtColor(strip, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_PNG_COMPRESSION, 9],
        )
    log.info("wrote %s", args.out / "beautify_eval.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
