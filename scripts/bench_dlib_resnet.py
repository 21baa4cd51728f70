"""Time dlib's face-recognition ResNet against facecore's PyTorch port on aligned 150x150 chips.

Usage::

    python scripts/bench_dlib_resnet.py [--n-chips 16] [--threads 2] [--json out.json]

Reports the median milliseconds per chip for batch 1 and batch 8, for dlib
(``compute_face_descriptor``, which uses dlib's own CPU code; the pip ``dlib-bin`` wheel is built
without BLAS) and for :class:`facecore.nn.dlib_resnet.DlibFaceResNet` under
``torch.inference_mode`` with ``torch.set_num_threads(threads)``, plus the largest absolute
difference between the two descriptors. :func:`bench` is the entry point for ``make bench``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("bench_dlib_resnet")

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("obama.jpg", "biden.jpg", "two_people.jpg", "obama_small.jpg")


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _chips(n: int) -> np.ndarray:
    """``n`` aligned chips cut by dlib from the bundled test photos (cycled), or noise if absent."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(_models_dir() / "shape_predictor_68_face_landmarks.dat"))
    chips = []
    for name in PHOTOS:
        path = ROOT / "tests" / "fixtures" / name
        if not path.exists():
            continue
        img = dlib.load_rgb_image(str(path))
        for box in detector(img, 1 if max(img.shape[:2]) < 600 else 0):
            chips.append(dlib.get_face_chip(img, predictor(img, box), size=150, padding=0.25))
    if not chips:
        logger.warning("no bundled photos found; timing random chips")
        return np.random.default_rng(0).integers(0, 256, (n, 150, 150, 3), dtype=np.uint8)
    return np.stack([chips[i % len(chips)] for i in range(n)])


def _median_ms_per_chip(fn: Callable[[np.ndarray], Any], chips: np.ndarray, batch: int) -> float:
    fn(chips[:batch])  # warm-up
    times = []
    for start in range(0, len(chips) - batch + 1, batch):
        t0 = time.perf_counter()
        fn(chips[start : start + batch])
        times.append((time.perf_counter() - t0) * 1000.0 / batch)
    return statistics.median(times)


def bench(n_chips: int = 16, threads: int = 2) -> dict[str, Any]:
    """Median ms per chip for dlib and the PyTorch port, batch 1 and batch 8.

    Parameters
    ----------
    n_chips : int
        Chips timed per configuration (at least 8): ``n_chips`` calls at batch 1,
        ``n_chips // 8`` calls at batch 8.
    threads : int
        ``torch.set_num_threads`` for the PyTorch runs (restored afterwards).

    Returns
    -------
    dict
        ``dlib_b1_ms``, ``dlib_b8_ms``, ``torch_b1_ms``, ``torch_b8_ms`` (median ms per chip),
        ``speedup_b1``, ``speedup_b8``, ``max_abs_diff`` (descriptors, all timed chips),
        ``n_chips``, ``torch_threads``.
    """
    import dlib

    from facecore.nn.dlib_resnet import DlibFaceResNet

    if n_chips < 8:
        raise ValueError(f"n_chips must be at least 8, got {n_chips}")
    chips = _chips(n_chips)
    recognizer = dlib.face_recognition_model_v1(
        str(_models_dir() / "dlib_face_recognition_resnet_model_v1.dat")
    )
    model = DlibFaceResNet.from_dlib_file()

    def run_dlib(batch: np.ndarray) -> np.ndarray:
        return np.asarray(recognizer.compute_face_descriptor(list(batch)))

    def run_torch(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(model.preprocess(batch)).numpy()

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result: dict[str, Any] = {"n_chips": n_chips, "torch_threads": threads}
        for batch in (1, 8):
            result[f"dlib_b{batch}_ms"] = _median_ms_per_chip(run_dlib, chips, batch)
            result[f"torch_b{batch}_ms"] = _median_ms_per_chip(run_torch, chips, batch)
            result[f"speedup_b{batch}"] = result[f"dlib_b{batch}_ms"] / result[f"torch_b{batch}_ms"]
        result["max_abs_diff"] = float(np.abs(run_dlib(chips) - run_torch(chips)).max())
    finally:
        torch.set_num_threads(previous)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-chips", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    result = bench(args.n_chips, args.threads)
    plural = "s" if args.threads > 1 else ""
    for batch in (1, 8):
        print(
            f"batch {batch}: dlib {result[f'dlib_b{batch}_ms']:.1f} ms/chip, "
            f"torch ({args.threads} thread{plural}) {result[f'torch_b{batch}_ms']:.1f} ms/chip, "
            f"x{result[f'speedup_b{batch}']:.1f}"
        )
    print(f"max |dlib - torch| = {result['max_abs_diff']:.2e} over {args.n_chips} chips")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
