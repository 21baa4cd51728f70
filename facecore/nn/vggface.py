"""VGG-Face: the VGG-16 face-identity network and a loader for its original published weights.

Paper: O. M. Parkhi, A. Vedaldi, A. Zisserman, "Deep Face Recognition", BMVC 2015 — the
network of its Table 3 (configuration "A", Sec. 4): thirteen 3x3 convolutions with padding 1 and
ReLU in five blocks of 64, 64 | 128, 128 | 256 x 3 | 512 x 3 | 512 x 3 channels, each block
closed by a 2x2 stride-2 max-pool, then fc6 (4096), fc7 (4096) and fc8 (2622 identities, the
classifier trained with a softmax loss). Dropout 0.5 follows fc6 and fc7 during
training. The input is a 224x224 RGB face crop with the per-channel mean subtracted.

Input normalisation, checked against the public release rather than guessed: the MatConvNet
model (``vgg_face_matconvnet/data/vgg_face.mat``) stores
``net.normalization.averageImage = (129.1863, 104.7624, 93.5940)``, which its demo subtracts from
an ``imread`` image (RGB, 0-255, no scaling); the Caffe release takes the same values in BGR
order, and the PyTorch conversion of the MatConvNet model (``vgg_face_dag.pth``, S. Albanie's
pytorch-mcn) records ``mean = [129.186279296875, 104.76238250732422, 93.59396362304688]`` (the
same numbers in float32) with ``std = [1, 1, 1]`` for RGB input. :meth:`VGGFace.preprocess` does
exactly that; a ``.mat`` file's own ``averageImage`` replaces the default when loaded.

Weights are read by :func:`load_vggface_weights` from a local file only, never downloaded:

* the MatConvNet ``vgg_face.mat`` of the original release (top-level ``net`` with
  ``layers``/``normalization``/``classes``), or the same model as re-published on the MatConvNet
  model page (``vgg-face.mat``: top-level ``layers`` and ``meta``). ``layers`` is a cell array of
  structs with ``name``, ``type`` and ``weights = {filters, biases}``; filters are
  ``H x W x in x out`` and the fully-connected layers are stored as convolutions
  (fc6 ``7x7x512x4096``, fc7 ``1x1x4096x4096``, fc8 ``1x1x4096x2622``);
* a PyTorch state dict of the pytorch-mcn conversion (``conv1_1.weight`` ... ``conv5_3.bias``,
  ``fc6.weight`` of shape ``(4096, 25088)`` ... ``fc8.bias``), or one saved from this module.

The format is told from the file's first bytes, not its name.

Departures from the paper and from the release, and why:

* fc6, fc7 and fc8 are ``nn.Linear`` layers on the flattened ``(C, H, W)`` pool5 map instead of
  convolutions. This is exactly equivalent for the 224x224 input the network is defined for
  (fc6's 7x7 kernel covers the whole 7x7 map); the fully-convolutional use of the MatConvNet net
  on larger images (a map of scores) is not supported. The loader reorders the MatConvNet fc6
  kernel from ``(h, w, c, out)`` to PyTorch's ``c * 49 + h * 7 + w`` flattening.
* The softmax (``prob``) layer is not part of the module: :meth:`VGGFace.forward` returns fc8
  scores (logits); apply ``softmax`` for identity probabilities.
* Only single-crop inference is provided; the paper's test-time augmentation (several crops and
  scales with their flips, descriptors averaged) and the triplet-loss embedding learnt on top of
  fc7 are not implemented — the released weights are the softmax classifier network.
* :meth:`VGGFace.embed` returns fc6 or fc7 activations, by default after the ReLU (the values of
  the Caffe model's in-place ``fc7`` blob, the usual transfer descriptor) and not L2-normalised
  unless asked.
* The architecture is configurable (``widths``, ``depths``, ``fc_width``, ``input_size``) so that
  tests and experiments can run small versions; the defaults are the published network.
* LuaTorch-derived PyTorch conversions (keys ``conv_1_1.weight`` or ``features.conv_1_1.weight``)
  are refused: their input channel order could not be confirmed, and a silent RGB/BGR swap would
  give plausible but wrong descriptors.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.errors import ModelCorruptError, ModelNotFoundError
from facecore.nn.registry import register_model

__all__ = [
    "VGGFACE_MEAN_RGB",
    "VGGFACE_INPUT_SIZE",
    "VGGFACE_NUM_IDENTITIES",
    "VGGFace",
    "VGGFaceWeights",
    "read_vggface_weights",
    "load_vggface_weights",
    "vgg_face",
]

logger = logging.getLogger(__name__)

VGGFACE_MEAN_RGB: tuple[float, float, float] = (129.1863, 104.7624, 93.5940)
"""Per-channel (R, G, B) mean on 0-255 pixels, ``net.normalization.averageImage`` of the release."""

VGGFACE_INPUT_SIZE = 224
"""Side of the square RGB face crop the published network takes."""

VGGFACE_NUM_IDENTITIES = 2622
"""Identities of the VGG-Face dataset, the outputs of the published fc8."""

_WIDTHS = (64, 128, 256, 512, 512)
_DEPTHS = (2, 2, 3, 3, 3)
_FC_WIDTH = 4096
_FC_NAMES = ("fc6", "fc7", "fc8")
_CONV_NAME = re.compile(r"conv(\d+)_(\d+)")

EmbedLayer = Literal["fc6", "fc7"]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    if len(size) != 2:
        raise ValueError(f"input_size must be an int or (height, width), got {size!r}")
    return (int(size[0]), int(size[1]))


class VGGFace(nn.Module):
    """The VGG-Face network (Parkhi et al. 2015, Table 3): VGG-16 with a 2622-way classifier.

    Parameters
    ----------
    num_classes : int
        Outputs of fc8 (2622 identities for the published weights); ``0`` removes fc8 so that
        :meth:`forward` returns the fc7 features.
    widths : sequence of 5 int
        Channels of the five convolution blocks.
    depths : sequence of 5 int
        3x3 convolutions per block (VGG-16: 2, 2, 3, 3, 3).
    fc_width : int
        Width of fc6 and fc7.
    input_size : int or (int, int)
        Input height and width; must be divisible by 32. It fixes the size of the pool5 map that
        fc6 consumes (7x7 for the published 224x224).
    drop_rate : float
        Dropout probability after fc6 and after fc7 (active in training mode only).
    mean_rgb : sequence of 3 float
        Per-channel RGB mean subtracted by :meth:`preprocess` (replaced by a ``.mat`` file's
        ``averageImage`` when weights are loaded from one).

    Attributes
    ----------
    default_input_size : tuple of int
        ``(3, H, W)``, ``(3, 224, 224)`` by default.
    num_features : int
        Channels of :meth:`forward_features`' output (512).
    feature_info : list of dict
        One dict per block returned by :meth:`forward_stages`: ``module`` (``"block1"`` ...
        ``"block5"``, also the attribute holding the block), ``num_chs`` and ``reduction``
        (2, 4, 8, 16, 32).
    class_names : tuple of str or None
        Identity names of the fc8 outputs when read from a ``.mat`` file, else ``None``.

    Notes
    -----
    Parameter names are ``blockB.convB_I.{weight,bias}`` and ``fc6``/``fc7``/``fc8``; each block
    is an ``nn.Sequential`` of ``convB_I``, ``reluB_I`` and ``poolB``, as in the release.
    """

    default_input_size: tuple[int, int, int] = (3, VGGFACE_INPUT_SIZE, VGGFACE_INPUT_SIZE)

    def __init__(
        self,
        num_classes: int = VGGFACE_NUM_IDENTITIES,
        widths: Sequence[int] = _WIDTHS,
        depths: Sequence[int] = _DEPTHS,
        fc_width: int = _FC_WIDTH,
        input_size: int | Sequence[int] = VGGFACE_INPUT_SIZE,
        drop_rate: float = 0.5,
        mean_rgb: Sequence[float] = VGGFACE_MEAN_RGB,
    ) -> None:
        super().__init__()
        if len(widths) != 5 or len(depths) != 5:
            raise ValueError(f"widths {widths} and depths {depths} must have 5 entries each")
        if min(depths) < 1 or min(widths) < 1 or fc_width < 1:
            raise ValueError("widths, depths and fc_width must be positive")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if len(mean_rgb) != 3:
            raise ValueError(f"mean_rgb needs 3 values (R, G, B), got {mean_rgb}")
        height, width = _pair(input_size)
        if height % 32 or width % 32 or height < 32 or width < 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {(height, width)}")
        self.widths = tuple(int(w) for w in widths)
        self.depths = tuple(int(d) for d in depths)
        self.fc_width = int(fc_width)
        self.num_classes = int(num_classes)
        self.input_hw = (height, width)
        self.default_input_size = (3, height, width)
        self.pool5_hw = (height // 32, width // 32)
        self.class_names: tuple[str, ...] | None = None
        self.register_buffer(
            "input_mean",
            torch.tensor([float(m) for m in mean_rgb], dtype=torch.float32),
            persistent=False,
        )

        in_ch = 3
        self.feature_info: list[dict[str, Any]] = []
        for b, (w, depth) in enumerate(zip(self.widths, self.depths, strict=True), start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for i in range(1, depth + 1):
                layers[f"conv{b}_{i}"] = nn.Conv2d(in_ch, w, kernel_size=3, padding=1)
                layers[f"relu{b}_{i}"] = nn.ReLU(inplace=True)
                in_ch = w
            layers[f"pool{b}"] = nn.MaxPool2d(kernel_size=2, stride=2)
            self.add_module(f"block{b}", nn.Sequential(layers))
            self.feature_info.append({"module": f"block{b}", "num_chs": w, "reduction": 2**b})
        self.num_features = in_ch

        self.fc6 = nn.Linear(in_ch * self.pool5_hw[0] * self.pool5_hw[1], self.fc_width)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout(drop_rate)
        self.fc7 = nn.Linear(self.fc_width, self.fc_width)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout(drop_rate)
        self.fc8: nn.Module = (
            nn.Linear(self.fc_width, self.num_classes) if self.num_classes > 0 else nn.Identity()
        )
        self._init_weights()
        logger.debug(
            "built VGGFace(widths=%s, depths=%s, fc=%d, classes=%d, input=%s)",
            self.widths,
            self.depths,
            self.fc_width,
            self.num_classes,
            self.input_hw,
        )

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def blocks(self) -> list[nn.Sequential]:
        """The five convolution blocks, input to output."""
        return [getattr(self, i["module"]) for i in self.feature_info]

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of the layers with parameters, as in the release: ``conv1_1`` ... ``fc8``."""
        convs = tuple(
            f"conv{b}_{i}" for b, d in enumerate(self.depths, start=1) for i in range(1, d + 1)
        )
        return convs + (_FC_NAMES if self.num_classes > 0 else _FC_NAMES[:2])

    def layer(self, name: str) -> nn.Conv2d | nn.Linear:
        """The module of the release layer ``name`` (``"conv3_2"``, ``"fc6"``, ...)."""
        conv = _CONV_NAME.fullmatch(name)
        if conv is not None:
            module = getattr(getattr(self, f"block{conv.group(1)}", None), name, None)
        else:
            module = getattr(self, name, None) if name in _FC_NAMES else None
        if not isinstance(module, nn.Conv2d | nn.Linear):
            raise KeyError(f"{name!r} is not a layer with parameters of this model")
        return module

    # ----------------------------------------------------------------------------- input
    def preprocess(self, images: np.ndarray | Tensor) -> Tensor:
        """Turn RGB face crops into the network's input, as the original release does.

        Parameters
        ----------
        images : uint8 array or tensor, shape (N, 224, 224, 3) or (224, 224, 3)
            RGB face crops, 0-255 (``H, W`` are :attr:`input_hw` for a non-default size).

        Returns
        -------
        Tensor of float32, shape (N, 3, 224, 224)
            ``v - mean_c`` per channel (no scaling), on the device of the module's buffers.

        Raises
        ------
        ValueError
            If the images are not uint8 or not of the input size with 3 channels.
        """
        t = images if isinstance(images, Tensor) else torch.as_tensor(np.asarray(images))
        if t.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 RGB (0-255), got dtype {t.dtype}")
        if t.ndim == 3:
            t = t.unsqueeze(0)
        h, w = self.input_hw
        if t.ndim != 4 or tuple(t.shape[1:]) != (h, w, 3):
            raise ValueError(f"images must have shape (N, {h}, {w}, 3), got {tuple(t.shape)}")
        mean = self.input_mean
        x = t.to(device=mean.device).permute(0, 3, 1, 2).to(torch.float32)
        return (x - mean.view(1, 3, 1, 1)).contiguous()

    # ----------------------------------------------------------------------------- forward
    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Outputs of the five blocks (after each max-pool), in the order of :attr:`feature_info`.

        Parameters
        ----------
        x : Tensor, shape (N, 3, H, W)
            From :meth:`preprocess`.

        Returns
        -------
        list of 5 Tensor
            Shapes (N, 64, H/2, W/2), (N, 128, H/4, W/4), (N, 256, H/8, W/8),
            (N, 512, H/16, W/16), (N, 512, H/32, W/32).
        """
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs

    def forward_features(self, x: Tensor) -> Tensor:
        """The pool5 map, shape (N, 512, 7, 7) for a 224x224 input."""
        for block in self.blocks:
            x = block(x)
        return x

    def _check_pool5(self, features: Tensor) -> None:
        want = (self.num_features, *self.pool5_hw)
        if features.ndim != 4 or tuple(features.shape[1:]) != want:
            h, w = self.input_hw
            raise ValueError(
                f"fc6 needs a pool5 map of shape (N, {want[0]}, {want[1]}, {want[2]}) "
                f"(a {h}x{w} input), got {tuple(features.shape)}"
            )

    def _fc6(self, features: Tensor) -> Tensor:
        self._check_pool5(features)
        # (C, H, W) flattening; load_vggface_weights orders the MatConvNet fc6 kernel to match.
        return self.fc6(torch.flatten(features, 1))

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """fc6 - ReLU - dropout - fc7 - ReLU - dropout - fc8.

        Parameters
        ----------
        features : Tensor, shape (N, 512, 7, 7)
            Output of :meth:`forward_features`.
        pre_logits : bool
            Return the fc7 features (after ReLU and dropout), shape (N, fc_width), instead.

        Returns
        -------
        Tensor, shape (N, num_classes)
            fc8 scores (logits, no softmax); (N, fc_width) if ``pre_logits`` or ``num_classes``
            is 0.
        """
        x = self.drop6(self.relu6(self._fc6(features)))
        x = self.drop7(self.relu7(self.fc7(x)))
        return x if pre_logits else self.fc8(x)

    def forward(self, x: Tensor) -> Tensor:
        """fc8 scores, shape (N, num_classes), for preprocessed images of shape (N, 3, 224, 224)."""
        return self.forward_head(self.forward_features(x))

    def embed(
        self,
        x: Tensor,
        layer: EmbedLayer = "fc7",
        relu: bool = True,
        normalize: bool = False,
    ) -> Tensor:
        """The fc6 or fc7 descriptor used for transfer (e.g. age or attractiveness regression).

        Parameters
        ----------
        x : Tensor, shape (N, 3, 224, 224)
            From :meth:`preprocess`.
        layer : {"fc7", "fc6"}
            Which fully-connected layer's activations to return.
        relu : bool
            After the ReLU (default; the value of the Caffe model's in-place ``fc7`` blob) or the
            raw affine output.
        normalize : bool
            L2-normalise each descriptor (the paper compares L2-normalised descriptors).

        Returns
        -------
        Tensor, shape (N, fc_width)
            4096-D for the published network. In training mode the fc7 descriptor sees dropout
            after fc6; call ``eval()`` for deterministic descriptors.
        """
        if layer not in ("fc6", "fc7"):
            raise ValueError(f"layer must be 'fc6' or 'fc7', got {layer!r}")
        y = self._fc6(self.forward_features(x))
        if layer == "fc7":
            y = self.fc7(self.drop6(F.relu(y)))
        if relu:
            y = F.relu(y)
        if normalize:
            y = F.normalize(y, dim=1)
        return y

    # ----------------------------------------------------------------------------- weights
    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], load_classifier: bool = True, **kwargs: Any
    ) -> VGGFace:
        """Build a model (``kwargs`` as for :class:`VGGFace`) and load weights from ``path``.

        See :func:`load_vggface_weights` for the formats and ``load_classifier``.
        """
        model = cls(**kwargs)
        load_vggface_weights(model, path, load_classifier=load_classifier)
        return model


# --------------------------------------------------------------------------------- reading


@dataclass
class VGGFaceWeights:
    """Parameters read from a weight file, already in PyTorch layout.

    Attributes
    ----------
    path : Path
        The file read.
    format : {"matconvnet", "torch"}
        What the file's content was recognised as.
    tensors : dict of str to (Tensor, Tensor)
        Layer name (``conv1_1`` ... ``fc8``) to ``(weight, bias)``: conv weights ``(out, in, 3,
        3)``, fc weights ``(out, in)`` with fc6's input in PyTorch ``(C, H, W)`` order.
    mean_rgb : tuple of 3 float or None
        ``averageImage`` of a ``.mat`` file.
    class_names : tuple of str or None
        ``classes.description`` of a ``.mat`` file.
    layer_geometry : dict of str to (tuple, tuple)
        ``stride`` and ``pad`` recorded for each layer of a ``.mat`` file (empty for torch).
    source_shapes : dict of str to str
        Each layer's weight shape as stored in the file, for error messages.
    """

    path: Path
    format: Literal["matconvnet", "torch"]
    tensors: dict[str, tuple[Tensor, Tensor]]
    mean_rgb: tuple[float, float, float] | None = None
    class_names: tuple[str, ...] | None = None
    layer_geometry: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    source_shapes: dict[str, str] = field(default_factory=dict)


_MAT73_MAGIC = b"MATLAB 7.3 MAT-file"
_ZIP_MAGIC = b"PK\x03\x04"


def _sniff(path: Path) -> Literal["matconvnet", "torch"]:
    with path.open("rb") as fh:
        head = fh.read(128)
    if head.startswith(_MAT73_MAGIC):
        raise ModelCorruptError(
            f"{path}: a MATLAB v7.3 (HDF5) file, which facecore does not read; use the original "
            "release file unchanged, or re-save this one as v7 in MATLAB "
            "(`s = load(f); save('vgg_face_v7.mat', '-struct', 's', '-v7')`)"
        )
    if head.startswith(b"MATLAB"):
        return "matconvnet"
    # torch.save: a zip archive since PyTorch 1.6, a pickle (protocol 2 header) before.
    if head.startswith(_ZIP_MAGIC) or head[:1] == b"\x80":
        return "torch"
    raise ModelCorruptError(
        f"{path}: neither a MATLAB .mat file (MatConvNet vgg_face.mat) nor a PyTorch state dict "
        f"(first bytes {head[:16]!r}); see docs/vggface.md for the files facecore reads"
    )


def _unwrap(a: Any) -> Any:
    """The single element of a 1x1 MATLAB struct/cell wrapper (or ``a`` itself)."""
    while isinstance(a, np.ndarray) and a.dtype == object and a.size == 1:
        a = a.reshape(-1)[0]
    if isinstance(a, np.ndarray) and a.dtype.names is not None and a.size == 1:
        a = a.reshape(-1)[0]
    return a


def _get(struct: Any, name: str) -> Any:
    """Field ``name`` of a MATLAB struct as read by ``scipy.io.loadmat``, or ``None``."""
    s = _unwrap(struct)
    names = getattr(getattr(s, "dtype", None), "names", None)
    if names is None or name not in names:
        return None
    return s[name]


def _string(a: Any) -> str:
    a = _unwrap(a)
    if isinstance(a, str):
        return a
    arr = np.asarray(a)
    if arr.dtype.kind == "U":
        return "".join(str(s) for s in arr.reshape(-1))
    raise ValueError(f"not a MATLAB string: {arr.dtype} {arr.shape}")


def _cell_items(a: Any) -> list[Any]:
    arr = np.asarray(a)
    if arr.dtype != object:
        raise ValueError(f"not a MATLAB cell array: {arr.dtype}")
    return [arr.reshape(-1, order="F")[i] for i in range(arr.size)]


def _ints(a: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(_unwrap(a), dtype=np.float64).reshape(-1))


def _read_mat(path: Path) -> VGGFaceWeights:
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        data = scipy.io.loadmat(str(path))
    except NotImplementedError as exc:  # v7.3 without the usual header text
        raise ModelCorruptError(f"{path}: MATLAB v7.3 (HDF5) files are not read: {exc}") from exc
    except (
        MatReadError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        OSError,
        EOFError,
        zlib.error,
    ) as exc:
        raise ModelCorruptError(f"{path}: not a readable MATLAB .mat file ({exc})") from exc

    if "net" in data:  # the original release: vgg_face_matconvnet/data/vgg_face.mat
        net = data["net"]
        layers_field, meta = _get(net, "layers"), net
    elif "layers" in data and "params" not in data:  # MatConvNet model page: vgg-face.mat
        layers_field, meta = data["layers"], data.get("meta")
    else:
        hint = (
            " (a MatConvNet DagNN file; use the SimpleNN vgg_face.mat of the original release)"
            if "params" in data
            else ""
        )
        keys = sorted(k for k in data if not k.startswith("__"))
        raise ModelCorruptError(
            f"{path}: no MatConvNet network ('net.layers' or 'layers') in the file, which holds "
            f"{keys}{hint}"
        )
    if layers_field is None:
        raise ModelCorruptError(f"{path}: the 'net' struct has no 'layers' field")

    tensors: dict[str, tuple[Tensor, Tensor]] = {}
    geometry: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    shapes: dict[str, str] = {}
    try:
        layer_items = _cell_items(layers_field)
    except ValueError as exc:
        raise ModelCorruptError(f"{path}: 'layers' is not a cell array ({exc})") from exc
    for index, item in enumerate(layer_items):
        layer = _unwrap(item)
        try:
            name = _string(_get(layer, "name"))
            kind = _string(_get(layer, "type")) if _get(layer, "type") is not None else ""
        except ValueError as exc:
            raise ModelCorruptError(f"{path}: layer {index + 1} has no readable name") from exc
        if kind != "conv":
            continue
        weights = _get(layer, "weights")
        try:
            if weights is not None:
                filters, biases = _cell_items(weights)[:2]
            else:  # older MatConvNet files: separate 'filters' and 'biases' fields
                filters, biases = _unwrap(_get(layer, "filters")), _unwrap(_get(layer, "biases"))
            f = np.asarray(filters)
            b = np.asarray(biases, dtype=np.float32).reshape(-1)
        except (ValueError, TypeError) as exc:
            raise ModelCorruptError(
                f"{path}: layer {name!r} lacks readable weights {{filters, biases}}"
            ) from exc
        if name in tensors:
            raise ModelCorruptError(f"{path}: layer {name!r} appears twice")
        if f.dtype.kind != "f" or f.ndim < 2 or f.ndim > 4:
            raise ModelCorruptError(
                f"{path}: layer {name!r} filters are {f.dtype} {f.shape}, expected a float "
                "H x W x in x out array"
            )
        # MATLAB drops trailing singleton dimensions (a single output filter).
        f = f.reshape(f.shape + (1,) * (4 - f.ndim))
        # MatConvNet filters are (H, W, in, out), indexed like the image (row, column, channel):
        # PyTorch wants (out, in, H, W).
        weight = torch.from_numpy(np.ascontiguousarray(f.transpose(3, 2, 0, 1), dtype=np.float32))
        tensors[name] = (weight, torch.from_numpy(b.copy()))
        shapes[name] = f"filters {'x'.join(map(str, f.shape))} (H x W x in x out), {b.size} biases"
        stride, pad = _get(layer, "stride"), _get(layer, "pad")
        geometry[name] = (
            _ints(stride) if stride is not None else (),
            _ints(pad) if pad is not None else (),
        )

    mean_rgb: tuple[float, float, float] | None = None
    norm = _get(meta, "normalization") if meta is not None else None
    avg = _get(norm, "averageImage") if norm is not None else None
    if avg is not None:
        avg_arr = np.asarray(_unwrap(avg), dtype=np.float64)
        if avg_arr.size == 3:
            r, g, bl = (float(v) for v in avg_arr.reshape(-1))
            mean_rgb = (r, g, bl)
        else:
            logger.warning(
                "%s: averageImage has shape %s, not 3 channel means; keeping the default",
                path,
                avg_arr.shape,
            )
    class_names: tuple[str, ...] | None = None
    classes = _get(meta, "classes") if meta is not None else None
    desc = _get(classes, "description") if classes is not None else None
    if desc is not None:
        try:
            class_names = tuple(_string(d) for d in _cell_items(_unwrap_cell(desc)))
        except ValueError:
            logger.debug("%s: classes.description is not a cell of strings; ignored", path)
    return VGGFaceWeights(
        path=path,
        format="matconvnet",
        tensors=tensors,
        mean_rgb=mean_rgb,
        class_names=class_names,
        layer_geometry=geometry,
        source_shapes=shapes,
    )


def _unwrap_cell(a: Any) -> Any:
    """A cell array, possibly wrapped in a 1x1 object array by a struct field."""
    arr = np.asarray(a)
    while arr.dtype == object and arr.size == 1 and isinstance(arr.reshape(-1)[0], np.ndarray):
        inner = arr.reshape(-1)[0]
        if inner.dtype != object:
            break
        arr = inner
    return arr


_LUATORCH_PREFIXES = ("conv_1_1.", "features.conv_1_1.")


def _read_torch(path: Path) -> VGGFaceWeights:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        ValueError,
        EOFError,
        OSError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as exc:
        raise ModelCorruptError(
            f"{path}: not a readable PyTorch state dict ({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ModelCorruptError(
            f"{path}: a PyTorch file but not a state dict of tensors (got {type(obj).__name__}); "
            "save `model.state_dict()`, not the model object"
        )
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}
    if any(k.startswith(_LUATORCH_PREFIXES) for k in state):
        raise ModelCorruptError(
            f"{path}: a conversion of the LuaTorch VGG_FACE.t7 (keys 'conv_1_1.*'); its input "
            "channel order (RGB or BGR) is not documented, so facecore does not guess. Use the "
            "MatConvNet vgg_face.mat of the original release or the pytorch-mcn vgg_face_dag.pth"
        )
    tensors: dict[str, tuple[Tensor, Tensor]] = {}
    used: set[str] = set()
    layer_names = {k.rsplit(".", 1)[0] for k in state if k.endswith(".weight")}
    for prefix in sorted(layer_names):
        name = prefix.rsplit(".", 1)[-1]
        if not (_CONV_NAME.fullmatch(name) or name in _FC_NAMES):
            continue
        if prefix not in (name, _facecore_prefix(name)):
            continue
        if name in tensors:
            raise ModelCorruptError(f"{path}: layer {name!r} appears twice ({prefix!r})")
        weight, bias = state[f"{prefix}.weight"], state.get(f"{prefix}.bias")
        if bias is None:
            raise ModelCorruptError(f"{path}: layer {name!r} has a weight but no bias")
        tensors[name] = (weight.detach().to(torch.float32), bias.detach().to(torch.float32))
        used.update((f"{prefix}.weight", f"{prefix}.bias"))
    extra = sorted(set(state) - used)
    if extra and tensors:
        logger.warning("%s: ignoring %d unrecognised entries: %s", path, len(extra), extra[:8])
    elif extra:
        raise ModelCorruptError(
            f"{path}: no VGG-Face layer (conv1_1.weight ... fc8.bias) in this state dict, which "
            f"holds {extra[:6]}{' ...' if len(extra) > 6 else ''}"
        )
    return VGGFaceWeights(path=path, format="torch", tensors=tensors)


def _facecore_prefix(name: str) -> str:
    conv = _CONV_NAME.fullmatch(name)
    return f"block{conv.group(1)}.{name}" if conv else name


def read_vggface_weights(path: str | os.PathLike[str]) -> VGGFaceWeights:
    """Read VGG-Face parameters from a MatConvNet ``.mat`` or a PyTorch state-dict file.

    Parameters
    ----------
    path : str or path-like
        The original release's ``vgg_face.mat`` (or MatConvNet's ``vgg-face.mat``), or a
        ``.pth`` state dict with keys ``conv1_1.weight`` ... ``fc8.bias`` (pytorch-mcn's
        ``vgg_face_dag.pth``) or saved from :class:`VGGFace`. The format is told from the
        content, not the name.

    Returns
    -------
    VGGFaceWeights
        The parameters in PyTorch layout, with the file's mean and class names when present.

    Raises
    ------
    ModelNotFoundError
        If the file does not exist.
    ModelCorruptError
        If the file is truncated, of an unknown format, or holds no VGG-Face layers.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelNotFoundError(
            f"VGG-Face weight file {p} does not exist; facecore never downloads it — see "
            "docs/vggface.md for how to obtain vgg_face.mat from the original release"
        )
    fmt = _sniff(p)
    weights = _read_mat(p) if fmt == "matconvnet" else _read_torch(p)
    logger.info("read %d VGG-Face layers from %s (%s)", len(weights.tensors), p, fmt)
    return weights


def _target_shape(model: VGGFace, name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m = model.layer(name)
    return tuple(m.weight.shape), tuple(m.bias.shape)


def _fit_weight(name: str, weight: Tensor, want: tuple[int, ...], model: VGGFace) -> Tensor | None:
    """``weight`` reshaped to the model's layout, or ``None`` if it cannot be."""
    if tuple(weight.shape) == want:
        return weight
    if name in _FC_NAMES and weight.ndim == 4:
        # Fully-connected layer stored as a convolution (out, in, kh, kw): flattening in
        # (in, kh, kw) order is PyTorch's (C, H, W) flattening of the input map.
        kh, kw = model.pool5_hw if name == "fc6" else (1, 1)
        in_ch = model.num_features if name == "fc6" else model.fc_width
        if tuple(weight.shape) == (want[0], in_ch, kh, kw):
            return weight.reshape(want)
    return None


@torch.no_grad()
def load_vggface_weights(
    model: VGGFace,
    path: str | os.PathLike[str],
    load_classifier: bool = True,
) -> VGGFace:
    """Load the original VGG-Face weights (or a conversion of them) into ``model``.

    Parameters
    ----------
    model : VGGFace
        The network to fill; its configuration must match the file's (the published defaults for
        the released weights).
    path : str or path-like
        ``vgg_face.mat`` of the original MatConvNet release, or a PyTorch state dict with the
        pytorch-mcn key names (``conv1_1.weight`` ... ``fc8.bias``) or this module's; see
        :func:`read_vggface_weights`.
    load_classifier : bool
        Also load fc8 (the 2622-identity classifier). ``False`` leaves fc8 as it is, for
        transfer to a new ``num_classes``.

    Returns
    -------
    VGGFace
        ``model``, in evaluation mode.

    Raises
    ------
    ModelNotFoundError
        If the file does not exist.
    ModelCorruptError
        If the file is unreadable or not VGG-Face, names missing layers, or a layer's shape,
        stride or padding differs from the model's; the model is then left unchanged.
    """
    if not isinstance(model, VGGFace):
        raise TypeError(f"model must be a VGGFace, got {type(model).__name__}")
    weights = read_vggface_weights(path)
    p = weights.path
    wanted = [
        n for n in model.layer_names if n != "fc8" or (load_classifier and model.num_classes > 0)
    ]
    missing = [n for n in wanted if n not in weights.tensors]
    if missing:
        raise ModelCorruptError(
            f"{p}: missing VGG-Face layers {missing}; the file is incomplete or not VGG-Face "
            f"(found {sorted(weights.tensors)})"
        )
    problems: list[str] = []
    copies: list[tuple[Tensor, Tensor]] = []
    for name in wanted:
        weight, bias = weights.tensors[name]
        want_w, want_b = _target_shape(model, name)
        fitted = _fit_weight(name, weight, want_w, model)
        if fitted is None or tuple(bias.reshape(-1).shape) != want_b:
            found = weights.source_shapes.get(
                name, f"weight {tuple(weight.shape)}, bias {tuple(bias.shape)}"
            )
            problems.append(f"{name}: file has {found}, model needs weight {want_w}, bias {want_b}")
            continue
        stride, pad = weights.layer_geometry.get(name, ((), ()))
        want_pad = 1 if name.startswith("conv") else 0
        if any(s != 1 for s in stride) or any(q != want_pad for q in pad):
            problems.append(f"{name}: stride {stride} / pad {pad}, expected 1 / {want_pad}")
            continue
        module = model.layer(name)
        copies += [(module.weight, fitted), (module.bias, bias.reshape(-1))]
    if problems:
        hint = ""
        if any(s.startswith("fc8") for s in problems):
            hint = "; for another num_classes pass load_classifier=False"
        raise ModelCorruptError(
            f"{p}: layers do not match this VGGFace configuration: {'; '.join(problems)}{hint}"
        )
    for dst, src in copies:
        dst.copy_(src.to(dtype=dst.dtype, device=dst.device))
    if weights.mean_rgb is not None:
        model.input_mean.copy_(torch.tensor(weights.mean_rgb, dtype=torch.float32))
    if weights.class_names is not None and load_classifier:
        if len(weights.class_names) == model.num_classes:
            model.class_names = weights.class_names
        else:
            logger.warning(
                "%s: %d class names for %d outputs; names ignored",
                p,
                len(weights.class_names),
                model.num_classes,
            )
    unused = sorted(set(weights.tensors) - set(wanted))
    logger.info(
        "loaded %d VGG-Face layers from %s%s",
        len(wanted),
        p,
        f" (not loaded: {unused})" if unused else "",
    )
    return model.eval()


# --------------------------------------------------------------------------------- registry


@register_model
def vgg_face(
    weights: str | os.PathLike[str] | None = None,
    num_classes: int = VGGFACE_NUM_IDENTITIES,
    load_classifier: bool | None = None,
    **kwargs: Any,
) -> VGGFace:
    """VGG-Face (Parkhi et al. 2015), optionally with the original weights from a local file.

    Parameters
    ----------
    weights : str, path-like or None
        ``vgg_face.mat`` of the original release, or a converted state dict (see
        :func:`load_vggface_weights`). ``None`` gives random weights. Nothing is downloaded.
    num_classes : int
        Outputs of fc8.
    load_classifier : bool or None
        Whether fc8 is loaded from ``weights``. ``None`` (default): only when ``num_classes`` is
        2622, so that another ``num_classes`` loads every layer but fc8 and keeps fc8's random
        initialisation (transfer learning). ``True`` for a fine-tuned file saved from
        :class:`VGGFace` with its own classifier.
    **kwargs
        Further :class:`VGGFace` arguments.
    """
    model = VGGFace(num_classes=num_classes, **kwargs)
    if weights is not None:
        if load_classifier is None:
            load_classifier = num_classes == VGGFACE_NUM_IDENTITIES
        if not load_classifier:
            logger.info("vgg_face: num_classes=%d, fc8 is not loaded from %s", num_classes, weights)
        load_vggface_weights(model, weights, load_classifier=load_classifier)
    return model
