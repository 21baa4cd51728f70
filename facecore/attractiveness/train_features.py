"""The feature blocks of every photo of a training set, computed by the serving code and cached.

:func:`extract_dataset_features` runs every photo through ``FaceAnalyzer(stages=("trunk",),
max_faces=1)`` and :class:`~facecore.attractiveness.face_features.FaceFeatureExtractor`, the
code that serves the classical model, and caches the blocks in ``<cache_dir>/<key>.npz`` (keyed
by the dataset's hash, the feature version and the analyzer settings). No paper itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from facecore.analyzer import FaceAnalyzer
from facecore.atomic import atomic_path
from facecore.attractiveness.face_features import BLOCK_NAMES, FaceFeatureExtractor
from facecore.datasets import dataset_hash, iter_images

__all__ = ["DatasetFeatures", "extract_dataset_features"]

logger = logging.getLogger(__name__)


class DatasetFeatures(NamedTuple):
    """Feature blocks of every photo of a dataset (zero where no face was found), which photos
    have a face, the seconds the extraction took (kept in the cache) and whether it was read."""

    blocks: dict[str, np.ndarray]
    has_face: np.ndarray
    seconds: float
    from_cache: bool


def extract_dataset_features(
    dataset: Any,
    extractor: FaceFeatureExtractor,
    *,
    cache_dir: str | os.PathLike[str] | None = ".cache/features",
    progress: bool = False,
) -> DatasetFeatures:
    """Feature blocks of every photo of ``dataset`` (its largest face), cached.

    Parameters
    ----------
    dataset : FaceDataset
    extractor : FaceFeatureExtractor
    cache_dir : path-like or None
        Folder of the ``.npz`` cache (None: neither read nor written).
    progress : bool
        Show a tqdm bar (on stderr).

    Returns
    -------
    DatasetFeatures
    """
    analyzer = FaceAnalyzer(stages=("trunk",), max_faces=1)
    tag = hashlib.sha256(repr(analyzer.config).encode()).hexdigest()[:10]
    key = f"{dataset.name}-{dataset_hash(dataset)[:16]}-f{extractor.version}-a{tag}"
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.npz"
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            blocks = {name: z[f"block_{name}"] for name in BLOCK_NAMES}
            seconds = float(z["seconds"]) if "seconds" in z.files else 0.0
            feats = DatasetFeatures(blocks, z["has_face"], seconds, True)
        logger.info("features of %d photos read from %s", len(feats.has_face), path)
        return feats
    analyzer.load()
    n, shapes = len(dataset), extractor.block_shapes()
    blocks = {
        name: np.zeros((n, *shapes[name]), dtype=np.uint8 if name == "pcanet" else np.float32)
        for name in BLOCK_NAMES
    }
    has_face = np.zeros(n, dtype=bool)
    images = iter_images(dataset)
    if progress:
        from tqdm import tqdm

        images = tqdm(images, total=n, desc="features", unit="img")
    t0 = time.perf_counter()
    for i, image in enumerate(images):
        faces = analyzer.analyze(image)
        if not faces:
            logger.warning("no face found in %s; left out", dataset.relative_paths[i])
            continue
        for name, value in extractor.extract(image, faces[0]).items():
            blocks[name][i] = value
        has_face[i] = True
    seconds = time.perf_counter() - t0
    logger.info("features of %d photos extracted in %.1f s", n, seconds)
    if path is not None:
        with atomic_path(path) as tmp:
            arrays = {f"block_{k}": v for k, v in blocks.items()}
            np.savez(tmp, has_face=has_face, seconds=seconds, **arrays)
        logger.info("feature cache written to %s", path)
    return DatasetFeatures(blocks, has_face, seconds, False)
