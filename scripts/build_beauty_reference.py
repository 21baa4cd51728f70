"""Build the beautification reference set ``models/beauty_reference_scut.npz`` and its manifest
entry.

Every SCUT-FBP5500 photo of the data folder is run through facecore's own pipeline
(``FaceAnalyzer(stages=("landmarks",), max_faces=1)``: the default detector, then dlib's 68-point
predictor), so that the references have exactly the landmarks an input photo gets. A fixed,
seeded list of 100 photos (stratified by the AF/AM/CF/CM groups) is held out for
``scripts/eval_beautify.py`` and stored in the file; the others are aligned by generalised
Procrustes analysis and stored as float16 with their mean ratings and ids.

    .venv/bin/python scripts/build_beauty_reference.py --data ../shared/data

Runs in about two minutes on two cores. The data (and so the file) is for non-commercial research
use only.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecore.analyzer import FaceAnalyzer  # noqa: E402
from facecore.beauty.shape import REFERENCE_MODEL, BeautyReference, procrustes_mean  # noqa: E402
from facecore.datasets import dataset_hash, load_scut_fbp5500  # noqa: E402
from facecore.model_store import sha256_file, write_manifest_entry  # noqa: E402

log = logging.getLogger("build_beauty_reference")

HOLDOUT = 100
SEED = 11
LICENCE = "non-commercial research use only (SCUT-FBP5500)"


def holdout_ids(names: list[str], n: int = HOLDOUT, seed: int = SEED) -> list[str]:
    """``n`` photo ids, stratified by the 2-letter group prefix (largest remainder), seeded."""
    rng = np.random.default_rng(seed)
    groups = sorted({name[:2] for name in names})
    members = {g: sorted(x for x in names if x[:2] == g) for g in groups}
    quota = {g: n * len(members[g]) / len(names) for g in groups}
    counts = {g: int(np.floor(q)) for g, q in quota.items()}
    for g in sorted(groups, key=lambda g: counts[g] - quota[g])[: n - sum(counts.values())]:
        counts[g] += 1
    chosen: list[str] = []
    for g in groups:
        pick = rng.permutation(len(members[g]))[: counts[g]]
        chosen += [members[g][i] for i in sorted(pick)]
    return sorted(chosen)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / f"{REFERENCE_MODEL}.npz")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N photos (testing).")
    ap.add_argument("--no-manifest", action="store_true", help="Do not write the manifest entry.")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    ds = load_scut_fbp5500(args.data, landmarks=False)
    names = [Path(p).name for p in ds.relative_paths]
    held = set(holdout_ids(names))
    analyzer = FaceAnalyzer(stages=("landmarks",), max_faces=1).load()
    shapes, scores, ids, missing = [], [], [], []
    t0 = time.perf_counter()
    todo = [i for i, name in enumerate(names) if name not in held]
    if args.limit:
        todo = todo[: args.limit]
    for n, i in enumerate(todo):
        faces = analyzer.analyze(ds.paths[i])
        if not faces:
            missing.append(names[i])
            continue
        shapes.append(faces[0].landmarks)
        scores.append(float(ds.targets[i]))
        ids.append(names[i])
        if (n + 1) % 500 == 0:
            log.info("%d / %d photos, %.0f s", n + 1, len(todo), time.perf_counter() - t0)
    log.info(
        "landmarks of %d photos in %.0f s; no face: %s",
        len(ids),
        time.perf_counter() - t0,
        missing or "none",
    )
    mean, aligned = procrustes_mean(np.stack(shapes))
    residual = float(np.sqrt(((aligned - mean) ** 2).sum(-1).mean()))
    ref = BeautyReference.from_arrays(
        aligned, np.array(scores), np.array(ids), np.array(sorted(held)), mean
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ref.save(args.out)
    size = args.out.stat().st_size
    log.info(
        "wrote %s (%d references, %d held out, %.0f kB)", args.out, len(ref), len(held), size / 1024
    )
    if args.no_manifest:
        return 0
    entry = {
        "name": REFERENCE_MODEL,
        "file": args.out.name,
        "sha256": sha256_file(args.out),
        "kind": "beautification_reference",
        "task": "beautification",
        "architecture": "knn_shape_reference",
        "input_size": None,
        "normalisation": None,
        "chip": None,
        "outputs": [
            {"name": "landmarks", "kind": "vector", "scale": None, "bins": None, "dim": 136}
        ],
        "inputs": (
            "iBUG-68 landmarks of one face (facecore landmarks stage) and its predicted "
            "attractiveness; read by facecore.beauty.shape (BeautyReference, shape_target). "
            "Arrays: landmarks (N, 68, 2) float16 in the canonical frame (similarity-aligned to "
            "mean_shape: centred, unit RMS radius, eye line horizontal), scores (N,) mean "
            "ratings 1-5, ids (N,), holdout_ids (100,) photos kept out for evaluation"
        ),
        "source": (
            "scripts/build_beauty_reference.py: FaceAnalyzer(stages=('landmarks',), "
            "max_faces=1) on SCUT-FBP5500 photos, generalised Procrustes alignment "
            "(Zhang, Xiao, Lu, PAA 2018; Leyvand et al., SIGGRAPH 2008)"
        ),
        "training_data": (
            f"SCUT-FBP5500, {len(names)} photos of shared/data (dataset sha256 "
            f"{dataset_hash(ds)}): {len(ref)} references, {len(held)} held out (seeded, "
            f"stratified by group, seed {SEED}), {len(missing)} without a face"
        ),
        "licence": LICENCE,
        "metrics": {
            "n_references": len(ref),
            "n_holdout": len(held),
            "n_without_face": len(missing),
            "score_mean": round(float(np.mean(scores)), 4),
            "procrustes_rms_residual": round(residual, 5),
        },
        "documentation": "docs/beautify.md",
        "rebuild": ".venv/bin/python scripts/build_beauty_reference.py --data ../shared/data",
    }
    write_manifest_entry(entry)
    log.info("manifest entry %r written", REFERENCE_MODEL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
