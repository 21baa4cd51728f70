"""Aligned face chips of a whole dataset and frozen maps of dlib's face ResNet, cached on disk.

:func:`extract_dataset_chips` cuts dlib's 150x150 aligned chip of the largest face of every
photo (in chunks, each written atomically, so an interrupted run resumes) and
:func:`frozen_maps` runs chips through the first stages of dlib's face ResNet, cached and read
back memory-mapped. This module implements no paper; torch is only loaded when used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facecore.atomic import atomic_path

__all__ = [
    "DatasetChips",
    "appearance_features",
    "chip_cache_key",
    "chip_cache_path",
    "crop_batches",
    "extract_dataset_chips",
    "frozen_maps",
    "load_face_resnet",
]

logger = logging.getLogger(__name__)


def chip_cache_key(analyzer: Any) -> str:
    """Key of the chips: the trunk's chip as its manifest entry specifies it
    (``facecore.descriptor.face_chips``) and the analyzer's settings (``repr`` of its config)."""
    from facecore.trunk import chip_spec

    return f"descriptor.face_chips:{chip_spec()!r}|analyzer={analyzer.config!r}"


#: Side of the default chip.
DLIB_CHIP_SIZE = 150
#: The model-store name of dlib's face ResNet.
FACE_RESNET_MODEL = "dlib_face_recognition_resnet"

_N_LANDMARKS = 68
_ARRAYS = ("chips", "has_face", "detector", "landmarks")


@dataclass
class DatasetChips:
    """Aligned chips of every photo of a dataset (the largest face of each).

    Attributes
    ----------
    chips : ndarray of shape (N, S, S, 3), uint8
        RGB chips; all zero for a photo without a face.
    has_face : ndarray of shape (N,), bool
    detector : ndarray of shape (N,), str
        Detector that found the face ("" when none).
    landmarks : ndarray of shape (N, 68, 2), float32
        The face's landmarks in image pixels (NaN when none).
    key, cache_path : str, Path
        The full cache key (crop key and analyzer settings) and the merged ``.npz``.
    from_cache : bool
        True if the merged file was read, not computed.
    seconds : float
        Time the analysis and cropping took (also when read from cache).
    """

    chips: np.ndarray
    has_face: np.ndarray
    detector: np.ndarray
    landmarks: np.ndarray
    key: str
    cache_path: Path
    from_cache: bool = False
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.has_face)

    @property
    def cache_key(self) -> str:
        """A short name of these chips (the cache file's stem), e.g. to key :func:`frozen_maps`."""
        return self.cache_path.name.removesuffix(".npz")


def chip_cache_path(dataset: Any, key: str, cache_dir: str | os.PathLike[str]) -> Path:
    """The merged cache file of ``dataset``'s chips of ``key`` (:func:`chip_cache_key`):
    ``<cache_dir>/<dataset name>-<16 hex of the dataset hash>-c<12 hex of the key>.npz``."""
    from facecore.datasets import dataset_hash

    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{dataset.name}-{dataset_hash(dataset)[:16]}-c{digest}.npz"


def _compute_chunk(dataset: Any, start: int, stop: int, analyzer: Any) -> dict[str, np.ndarray]:
    from facecore.datasets import iter_images
    from facecore.descriptor import face_chips

    n = stop - start
    chips = np.zeros((n, DLIB_CHIP_SIZE, DLIB_CHIP_SIZE, 3), np.uint8)
    has_face = np.zeros(n, bool)
    detector = np.full(n, "", dtype="<U16")
    landmarks = np.full((n, _N_LANDMARKS, 2), np.nan, np.float32)
    t0 = time.perf_counter()
    for j, image in enumerate(iter_images(dataset, np.arange(start, stop))):
        faces = analyzer.analyze(image)
        if not faces:
            logger.warning("no face found in %s", dataset.relative_paths[start + j])
            continue
        face = faces[0]
        chips[j] = face_chips(image, [face])[0]
        has_face[j] = True
        detector[j] = str(face.detector)
        if face.landmarks is not None and np.shape(face.landmarks) == (_N_LANDMARKS, 2):
            landmarks[j] = face.landmarks
    seconds = np.float64(time.perf_counter() - t0)
    arrays = dict(zip(_ARRAYS, (chips, has_face, detector, landmarks), strict=True))
    return arrays | {"start": np.int64(start), "stop": np.int64(stop), "seconds": seconds}


def _read(path: Path, key: str, rows: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """The arrays of a cache file of ``key`` (a chunk: of ``rows``), None when it holds others."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            found = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError) as e:
        logger.warning("%s unreadable (%s); recomputing it", path, e)
        return None
    if str(found.get("key")) != key or (rows and rows != (found["start"], found["stop"])):
        logger.warning("%s belongs to another run; recomputing it", path)
        return None
    return found


def extract_dataset_chips(
    dataset: Any,
    *,
    cache_dir: str | os.PathLike[str],
    analyzer: Any = None,
    chunk_size: int = 500,
) -> DatasetChips:
    """Aligned chips of the largest face of every photo of ``dataset``, cached and resumable.

    Parameters
    ----------
    dataset : FaceDataset
        Its ``paths`` are read in row order (:func:`facecore.datasets.iter_images`).
    cache_dir : path-like
        Folder of the cache (:func:`chip_cache_path`).
    analyzer : FaceAnalyzer, optional
        Default ``FaceAnalyzer(stages=("landmarks",), max_faces=1)``; ``analyze(image)`` must
        return faces largest first. Loaded only if something has to be computed.
    chunk_size : int, default 500
        Photos per chunk file (``<stem>.chunks/chunk_<start>.npz``).

    Returns
    -------
    DatasetChips
    """
    from facecore.analyzer import FaceAnalyzer

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if analyzer is None:
        analyzer = FaceAnalyzer(stages=("landmarks",), max_faces=1)
    full_key, n = chip_cache_key(analyzer), len(dataset)
    path = chip_cache_path(dataset, full_key, cache_dir)
    cached = _read(path, full_key)
    if cached is not None:
        logger.info("chips of %d photos read from %s", n, path)
        return _dataset_chips(cached, full_key, path, from_cache=True)

    chunk_dir = path.with_name(path.name.removesuffix(".npz") + ".chunks")
    chunks: list[dict[str, np.ndarray]] = []
    loaded = False
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        chunk_path = chunk_dir / f"chunk_{start:07d}.npz"
        chunk = _read(chunk_path, full_key, (start, stop))
        if chunk is not None:
            logger.info("chunk %d-%d read from %s", start, stop, chunk_path)
        else:
            if not loaded:
                analyzer.load()
                loaded = True
            chunk = _compute_chunk(dataset, start, stop, analyzer)
            with atomic_path(chunk_path) as tmp:
                np.savez(tmp, key=np.str_(full_key), **chunk)
            logger.info("chips %d-%d of %d done", start, stop, n)
        chunks.append(chunk)
    parts = chunks or [_compute_chunk(dataset, 0, 0, analyzer)]  # no photos: arrays of no rows
    merged = {k: np.concatenate([c[k] for c in parts]) for k in _ARRAYS}
    merged["seconds"] = np.float64(sum(float(c["seconds"]) for c in chunks))
    with_face = int(merged["has_face"].sum())
    logger.info("chips of %d photos (%d with a face) in %.1f s", n, with_face, merged["seconds"])
    with atomic_path(path) as tmp:
        np.savez(tmp, key=np.str_(full_key), **merged)
    if chunk_dir.is_dir():
        shutil.rmtree(chunk_dir)
    logger.info("chip cache written to %s", path)
    return _dataset_chips(merged, full_key, path)


def _dataset_chips(arrays: dict[str, Any], key: str, path: Path, **more: Any) -> DatasetChips:
    seconds = float(arrays["seconds"])
    return DatasetChips(
        **{k: arrays[k] for k in _ARRAYS}, key=key, cache_path=path, seconds=seconds, **more
    )


# -- frozen maps ----------------------------------------------------------------------------------
def crop_batches(
    dataset: Any, chips: DatasetChips, spec: Any, batch_size: int
) -> Iterator[np.ndarray]:
    """The aligned crops (``spec``, an :class:`~facecore.align.AlignSpec`) of every photo with a
    face, cut from the photo by the landmarks of its chips, in batches (B, S, S, 3) uint8."""
    from facecore.align import face_crop
    from facecore.datasets import iter_images
    from facecore.types import Box, Face

    rows, crops = np.flatnonzero(chips.has_face), []
    for n, (i, image) in enumerate(zip(rows, iter_images(dataset, rows), strict=True), 1):
        lm = chips.landmarks[i]
        box = Box(*map(float, (*lm.min(axis=0), *lm.max(axis=0))))
        crops.append(face_crop(image, Face(box, 1.0, "dataset", landmarks=lm), spec))
        if len(crops) == batch_size or n == len(rows):
            yield np.stack(crops)
            crops.clear()


def appearance_features(
    dataset: Any, chips: DatasetChips, cache_dir: str | os.PathLike[str], spec: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``appearance`` stage's features (:mod:`facecore.appearance`) of every photo with a
    face, from the landmarks of its chips: the plain and the mirrored crop's, each
    (n with a face, 1024) float32, cached in ``cache_dir`` by dataset, chips and crop.

    ``spec`` is the crop (an :class:`~facecore.align.AlignSpec`; default the manifest's).
    """
    from facecore.appearance import APPEARANCE_MODEL, AppearanceStage

    stage = AppearanceStage(mirror=False, batch_size=32)
    spec = spec or stage.spec
    crop = f"{spec.method}-{spec.size}-{spec.padding:g}"
    path = Path(cache_dir) / f"{dataset.name}-{chips.cache_key}-{crop}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["plain"], z["mirrored"]
    plain, mirrored = [], []
    t0 = time.perf_counter()
    for batch in crop_batches(dataset, chips, spec, stage.batch_size):
        plain.append(stage.compute(batch))
        mirrored.append(stage.compute(np.ascontiguousarray(batch[:, :, ::-1])))
    out = np.concatenate(plain), np.concatenate(mirrored)
    logger.info(
        "%s features of %d faces (%s) in %.0f s",
        APPEARANCE_MODEL,
        int(chips.has_face.sum()),
        crop,
        time.perf_counter() - t0,
    )
    with atomic_path(path) as tmp:
        np.savez(tmp, plain=out[0], mirrored=out[1])
    return out


def load_face_resnet() -> Any:
    """dlib's face ResNet (:class:`~facecore.nn.dlib_resnet.DlibFaceResNet`) with its published
    weights, from the model store (eval mode)."""
    from facecore.model_router import resolve
    from facecore.nn.dlib_resnet import DlibFaceResNet

    return DlibFaceResNet.from_dlib_file(resolve(FACE_RESNET_MODEL))


def frozen_maps(
    chips: np.ndarray,
    model: Any = None,
    upto: str = "stage2",
    batch_size: int = 64,
    *,
    dtype: Literal["float32", "float16"] = "float32",
    cache_dir: str | os.PathLike[str] | None = None,
    key: str | None = None,
) -> np.ndarray:
    """Feature maps of the frozen bottom of dlib's face ResNet, up to and including ``upto``.

    Parameters
    ----------
    chips : ndarray of shape (N, 150, 150, 3), uint8
        Aligned RGB chips (e.g. :attr:`DatasetChips.chips`).
    model : DlibFaceResNet, optional
        Default :func:`load_face_resnet` (the published weights); run on the CPU in eval mode.
    upto : str, default "stage2"
        ``"stem"`` or one of ``model.stage_names`` (``"stage1"`` ... ``"stage5"``).
    batch_size : int, default 64
    dtype : {"float32", "float16"}, default "float32"
        Storage type of the returned maps (computed in float32).
    cache_dir : path-like, optional
        Cache the maps here (``maps-<upto>-<dtype>-<hash of key>.npy``; read back
        memory-mapped, read-only).
    key : str, optional
        Names the chips and the model (e.g. ``DatasetChips.cache_key`` and the model's name);
        required with ``cache_dir``.

    Returns
    -------
    ndarray of shape (N, C, H, W)
        For dlib's network: stem / stage1 (32, 35, 35), stage2 (64, 17, 17), stage3
        (128, 8, 8), stage4 (256, 4, 4), stage5 (256, 2, 2).
    """
    import torch

    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
    if cache_dir is not None and not key:
        raise ValueError("caching the maps needs a key naming the chips and the model")
    digest = hashlib.sha256(f"{key}|{upto}|{dtype}".encode()).hexdigest()[:16]
    path = None if cache_dir is None else Path(cache_dir) / f"maps-{upto}-{dtype}-{digest}.npy"
    if path is not None and path.is_file():
        maps = np.load(path, mmap_mode="r")
        if len(maps) == len(chips):
            logger.info("%s maps of %d chips read from %s", upto, len(chips), path)
            return maps
        logger.warning("map cache %s has %d rows, not %d; recomputing", path, len(maps), len(chips))

    if model is None:
        model = load_face_resnet()
    names = ("stem", *model.stage_names)
    if upto not in names:
        raise ValueError(f"upto must be one of {names}, got {upto!r}")
    n_stages = names.index(upto)
    model.to("cpu").eval()
    out: np.ndarray | None = None
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(chips), batch_size):
            x = model.stem(model.preprocess(np.asarray(chips[s : s + batch_size])))
            for i in range(n_stages):
                x = model.stages[i](x)
            block = x.float().cpu().numpy()
            if out is None:
                out = np.empty((len(chips), *block.shape[1:]), dtype=dtype)
            out[s : s + len(block)] = block
    if out is None:
        raise ValueError("no chips given")
    took = time.perf_counter() - t0
    logger.info("%s maps %s of %d chips in %.1f s", upto, out.shape[1:], len(chips), took)
    if path is not None:
        with atomic_path(path) as tmp:
            np.save(tmp, out)
        logger.info("maps cached in %s", path)
    return out
