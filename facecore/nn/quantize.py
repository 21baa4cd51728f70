"""int8 inference of a fine-tuned trunk top (:class:`facecore.nn.top.BackboneTop`) on a CPU.

A head's top runs once per face from the shared map, at batch 1 in the service. There its 3x3
convolutions on 8x8 and 4x4 maps are bound by reading their float32 weights (a stages 4-5 top
holds about 18 MB of them), not by arithmetic; int8 weights (a quarter of the bytes) and integer
arithmetic (fbgemm on x86, qnnpack on ARM) make it about three times faster there.

What runs in int8 is each residual block's two convolutions (the first fused with its ReLU),
with per-channel symmetric weights and per-tensor activations; the shortcut, dlib's padded sum
and the final ReLU, the pooling and the linear layer stay in float (each block quantizes its
input and dequantizes its output). The activation ranges come from calibration maps
(:func:`quantize_top`) and are kept as plain numbers (:func:`activation_qparams`), so a model file
stores them beside its float weights and a load re-quantizes the same way
(``quantize_top(top, qparams=...)``): no calibration data at run time.

Post-training static quantization (Jacob et al., *Quantization and Training of Neural Networks
for Efficient Integer-Arithmetic-Only Inference*, CVPR 2018) through PyTorch's eager-mode
``torch.ao.quantization``. Whether a quantized head keeps its accuracy is checked on its
cross-validation folds (``scripts/quantize_tops.py``), not assumed.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facecore.nn.dlib_resnet import ChannelAffine, DlibResidualBlock, fold_affines, padded_add

__all__ = ["activation_qparams", "default_engine", "is_quantized", "quantize_top"]


def default_engine() -> str:
    """The quantized engine for this CPU: ``fbgemm`` (x86) or ``qnnpack`` (ARM).

    Raises
    ------
    RuntimeError
        If this torch build has neither.
    """
    engines = torch.backends.quantized.supported_engines
    for name in ("fbgemm", "x86", "qnnpack"):
        if name in engines:
            return name
    raise RuntimeError(f"this torch build has no int8 CPU engine (it has {engines})")


class _QuantBlock(nn.Module):
    """A folded :class:`DlibResidualBlock` whose two convolutions run in int8."""

    def __init__(self, block: DlibResidualBlock) -> None:
        super().__init__()
        from torch.ao.nn.intrinsic import ConvReLU2d
        from torch.ao.quantization import DeQuantStub, QuantStub

        if isinstance(block.affine1, ChannelAffine) or isinstance(block.affine2, ChannelAffine):
            raise ValueError("fold the affines first (facecore.nn.dlib_resnet.fold_affines)")
        self.quant = QuantStub()
        self.conv1 = ConvReLU2d(block.conv1, nn.ReLU())
        self.conv2 = block.conv2
        self.dequant = DeQuantStub()
        self.shortcut = block.shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.dequant(self.conv2(self.conv1(self.quant(x))))
        return F.relu(padded_add(y, self.shortcut(x)))


def is_quantized(top: nn.Module) -> bool:
    """Whether ``top`` was made by :func:`quantize_top`."""
    return bool(getattr(top, "int8_engine", None))


def _activation_modules(top: nn.Module) -> dict[str, nn.Module]:
    """The modules of a converted top that carry an activation scale and zero point."""
    from torch.ao.nn.quantized import Quantize

    out = {}
    for name, m in top.named_modules():
        if isinstance(m, Quantize) or (hasattr(m, "_packed_params") and hasattr(m, "scale")):
            out[name] = m
    return out


def activation_qparams(top: nn.Module) -> dict[str, list[float]]:
    """``{module name: [scale, zero_point]}`` of a quantized top's activations (JSON-friendly;
    what ``quantize_top(..., qparams=)`` restores)."""
    if not is_quantized(top):
        raise ValueError("not a quantized top (quantize_top makes one)")
    return {
        name: [float(m.scale), int(m.zero_point)] for name, m in _activation_modules(top).items()
    }


def quantize_top(
    top: nn.Module,
    calibration: Iterable[Any] | np.ndarray | Tensor | None = None,
    *,
    qparams: Mapping[str, Any] | None = None,
    engine: str | None = None,
    batch_size: int = 64,
) -> nn.Module:
    """An int8 copy of a :class:`~facecore.nn.top.BackboneTop` for CPU inference.

    Parameters
    ----------
    top : BackboneTop
        Float top (affines folded or not; not changed). Its ``predict`` / ``forward`` contract is
        kept: shared map in, ``(N, num_outputs)`` out.
    calibration : array (N, C, H, W) or iterable of such batches, optional
        Maps of the top's input node (e.g. frozen maps of training photos) that set the
        activation ranges. Exactly one of ``calibration`` and ``qparams``.
    qparams : mapping, optional
        Ranges saved from an earlier call (:func:`activation_qparams`).
    engine : str, optional
        Default :func:`default_engine`.
    batch_size : int, default 64
        Calibration batch size when ``calibration`` is one array.

    Returns
    -------
    nn.Module
        In eval mode, with ``int8_engine`` set; call ``predict`` as on the float top.
    """
    from torch.ao import quantization as tq

    if (calibration is None) == (qparams is None):
        raise ValueError("give exactly one of calibration and qparams")
    engine = engine or default_engine()
    torch.backends.quantized.engine = engine
    q = copy.deepcopy(top).to(memory_format=torch.contiguous_format).eval()
    if any(isinstance(m, ChannelAffine) for m in q.modules()):
        fold_affines(q)
    q.requires_grad_(False)
    config = tq.get_default_qconfig(engine)
    for stage in q.stages:
        for i, block in enumerate(stage):
            if not isinstance(block, DlibResidualBlock):
                raise ValueError(f"cannot quantize a stage holding {type(block).__name__}")
            stage[i] = _QuantBlock(block)
            stage[i].qconfig = config
    with warnings.catch_warnings():
        # torch.ao.quantization's own notices (its eager mode is the maintained CPU path for
        # int8 convolutions in this torch), and "must run observer before calculate_qparams"
        # when the ranges come from qparams instead.
        warnings.simplefilter("ignore")
        tq.prepare(q, inplace=True)
        if calibration is not None:
            with torch.inference_mode():
                for xb in _batches(calibration, batch_size):
                    q(xb)
        tq.convert(q, inplace=True)
    q.int8_engine = engine
    if qparams is not None:
        mods = _activation_modules(q)
        if set(mods) != set(qparams):
            raise ValueError(
                f"qparams name {sorted(qparams)} but the top has {sorted(mods)}: another top?"
            )
        for name, (scale, zero_point) in qparams.items():
            m = mods[name]
            if isinstance(getattr(m, "scale", None), Tensor):  # Quantize holds buffers
                m.scale.fill_(float(scale))
                m.zero_point.fill_(int(zero_point))
            else:
                m.scale, m.zero_point = float(scale), int(zero_point)
    return q.eval()


def _batches(data: Iterable[Any] | np.ndarray | Tensor, batch_size: int) -> Iterable[Tensor]:
    if isinstance(data, (np.ndarray, Tensor)):
        n = len(data)
        if n == 0:
            raise ValueError("calibration maps are empty")
        for s in range(0, n, batch_size):
            yield _as_tensor(data[s : s + batch_size])
        return
    for xb in data:
        yield _as_tensor(xb)


def _as_tensor(x: Any) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.float()
