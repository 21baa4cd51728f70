"""Active rotating filters: exact rotation equivariance and ORPool / ORAlign invariance (N=4, 8)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from facecore.nn.orn import ORAlign, ORConv2d, ORPool, rotation_matrix

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module


def _rot(x: torch.Tensor, k: int = 1) -> torch.Tensor:
    return torch.rot90(x, k, dims=(-2, -1))


def _spin(y: torch.Tensor, n: int, shift: int) -> torch.Tensor:
    """Cyclically shift the orientation channels of y (B, C * n, H, W) by ``shift``."""
    b, ch, h, w = y.shape
    return torch.roll(y.reshape(b, ch // n, n, h, w), shift, dims=2).reshape(y.shape)


@pytest.mark.parametrize("k", [1, 3, 4, 5])
def test_quarter_turns_are_exact_rot90(k: int) -> None:
    kernel = torch.randn(k, k, dtype=torch.float64)
    for q in range(4):
        m = rotation_matrix(k, q * math.pi / 2)
        torch.testing.assert_close((m @ kernel.flatten()).view(k, k), _rot(kernel, q))


def test_3x3_eighth_turn_shifts_the_ring() -> None:
    m45, m90 = rotation_matrix(3, math.pi / 4), rotation_matrix(3, math.pi / 2)
    torch.testing.assert_close(m45 @ m45, m90)
    torch.testing.assert_close(torch.linalg.matrix_power(m45, 8), torch.eye(9, dtype=m45.dtype))
    assert m45[4, 4] == 1  # the centre tap stays
    # Any other angle/size interpolates; rows still sum to at most one.
    m = rotation_matrix(5, math.pi / 4)
    assert torch.all(m.sum(1) <= 1 + 1e-9)


def test_rotated_copies_rotate_and_spin() -> None:
    torch.manual_seed(0)
    conv = ORConv2d(8, 12, 3, num_orientations=4).double()
    full = conv.rotated_weight().view(3, 4, 2, 4, 3, 3)  # (o, j, i, n, k, k)
    base = conv.weight  # (o, i, n, k, k)
    for j in range(4):
        expected = _rot(torch.roll(base, j, dims=2), j)
        torch.testing.assert_close(full[:, j], expected)


def _or_net(n: int, in_orientations: int = 1) -> nn.Module:
    c_in = 2 * in_orientations
    return nn.Sequential(
        ORConv2d(c_in, 3 * n, 3, num_orientations=n, in_orientations=in_orientations),
        nn.ReLU(),
        ORConv2d(3 * n, 2 * n, 3, num_orientations=n),
    ).double()


@pytest.mark.parametrize("n", [4, 8])
def test_rotating_the_input_rotates_and_spins_the_response(n: int) -> None:
    torch.manual_seed(0)
    net = _or_net(n)
    x = torch.randn(2, 2, 9, 9, dtype=torch.float64)
    y, y_rot = net(x), net(_rot(x))
    # A quarter turn of the input = a quarter turn of the maps + a spin of n/4 orientations.
    torch.testing.assert_close(y_rot, _spin(_rot(y), n, n // 4), rtol=0, atol=1e-10)
    assert not torch.allclose(y_rot, _rot(y))  # the spin is really there


@pytest.mark.parametrize("n", [4, 8])
def test_orpool_and_oralign_give_rotation_invariant_features(n: int) -> None:
    torch.manual_seed(1)
    net = _or_net(n)
    x = torch.randn(2, 2, 10, 10, dtype=torch.float64)
    for encode in (ORPool(n), ORAlign(n)):

        def features(inp: torch.Tensor, encode: nn.Module = encode) -> torch.Tensor:
            return encode(net(inp)).mean(dim=(2, 3))

        f = features(x)
        for q in (1, 2, 3):
            torch.testing.assert_close(features(_rot(x, q)), f, rtol=0, atol=1e-10)
    plain = nn.Conv2d(2, 2 * n, 3, padding=1).double()
    g = plain(x).mean(dim=(2, 3))
    assert not torch.allclose(plain(_rot(x)).mean(dim=(2, 3)), g, atol=1e-6)


def test_oralign_and_orpool_values() -> None:
    x = torch.tensor([[1.0, 5.0, 2.0, 0.0, 7.0, 1.0, 3.0, 2.0]]).view(1, 8, 1, 1)
    torch.testing.assert_close(ORPool(4)(x).flatten(), torch.tensor([5.0, 7.0]))
    aligned = ORAlign(4)(x).flatten()
    torch.testing.assert_close(aligned, torch.tensor([5.0, 2.0, 0.0, 1.0, 7.0, 1.0, 3.0, 2.0]))


def test_drop_in_replacement_for_conv() -> None:
    conv = ORConv2d(3, 16, 3, stride=2, num_orientations=8, in_orientations=1)
    x = torch.randn(2, 3, 16, 16)
    y = conv(x)
    assert y.shape == nn.Conv2d(3, 16, 3, stride=2, padding=1)(x).shape
    y.sum().backward()
    assert conv.weight.grad is not None and conv.weight.shape == (2, 3, 1, 3, 3)
    assert conv.bias is not None and conv.bias.grad is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_orientations": 6},
        {"num_orientations": 4, "in_orientations": 2},
        {"num_orientations": 4, "out_channels": 10},
    ],
)
def test_invalid_orconv(kwargs: dict) -> None:
    args = {"in_channels": 8, "out_channels": 8, **kwargs}
    with pytest.raises(ValueError):
        ORConv2d(**args)
