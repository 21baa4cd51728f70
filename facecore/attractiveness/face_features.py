"""The named feature blocks of one face, shared by training and serving.

:class:`FaceFeatureExtractor` turns an RGB image and one :class:`~facecore.types.Face` that carries
68 landmarks and ``features["trunk"]`` (the analyzer's ``landmarks`` and ``trunk`` stages) into the
blocks every attractiveness model in :mod:`facecore.attractiveness` is trained on:

========== =============== ================================================================
block      shape           what
========== =============== ================================================================
deep       (896,)          pooled multi-level trunk features of dlib's face ResNet
                           (``face.features["trunk"]``), the "deep face features" of Zang et
                           al. (see :mod:`facecore.attractiveness.deep_regressors`)
deep128    (128,)          dlib's 128-D descriptor (``face.embedding``)
geometric  (42,)           :func:`facecore.features.geometric_features` of the 68 landmarks
lbp        (480,)          :class:`facecore.features.LBPHistogram` (radii 1, 2, 3; 4x4 blocks) of
                           the aligned grey crop
blbp       (420,)          :class:`facecore.features.BlockedLBP` (levels 1, 2, 4; radii 1, 2) of
                           the aligned grey crop
pcanet     (64, 64) uint8  the aligned grey crop, downsampled, for :class:`facecore.features.PCANet`
                           (a fitted transformer: it is fitted inside each training fold, so the
                           block is the crop, not the PCANet output)
========== =============== ================================================================

The aligned crop is :func:`facecore.align.align_face` of the 68 landmarks, ``crop_size`` pixels
with ``crop_padding`` (0.05: the face from the forehead to the chin with little hair or background;
the photos of SCUT-FBP5500 are cropped tightly, so a wider crop would be mostly mirrored border),
converted to grey (ITU-R BT.601). The PCANet crop is that grey crop resized with
``cv2.INTER_AREA``.

:func:`stack_blocks` lays a list of block dicts out as one float32 matrix whose columns follow a
:data:`Layout` (``((name, shape), ...)``); :class:`facecore.attractiveness.fusion.BlockSelector`
picks a block back out of such a matrix, so that every estimator works in scikit-learn's
``cross_val_predict`` and ``Pipeline`` on a plain 2-D array.

This module implements no paper; the blocks are the inputs of the two papers implemented in
:mod:`~facecore.attractiveness.deep_regressors` and :mod:`~facecore.attractiveness.fusion`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.types import Face

if TYPE_CHECKING:
    from facecore.align import AlignSpec

__all__ = [
    "BLOCK_NAMES",
    "FEATURE_CODE_VERSION",
    "FaceFeatureExtractor",
    "Layout",
    "block_columns",
    "layout_width",
    "stack_blocks",
]

logger = logging.getLogger(__name__)

#: Every block the extractor can produce, in a fixed order.
BLOCK_NAMES: tuple[str, ...] = ("deep", "deep128", "geometric", "lbp", "blbp", "pcanet")

#: Bumped whenever the code below changes what a block holds; part of the feature cache key and
#: stored in every trained model, which refuses to serve with a different version.
FEATURE_CODE_VERSION = "1"

#: Column layout of a block matrix: ``((block name, block shape), ...)`` in column order.
Layout = tuple[tuple[str, tuple[int, ...]], ...]

_TRUNK_KEY = "trunk"
_TRUNK_DIM = 896
_EMBEDDING_DIM = 128


class FaceFeatureExtractor:
    """Named feature blocks of a face (the one code path of training and serving).

    Parameters
    ----------
    crop_size : int, default 128
        Side in pixels of the aligned grey crop the LBP blocks are computed on.
    crop_padding : float, default 0.05
        Margin of the aligned crop (see :func:`facecore.align.align_face`).
    pcanet_size : int, default 64
        Side of the (downsampled) crop stored as the ``pcanet`` block.
    lbp_radii : sequence of float, default (1, 2, 3)
    lbp_grid : (rows, cols), default (4, 4)
    blbp_levels : sequence of int, default (1, 2, 4)
    blbp_radii : sequence of float, default (1, 2)

    Examples
    --------
    >>> faces = FaceAnalyzer(stages=("trunk",)).analyze(image)  # doctest: +SKIP
    >>> FaceFeatureExtractor().extract(image, faces[0])["geometric"].shape  # doctest: +SKIP
    (42,)
    """

    def __init__(
        self,
        crop_size: int = 128,
        crop_padding: float = 0.05,
        pcanet_size: int = 64,
        lbp_radii: Sequence[float] = (1, 2, 3),
        lbp_grid: tuple[int, int] = (4, 4),
        blbp_levels: Sequence[int] = (1, 2, 4),
        blbp_radii: Sequence[float] = (1, 2),
    ) -> None:
        if crop_size < 16 or not 8 <= pcanet_size <= crop_size:
            raise ValueError(
                f"need crop_size >= 16 and 8 <= pcanet_size <= crop_size, got {crop_size}, "
                f"{pcanet_size}"
            )
        from facecore.features import BlockedLBP, LBPHistogram

        self.crop_size = int(crop_size)
        self.crop_padding = float(crop_padding)
        self.pcanet_size = int(pcanet_size)
        self.lbp_radii = tuple(float(r) for r in lbp_radii)
        self.lbp_grid = (int(lbp_grid[0]), int(lbp_grid[1]))
        self.blbp_levels = tuple(int(g) for g in blbp_levels)
        self.blbp_radii = tuple(float(r) for r in blbp_radii)
        self._lbp = LBPHistogram(radii=self.lbp_radii, grid=self.lbp_grid).fit(None)
        self._blbp = BlockedLBP(levels=self.blbp_levels, radii=self.blbp_radii).fit(None)

    # -- description -------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-friendly."""
        return {
            "crop_size": self.crop_size,
            "crop_padding": self.crop_padding,
            "pcanet_size": self.pcanet_size,
            "lbp_radii": list(self.lbp_radii),
            "lbp_grid": list(self.lbp_grid),
            "blbp_levels": list(self.blbp_levels),
            "blbp_radii": list(self.blbp_radii),
        }

    @property
    def version(self) -> str:
        """``FEATURE_CODE_VERSION`` plus a digest of :meth:`config` (changes with either)."""
        digest = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()
        return f"{FEATURE_CODE_VERSION}-{digest[:10]}"

    def block_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every block of one face, by name (in :data:`BLOCK_NAMES` order)."""
        from facecore.features import N_GEOMETRIC_FEATURES

        return {
            "deep": (_TRUNK_DIM,),
            "deep128": (_EMBEDDING_DIM,),
            "geometric": (N_GEOMETRIC_FEATURES,),
            "lbp": (int(self._lbp.n_features_out_),),
            "blbp": (int(self._blbp.n_features_out_),),
            "pcanet": (self.pcanet_size, self.pcanet_size),
        }

    def layout(self, blocks: Iterable[str] = BLOCK_NAMES) -> Layout:
        """The :data:`Layout` of ``blocks`` (in the order given)."""
        shapes = self.block_shapes()
        out = []
        for name in blocks:
            if name not in shapes:
                raise ValueError(f"unknown feature block {name!r}; known: {list(BLOCK_NAMES)}")
            out.append((name, shapes[name]))
        return tuple(out)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"FaceFeatureExtractor({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaceFeatureExtractor) and other.config() == self.config()

    def __hash__(self) -> int:
        return hash(self.version)

    def __getstate__(self) -> dict[str, Any]:
        # Pickle the settings only: a loaded model rebuilds its extractor with the code of the
        # facecore that loads it (and checks the feature version against the one it was trained
        # with).
        return self.config()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    # -- extraction --------------------------------------------------------------------------
    @property
    def crop_spec(self) -> AlignSpec:
        """The aligned crop the texture and PCANet blocks are computed on."""
        from facecore.align import AlignSpec

        return AlignSpec("similarity5", self.crop_size, self.crop_padding)

    def aligned_gray(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The aligned grey crop of ``face``, shape (crop_size, crop_size), uint8 (the colour
        crop is cached on the face, see :func:`facecore.align.face_crop`)."""
        import cv2

        from facecore.align import face_crop

        return cv2.cvtColor(face_crop(image, face, self.crop_spec), cv2.COLOR_RGB2GRAY)

    def extract(
        self, image: np.ndarray, face: Face, blocks: Iterable[str] = BLOCK_NAMES
    ) -> dict[str, np.ndarray]:
        """The named blocks of one face.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8
            The RGB image the face was found in.
        face : Face
            With 68 landmarks and, for ``deep``/``deep128``, ``features["trunk"]`` and the
            embedding (the analyzer's ``trunk`` stage).
        blocks : iterable of str, default all of :data:`BLOCK_NAMES`

        Returns
        -------
        dict of str to ndarray
            Each block with the shape :meth:`block_shapes` gives; float32, except ``pcanet``
            (uint8 crop).

        Raises
        ------
        ValueError
            If the face lacks what a requested block needs, or a block name is unknown.
        """
        wanted = [name for name, _ in self.layout(blocks)]
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image must be RGB uint8 of shape (H, W, 3), got {img.shape}")
        out: dict[str, np.ndarray] = {}
        lm = face.landmarks
        needs_lm = {"geometric", "lbp", "blbp", "pcanet"} & set(wanted)
        if needs_lm and (lm is None or lm.shape != (68, 2)):
            raise ValueError(
                f"blocks {sorted(needs_lm)} need 68-point landmarks; run the 'landmarks' stage"
            )
        if "deep" in wanted:
            trunk = face.features.get(_TRUNK_KEY)
            if trunk is None or trunk.shape != (_TRUNK_DIM,):
                raise ValueError(
                    f"block 'deep' needs face.features['trunk'] of shape ({_TRUNK_DIM},); run "
                    "the 'trunk' stage"
                )
            out["deep"] = np.asarray(trunk, dtype=np.float32)
        if "deep128" in wanted:
            if face.embedding is None or face.embedding.shape != (_EMBEDDING_DIM,):
                raise ValueError("block 'deep128' needs face.embedding; run the 'trunk' stage")
            out["deep128"] = np.asarray(face.embedding, dtype=np.float32)
        if "geometric" in wanted:
            from facecore.features import geometric_features

            out["geometric"] = geometric_features(lm).astype(np.float32)
        if {"lbp", "blbp", "pcanet"} & set(wanted):
            gray = self.aligned_gray(img, face)
            if "lbp" in wanted:
                out["lbp"] = self._lbp.transform(gray[None])[0].astype(np.float32)
            if "blbp" in wanted:
                out["blbp"] = self._blbp.transform(gray[None])[0].astype(np.float32)
            if "pcanet" in wanted:
                out["pcanet"] = self._pcanet_crop(gray)
        return {name: out[name] for name in wanted}

    def _pcanet_crop(self, gray: np.ndarray) -> np.ndarray:
        if self.pcanet_size == self.crop_size:
            return gray.copy()
        import cv2

        size = (self.pcanet_size, self.pcanet_size)
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)

    def extract_faces(
        self, image: np.ndarray, faces: Sequence[Face], blocks: Iterable[str] = BLOCK_NAMES
    ) -> np.ndarray:
        """Blocks of several faces of one image stacked as a matrix.

        Returns
        -------
        ndarray of shape (len(faces), layout_width(self.layout(blocks))), float32
        """
        layout = self.layout(blocks)
        names = [n for n, _ in layout]
        return stack_blocks([self.extract(image, f, names) for f in faces], layout)


def layout_width(layout: Layout) -> int:
    """Number of matrix columns a :data:`Layout` takes."""
    return int(sum(math.prod(shape) for _, shape in layout))


def block_columns(layout: Layout, name: str) -> slice:
    """The columns of block ``name`` in a matrix laid out by ``layout``."""
    start = 0
    for block, shape in layout:
        width = math.prod(shape)
        if block == name:
            return slice(start, start + width)
        start += width
    raise KeyError(f"block {name!r} is not in the layout {[b for b, _ in layout]}")


def stack_blocks(rows: Sequence[dict[str, np.ndarray]], layout: Layout) -> np.ndarray:
    """Lay block dicts out as one matrix (one row per dict, blocks flattened in layout order).

    Parameters
    ----------
    rows : sequence of dict of str to ndarray
        Per-face blocks, e.g. from :meth:`FaceFeatureExtractor.extract`.
    layout : Layout

    Returns
    -------
    ndarray of shape (len(rows), layout_width(layout)), float32
        The ``pcanet`` crop's uint8 grey levels are stored exactly (integers in float32).
    """
    out = np.empty((len(rows), layout_width(layout)), dtype=np.float32)
    for i, row in enumerate(rows):
        for name, shape in layout:
            value = np.asarray(row[name])
            if value.shape != tuple(shape):
                raise ValueError(f"block {name!r} has shape {value.shape}, expected {shape}")
            out[i, block_columns(layout, name)] = value.ravel()
    return out
