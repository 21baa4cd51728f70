"""Orthonormality regulariser: values, the smaller-Gram identity and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facecore.nn.regularizers import orthonormal_penalty, orthonormality_error

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module


def _small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3),  # W: (3, 18), wide
        nn.BatchNorm2d(3),
        nn.Flatten(),
        nn.Linear(12, 20),  # W: (20, 12), tall
        nn.Linear(20, 2),
    ).double()


def test_zero_for_orthonormal_rows_or_columns() -> None:
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(18, 18, dtype=torch.float64))
    assert orthonormality_error(q[:3]).item() == pytest.approx(0.0, abs=1e-12)  # 3 orthonormal rows
    assert orthonormality_error(q[:, :5]).item() == pytest.approx(0.0, abs=1e-12)  # 5 columns
    conv_w = q[:4].reshape(4, 2, 3, 3)  # a conv weight reshaped to (out, in*k*k)
    assert orthonormality_error(conv_w).item() == pytest.approx(0.0, abs=1e-12)
    assert orthonormality_error(2 * q[:3]).item() == pytest.approx(3 * (4 - 1) ** 2)


def test_smaller_gram_side_differs_by_a_constant() -> None:
    torch.manual_seed(0)
    w = torch.randn(3, 7, dtype=torch.float64)
    big = ((w.T @ w - torch.eye(7, dtype=w.dtype)) ** 2).sum()
    torch.testing.assert_close(orthonormality_error(w) + (7 - 3), big)
    torch.testing.assert_close(orthonormality_error(w.T) + (7 - 3), big)


def test_penalty_sums_selected_layers() -> None:
    model = _small_model()
    layers = [model[0], model[3], model[4]]
    expected = 0.5 * 0.1 * sum(orthonormality_error(m.weight) for m in layers)
    torch.testing.assert_close(orthonormal_penalty(model, weight=0.1), expected)
    only_linear = orthonormal_penalty(model, weight=0.1, layer_types=(nn.Linear,))
    torch.testing.assert_close(
        only_linear, 0.05 * sum(orthonormality_error(m.weight) for m in layers[1:])
    )
    no_head = orthonormal_penalty(model, weight=0.1, include=lambda name, m: name != "4")
    torch.testing.assert_close(
        no_head, 0.05 * sum(orthonormality_error(m.weight) for m in layers[:2])
    )
    assert orthonormal_penalty(nn.Sequential(nn.ReLU())).item() == 0.0


def test_gradcheck_orthonormality_error() -> None:
    torch.manual_seed(0)
    for shape in [(3, 2, 2, 2), (6, 4)]:
        w = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(orthonormality_error, (w,))


def test_model_penalty_gradient_matches_finite_differences() -> None:
    model = _small_model()
    weight, eps = 0.3, 1e-6
    penalty = orthonormal_penalty(model, weight=weight)
    grads = torch.autograd.grad(penalty, [model[0].weight, model[3].weight])
    for param, grad in zip([model[0].weight, model[3].weight], grads, strict=True):
        flat = param.data.view(-1)
        for idx in (0, 5, flat.numel() - 1):
            old = flat[idx].item()
            flat[idx] = old + eps
            plus = orthonormal_penalty(model, weight=weight).item()
            flat[idx] = old - eps
            minus = orthonormal_penalty(model, weight=weight).item()
            flat[idx] = old
            assert grad.view(-1)[idx].item() == pytest.approx((plus - minus) / (2 * eps), rel=1e-6)
    # Analytic form for a wide W: d/dW lambda/2 ||W W^T - I||^2 = 2 lambda (W W^T - I) W.
    w = model[0].weight.reshape(3, -1)
    analytic = 2 * weight * (w @ w.T - torch.eye(3, dtype=w.dtype)) @ w
    torch.testing.assert_close(grads[0].reshape(3, -1), analytic)


def test_descent_drives_weights_towards_orthonormality() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(6, 4)
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    start = orthonormality_error(layer.weight).item()
    for _ in range(200):
        opt.zero_grad()
        orthonormal_penalty(layer, weight=1.0).backward()
        opt.step()
    assert orthonormality_error(layer.weight).item() < 1e-3 * start
