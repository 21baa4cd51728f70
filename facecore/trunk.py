"""The shared face trunk: one forward of dlib's face ResNet per face feeds every head.

dlib's face-recognition ResNet (King, dlib 19.3, 2017; manifest entry
``dlib_face_recognition_resnet``), ported to PyTorch in :mod:`facecore.nn.dlib_resnet`, runs once
per face on the aligned chip its manifest entry names (``chip``: dlib's 150x150 chip, padding
0.25), all faces of an image in one batch. The ``trunk`` stage writes:

* ``face.embedding`` - the 128-D descriptor (same person when the distance is below 0.6);
* ``face.features["trunk"]`` - the pooled multi-level features (896-D,
  :data:`facecore.nn.features.FEATURE_PRESETS`) the classical heads use;
* ``face.features["trunk.<node>"]`` - the intermediate maps (default ``stage2`` (64x17x17) and
  ``stage3`` (128x8x8)) that a head with a fine-tuned top
  (:class:`facecore.nn.top.BackboneTop`) starts from, so that a fine-tuned head costs only its
  own top stages. The maps stay in memory and are never serialised.

This module implements no paper (see :mod:`facecore.nn.dlib_resnet`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.align import AlignSpec, face_crops
from facecore.lazy import Lazy
from facecore.model_router import load, register_loader
from facecore.stages import Output, register_stage
from facecore.types import Face

if TYPE_CHECKING:
    from facecore.model_store import ModelSpec

__all__ = [
    "TRUNK_MODEL",
    "CropNetworkStage",
    "TrunkStage",
    "chip_spec",
    "load_trunk_network",
    "map_key",
    "run_top",
]

#: Manifest name of the trunk network.
TRUNK_MODEL = "dlib_face_recognition_resnet"


def chip_spec(model: str = TRUNK_MODEL) -> AlignSpec:
    """The aligned crop the model ``model`` expects, from its manifest entry's ``chip``."""
    from facecore.model_store import get_spec

    spec = get_spec(model)
    if spec.chip is None:
        raise ValueError(f"manifest entry {model!r} has no 'chip' (alignment spec)")
    return AlignSpec.of(spec.chip)


def map_key(node: str) -> str:
    """``face.features`` key of the trunk's intermediate map ``node`` (e.g. ``"trunk.stage3"``)."""
    return f"trunk.{node}"


@register_loader("dlib_face_resnet")
def load_trunk_network(path: Path, spec: ModelSpec) -> Any:
    """The router's loader of the trunk: the network its manifest entry names
    (:func:`facecore.nn.create_model`), frozen and prepared for CPU inference."""
    from facecore.nn import create_model
    from facecore.nn.dlib_resnet import for_inference

    return for_inference(create_model(spec.architecture, pretrained=spec))


class CropNetworkStage:
    """Base of a stage that runs a network from the model router on each face's aligned crop,
    the crop its manifest entry names (``chip``): the trunk and the appearance backbone."""

    requires: tuple[str, ...] = ("landmarks",)
    #: Faces of several images in one forward: each face's crop (``spec``) is cut from its own
    #: image first.
    batching = "faces"

    def _set_model(self, model: str, task: str, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        from facecore.model_store import check_model

        check_model(model, task)  # a wrong name fails here, not on first use
        self.model = model
        self.batch_size = int(batch_size)
        self._spec = Lazy(lambda: chip_spec(model))

    def load(self) -> None:
        self._spec.get()
        load(self.model)

    @property
    def spec(self) -> AlignSpec:
        """The aligned crop the network runs on."""
        return self._spec.get()


@register_stage
class TrunkStage(CropNetworkStage):
    """dlib's face ResNet in PyTorch: descriptor, pooled features and shared maps."""

    name = "trunk"
    provides: tuple[Output, ...] = ()
    feature_key = "trunk"

    def __init__(
        self,
        model: str = TRUNK_MODEL,
        layers: str | Sequence[str] = "multi-level",
        keep_maps: Sequence[str] = ("stage2", "stage3"),
        batch_size: int = 16,
    ) -> None:
        from facecore.nn.dlib_resnet import FEATURE_NODES

        bad = [n for n in keep_maps if n not in FEATURE_NODES[:6]]
        if bad:
            raise ValueError(f"keep_maps {bad} are not maps of the trunk: {FEATURE_NODES[:6]}")
        self._set_model(model, "face_descriptor", batch_size)
        from facecore.nn.features import resolve_layers

        self._names = resolve_layers(layers)
        if "embedding" not in self._names:
            raise ValueError(f"layers={layers!r} must include 'embedding'")
        self.layers = layers
        self.keep_maps = tuple(keep_maps)

    @property
    def network(self) -> Any:
        """The frozen :class:`~facecore.nn.dlib_resnet.DlibFaceResNet`, from the router (read and
        sha256-checked once per process)."""
        return load(self.model)

    def compute(self, chips: np.ndarray) -> dict[str, np.ndarray]:
        """Trunk outputs of aligned chips (N, 150, 150, 3) uint8.

        Returns
        -------
        dict
            ``"features"`` (N, D) float32 (the ``layers`` set, descriptor included),
            ``"embedding"`` (N, 128) float32, and every kept map ``"<node>"`` (N, C, H, W)
            float32.
        """
        import torch

        from facecore.nn.features import node_feature

        net = self.network
        out: dict[str, list[np.ndarray]] = {"features": [], "embedding": []}
        for node in self.keep_maps:
            out[node] = []
        with torch.inference_mode():
            for start in range(0, len(chips), self.batch_size):
                x = net.preprocess(chips[start : start + self.batch_size])
                nodes = net.forward_feature_dict(x.contiguous(memory_format=torch.channels_last))
                cols = [node_feature(nodes, n) for n in self._names]
                out["features"].append(torch.cat(cols, dim=1).numpy())
                out["embedding"].append(nodes["embedding"].numpy())
                for node in self.keep_maps:
                    out[node].append(nodes[node].numpy())
        if not len(chips):
            return {"features": np.zeros((0, 0), np.float32)}
        return {k: np.concatenate(v) for k, v in out.items()}

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        if not faces:
            return []
        res = self.compute(face_crops(image, faces, self.spec))
        return [
            f.evolve(
                embedding=res["embedding"][i],
                features={
                    **f.features,
                    self.feature_key: res["features"][i],
                    **{map_key(n): res[n][i] for n in self.keep_maps},
                },
            )
            for i, f in enumerate(faces)
        ]


def run_top(top: Any, faces: Sequence[Face]) -> np.ndarray:
    """Outputs of a head's fine-tuned top (:class:`facecore.nn.top.BackboneTop`, prepared with
    :func:`facecore.nn.dlib_resnet.for_inference`) for faces the ``trunk`` stage has run on: one
    batched forward from their shared map (``face.features["trunk.<top.input_node>"]``), shape
    (N, num_outputs) float32.

    Raises
    ------
    ValueError
        If a face lacks the map (the trunk was not run, or does not keep that map).
    """
    import torch

    key = map_key(top.input_node)
    if not faces:
        return np.zeros((0, top.fc.out_features), np.float32)
    missing = [i for i, f in enumerate(faces) if key not in f.features]
    if missing:
        raise ValueError(
            f"faces {missing} lack {key!r}; run the 'trunk' stage with "
            f"keep_maps including {top.input_node!r}"
        )
    fmap = torch.from_numpy(np.stack([f.features[key] for f in faces]))
    return top.predict(fmap.contiguous(memory_format=torch.channels_last)).numpy()
