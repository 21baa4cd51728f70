"""128-D face descriptor with dlib's own C++ network (the reference the torch trunk matches).

dlib's ResNet-34-like metric-learning network (King, dlib 19.3, 2017; model
``dlib_face_recognition_resnet`` in the manifest): two faces whose descriptors are closer than
0.6 in Euclidean distance are the same person (99.38% on LFW per dlib). The pipeline computes the
descriptor with the PyTorch port (:mod:`facecore.trunk`, about 9x faster here); this module keeps
dlib's own forward pass for parity checks and benchmarks. Input is the aligned chip of the model's
manifest entry (:func:`face_chips`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facecore.align import face_crops
from facecore.lazy import Lazy
from facecore.model_router import resolve
from facecore.trunk import TRUNK_MODEL, chip_spec
from facecore.types import Face

__all__ = ["DlibDescriptor", "face_chips"]


def face_chips(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """The trunk's aligned chips of faces with 68 landmarks, shape (N, 150, 150, 3) uint8
    (cached on each face)."""
    return face_crops(image, faces, chip_spec(TRUNK_MODEL))


class DlibDescriptor:
    """dlib's ResNet descriptor (dlib's C++ forward pass; one call at a time per instance)."""

    model_name = TRUNK_MODEL

    def __init__(self) -> None:
        import threading

        self._net = Lazy(self._read_network)
        self._run_lock = threading.Lock()  # dlib's network reuses internal buffers

    def _read_network(self) -> Any:
        import dlib

        return dlib.face_recognition_model_v1(str(resolve(self.model_name)))

    def load(self) -> None:
        self._net.get()

    def compute(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors of aligned chips (N, 150, 150, 3) uint8 -> (N, 128) float32."""
        net = self._net.get()
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        with self._run_lock:
            out = net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.asarray([np.asarray(v) for v in out], dtype=np.float32)

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        emb = self.compute(face_chips(image, faces))
        return [f.evolve(embedding=e) for f, e in zip(faces, emb, strict=True)]
