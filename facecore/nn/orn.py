"""Active Rotating Filters, oriented response convolution, ORAlign and ORPooling.

Paper: Y. Zhou, Q. Ye, Q. Qiu, J. Jiao, "Oriented Response Networks", CVPR 2017.

An Active Rotating Filter (ARF; paper section "Active Rotating Filters") is a ``k x k x N``
filter: a ``k x k`` kernel for each of ``N`` orientation channels. During the oriented response
convolution (ORConv) it is applied in ``N`` rotated copies ``F_theta``, ``theta = j * 2 pi / N``;
each copy is obtained in two steps: *coordinate rotation* of every orientation channel's spatial
kernel by ``theta`` and *orientation spin*, a cyclic shift of the ``N`` orientation channels by
``j``. The output therefore has ``N`` orientation channels per learned filter, and all copies
share (and are updated by) the single materialised filter: the paper's back-propagation rule for
ARFs is exactly what autograd computes through the rotation.

Rotation-invariant features (paper section "Rotation-invariant feature encoding"):
:class:`ORAlign` rotates (cyclically shifts) every oriented feature so that its dominant
orientation comes first; :class:`ORPool` takes the maximum over the orientation channels.

Channel layout: a tensor with ``C`` oriented features of ``N`` orientations has ``C * N``
channels, orientation fastest (channel ``c * N + j``).

Departures from the paper, and why:

* The paper rotates the kernel by a circular shift in the Fourier domain of its polar
  representation. Here the rotation is a fixed ``(k*k, k*k)`` linear map applied to the kernel:
  an exact permutation for multiples of 90 degrees (any ``k``); for ``k = 3`` and multiples of
  45 degrees the outer ring of 8 taps is shifted, which is what the paper's polar shift amounts to
  on a 3x3 grid; other angles/sizes use bilinear interpolation of the rotated grid (taps rotated
  outside the kernel are dropped).
* ``in_channels`` and ``out_channels`` count tensor channels (learned filters times
  orientations), so an :class:`ORConv2d` drops in for an ``nn.Conv2d`` of the same channel
  counts. ``in_orientations=1`` is the paper's first layer on images (the ARF has one orientation
  channel and only the coordinate rotation applies).
* The bias is shared by the ``N`` rotated copies of a filter, which keeps the layer exactly
  equivariant.
* :class:`ORAlign` aligns at every spatial position independently; the paper applies it to the
  final 1x1 feature vector, which is the special case ``H = W = 1``.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["rotation_matrix", "ORConv2d", "ORAlign", "ORPool"]

logger = logging.getLogger(__name__)


def rotation_matrix(kernel_size: int, angle: float) -> Tensor:
    """Linear map that rotates a flattened ``k x k`` kernel by ``angle`` radians.

    The rotation has the same sense as ``torch.rot90(kernel, 1, dims=(-2, -1))`` for
    ``angle = pi / 2``: rotating an image and its kernel together rotates the correlation.

    Parameters
    ----------
    kernel_size : int
        Side ``k`` of the square kernel.
    angle : float
        Rotation angle in radians.

    Returns
    -------
    Tensor
        Shape (k*k, k*k), float64; ``rotated.flatten() = M @ kernel.flatten()``.
    """
    k = kernel_size
    c = (k - 1) / 2.0
    cos_t, sin_t = math.cos(angle), math.sin(angle)
    quarter = angle / (math.pi / 2)
    eighth = angle / (math.pi / 4)
    exact_quarter = abs(quarter - round(quarter)) < 1e-9
    ring3 = k == 3 and abs(eighth - round(eighth)) < 1e-9
    m = torch.zeros(k * k, k * k, dtype=torch.float64)
    for r in range(k):
        for col in range(k):
            y, x = r - c, col - c
            # Inverse rotation: the tap that lands on (y, x).
            sy = y * cos_t + x * sin_t
            sx = -y * sin_t + x * cos_t
            dst = r * k + col
            if exact_quarter or ring3:
                if ring3 and (y, x) != (0.0, 0.0):
                    # Snap onto the 3x3 ring (Chebyshev radius 1): a 45-degree step is one tap.
                    scale = max(abs(sy), abs(sx))
                    sy, sx = sy / scale, sx / scale
                sr, sc = round(sy + c), round(sx + c)
                m[dst, sr * k + sc] = 1.0
                continue
            fy, fx = sy + c, sx + c
            y0, x0 = math.floor(fy), math.floor(fx)
            for yy, wy in ((y0, 1 - (fy - y0)), (y0 + 1, fy - y0)):
                for xx, wx in ((x0, 1 - (fx - x0)), (x0 + 1, fx - x0)):
                    if 0 <= yy < k and 0 <= xx < k and wy * wx > 1e-12:
                        m[dst, yy * k + xx] += wy * wx
    return m


class ORConv2d(nn.Module):
    """Oriented response convolution with Active Rotating Filters.

    Parameters
    ----------
    in_channels : int
        Input tensor channels, ``C_in * in_orientations``.
    out_channels : int
        Output tensor channels, ``C_out * num_orientations``.
    kernel_size, stride, padding, dilation
        As for :class:`torch.nn.Conv2d` (square kernels; ``padding`` defaults to "same").
    bias : bool
        One learned bias per filter, shared by its rotated copies.
    num_orientations : {4, 8}
        Number ``N`` of rotated copies (and output orientation channels).
    in_orientations : int or None
        Orientation channels of the input: ``N`` (default, hidden layers) or 1 (first layer).

    Notes
    -----
    Rotating the input by 90 degrees rotates the output maps by 90 degrees and spins each
    oriented feature by ``N / 4`` orientation channels. This holds exactly for stride 1 with
    "same" padding; with stride ``s`` it holds when ``(H - 1)`` and ``(W - 1)`` are divisible by
    ``s`` (the sampling grid must be symmetric under the rotation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        num_orientations: int = 4,
        in_orientations: int | None = None,
    ) -> None:
        super().__init__()
        n = num_orientations
        n_in = n if in_orientations is None else in_orientations
        if n not in (4, 8):
            raise ValueError(f"num_orientations must be 4 or 8, got {n}")
        if n_in not in (1, n):
            raise ValueError(f"in_orientations must be 1 or {n}, got {n_in}")
        if in_channels % n_in or out_channels % n:
            raise ValueError(
                f"in_channels ({in_channels}) must be divisible by {n_in} and out_channels "
                f"({out_channels}) by {n}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.stride, self.dilation = stride, dilation
        self.padding = dilation * (kernel_size - 1) // 2 if padding is None else padding
        self.num_orientations, self.in_orientations = n, n_in
        self.weight = nn.Parameter(
            torch.empty(out_channels // n, in_channels // n_in, n_in, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels // n)) if bias else None
        mats = torch.stack(
            [rotation_matrix(kernel_size, 2 * math.pi * j / n) for j in range(n)]
        ).to(torch.get_default_dtype())
        self.register_buffer("rotations", mats, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform initialisation with the ARF's fan-in (``C_in * n_in * k * k``)."""
        fan_in = self.weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def rotated_weight(self) -> Tensor:
        """The full convolution weight: all ``N`` rotated copies of every ARF.

        Returns
        -------
        Tensor
            Shape (out_channels, in_channels, k, k); row ``o * N + j`` holds filter ``o`` rotated
            by ``j * 2 pi / N`` with its orientation channels spun by ``j``.
        """
        o, i, n_in, k, _ = self.weight.shape
        flat = self.weight.reshape(o, i, n_in, k * k)
        rot = self.rotations.to(dtype=flat.dtype)
        copies = []
        for j in range(self.num_orientations):
            spun = torch.roll(flat, shifts=j, dims=2) if n_in > 1 else flat
            copies.append(spun @ rot[j].T)
        w = torch.stack(copies, dim=1)  # (o, N, i, n_in, k*k)
        return w.reshape(o * self.num_orientations, i * n_in, k, k)

    def forward(self, x: Tensor) -> Tensor:
        """Oriented responses, shape (B, out_channels, H', W'), for ``x`` (B, in_channels, H, W)."""
        bias = None
        if self.bias is not None:
            bias = self.bias.repeat_interleave(self.num_orientations)
        return F.conv2d(x, self.rotated_weight(), bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"num_orientations={self.num_orientations}, in_orientations={self.in_orientations}"
        )


def _split_orientations(x: Tensor, n: int) -> Tensor:
    b, ch = x.shape[:2]
    if ch % n:
        raise ValueError(f"channel count {ch} is not divisible by num_orientations={n}")
    return x.reshape(b, ch // n, n, *x.shape[2:])


class ORPool(nn.Module):
    """ORPooling: maximum over the ``N`` orientation channels of each oriented feature.

    ``(B, C * N, ...) -> (B, C, ...)``.
    """

    def __init__(self, num_orientations: int = 4) -> None:
        super().__init__()
        self.num_orientations = num_orientations

    def forward(self, x: Tensor) -> Tensor:
        """Pool orientations of ``x`` (B, C * N, ...)."""
        return _split_orientations(x, self.num_orientations).amax(dim=2)


class ORAlign(nn.Module):
    """ORAlign: cyclically shift each oriented feature so its dominant orientation is first.

    ``(B, C * N, ...) -> (B, C * N, ...)``; the shift is computed independently at every position.
    """

    def __init__(self, num_orientations: int = 4) -> None:
        super().__init__()
        self.num_orientations = num_orientations

    def forward(self, x: Tensor) -> Tensor:
        """Align the orientations of ``x`` (B, C * N, ...)."""
        n = self.num_orientations
        v = _split_orientations(x, n)
        dominant = v.argmax(dim=2, keepdim=True)  # (B, C, 1, ...)
        shape = [1] * v.dim()
        shape[2] = n
        offsets = torch.arange(n, device=x.device).view(shape)
        index = (dominant + offsets) % n
        return torch.gather(v, 2, index).reshape(x.shape)
