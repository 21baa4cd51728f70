"""The ``appearance`` stage: a second face backbone, HSE-FaceRes, once per face.

HSE-FaceRes (Savchenko 2019; a MobileNet v1 whose base was trained on VGGFace2, ported in
:mod:`facecore.nn.faceres`, manifest entry ``faceres_vggface2``) runs on an aligned crop of its
own, all faces of the images of a call in one batch, as the trunk does. The stage writes:

``face.features["appearance"]``: the pooled 1024-D features (the graph's
``global_pooling/Mean``), averaged with those of the mirrored crop when ``mirror`` is on.

The crop (alignment, padding, size) is the manifest entry's ``chip``, chosen in
cross-validation (``scripts/appearance_crops.py``, ``docs/appearance.md``). The network's own
age and gender outputs are not served: only its features feed the heads.

This module implements no paper (see :mod:`facecore.nn.faceres`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facecore.align import face_crops
from facecore.model_router import load, register_loader
from facecore.stages import Output, register_stage
from facecore.trunk import CropNetworkStage
from facecore.types import Face

__all__ = ["APPEARANCE_MODEL", "FEATURE_KEY", "AppearanceStage", "appearance_features"]

#: Manifest name of the appearance network.
APPEARANCE_MODEL = "faceres_vggface2"
#: ``face.features`` key of the pooled features.
FEATURE_KEY = "appearance"


@register_loader("faceres")
def _load_faceres(path: Any, spec: Any) -> Any:
    """The router's loader of FaceRes: float32, eval mode, no gradients."""
    from facecore.nn import create_model

    net = create_model(spec.architecture, pretrained=spec)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def appearance_features(
    net: Any, crops: np.ndarray, *, mirror: bool = True, batch_size: int = 16
) -> np.ndarray:
    """Pooled FaceRes features of aligned RGB crops.

    Parameters
    ----------
    net : facecore.nn.faceres.FaceRes
    crops : ndarray (N, S, S, 3) uint8
        RGB crops (any side; the network pools globally).
    mirror : bool, default True
        Average with the features of the mirrored crops.
    batch_size : int, default 16

    Returns
    -------
    ndarray (N, 1024) float32
    """
    import torch

    from facecore.nn.faceres import RGB_MEAN

    if not len(crops):
        return np.zeros((0, 1024), np.float32)
    mean = torch.tensor(RGB_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(crops[start : start + batch_size]))
            x = x.permute(0, 3, 1, 2).float() - mean
            if mirror:
                x = torch.cat([x, x.flip(-1)])
            f = net.forward_pooled(x.contiguous(memory_format=torch.channels_last))
            if mirror:
                f = 0.5 * (f[: len(f) // 2] + f[len(f) // 2 :])
            out.append(f.numpy())
    return np.concatenate(out).astype(np.float32, copy=False)


@register_stage
class AppearanceStage(CropNetworkStage):
    """HSE-FaceRes features of every face (not a default stage: heads that use them require it).

    Parameters
    ----------
    model : str, default "faceres_vggface2"
        Manifest name of a FaceRes network file with a ``chip``.
    mirror : bool, default True
        Average the features with the mirrored crop's (as the shipped heads were trained).
    batch_size : int, default 16
        Crops per forward.

    Raises
    ------
    UnknownModelError
        If ``model`` is not in the manifest.
    """

    name = "appearance"
    provides: tuple[Output, ...] = ()
    feature_key = FEATURE_KEY

    def __init__(
        self, model: str = APPEARANCE_MODEL, mirror: bool = True, batch_size: int = 16
    ) -> None:
        self._set_model(model, "face_features", batch_size)
        self.mirror = bool(mirror)

    def compute(self, crops: np.ndarray) -> np.ndarray:
        """Features (N, 1024) float32 of aligned crops (N, S, S, 3) uint8."""
        return appearance_features(
            load(self.model), crops, mirror=self.mirror, batch_size=self.batch_size
        )

    def __call__(self, image: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        if not faces:
            return []
        feats = self.compute(face_crops(image, list(faces), self.spec))
        return [
            f.evolve(features={**f.features, self.feature_key: feats[i]})
            for i, f in enumerate(faces)
        ]
