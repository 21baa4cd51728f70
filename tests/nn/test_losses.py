"""Focal loss: hand-computed values and the gamma = 0 cross-entropy limit."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facecore.nn.losses import BinaryFocalLoss, FocalLoss, binary_focal_loss, focal_loss

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gamma_zero_is_cross_entropy(reduction: str) -> None:
    logits, target = _data()
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0, reduction=reduction),
        F.cross_entropy(logits, target, reduction=reduction),
    )
    torch.testing.assert_close(
        binary_focal_loss(
            logits, (logits > 0.3).float(), alpha=None, gamma=0.0, reduction=reduction
        ),
        F.binary_cross_entropy_with_logits(logits, (logits > 0.3).float(), reduction=reduction),
    )


def test_gamma_zero_dense_with_ignore_index_and_class_weights() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0, :2] = -100
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target)
    )
    alpha = torch.tensor([0.2, 0.5, 0.3])
    torch.testing.assert_close(
        focal_loss(logits, target, alpha=alpha, gamma=0.0, reduction="sum"),
        F.cross_entropy(logits, target, weight=alpha, reduction="sum"),
    )


def test_hand_computed_values() -> None:
    # softmax([0, ln 3]) = [1/4, 3/4]; true class 1: p_t = 3/4.
    logits = torch.tensor([[0.0, math.log(3.0)]])
    expected = -((1 - 0.75) ** 2) * math.log(0.75)
    assert focal_loss(logits, torch.tensor([1])).item() == pytest.approx(expected)
    assert focal_loss(logits, torch.tensor([1]), alpha=0.5).item() == pytest.approx(0.5 * expected)
    # Binary: sigmoid(0) = 1/2; positive with alpha = 0.25, negative with 1 - alpha.
    z = torch.zeros(2)
    got = binary_focal_loss(z, torch.tensor([1.0, 0.0]), alpha=0.25, gamma=2.0, reduction="none")
    base = 0.25 * math.log(2.0)
    torch.testing.assert_close(got, torch.tensor([0.25 * base, 0.75 * base]))


def test_focusing_down_weights_easy_examples() -> None:
    logits = torch.tensor([[4.0, 0.0], [0.2, 0.0]])  # easy and hard example of class 0
    target = torch.tensor([0, 0])
    ce = F.cross_entropy(logits, target, reduction="none")
    fl = focal_loss(logits, target, gamma=2.0, reduction="none")
    assert torch.all(fl < ce)
    ratio = fl / ce
    assert ratio[0] < 0.01 * ratio[1]


def test_modules_and_gradients() -> None:
    logits, target = _data()
    logits.requires_grad_()
    loss = FocalLoss(alpha=[1.0, 2.0, 1.0, 0.5], gamma=1.5)(logits, target)
    torch.testing.assert_close(
        loss, focal_loss(logits, target, alpha=torch.tensor([1.0, 2.0, 1.0, 0.5]), gamma=1.5)
    )
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    y = (torch.rand(6, 4) > 0.5).float()
    torch.testing.assert_close(
        BinaryFocalLoss(alpha=0.3, gamma=1.0)(logits, y),
        binary_focal_loss(logits, y, alpha=0.3, gamma=1.0),
    )


def test_invalid_inputs() -> None:
    logits, target = _data()
    with pytest.raises(ValueError):
        focal_loss(logits, target, gamma=-1.0)
    with pytest.raises(ValueError):
        focal_loss(logits, target, alpha=[1.0, 2.0])
    with pytest.raises(ValueError):
        focal_loss(logits, target, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        binary_focal_loss(logits, torch.zeros(6))
