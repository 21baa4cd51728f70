"""LARS against hand-computed steps of Algorithm 1, parameter groups and the LR schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facecore.nn.optim import (
    LARS,
    WarmupPolynomialLR,
    lars_param_groups,
    warmup_polynomial_factor,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module


def test_two_hand_computed_steps() -> None:
    # gamma = 0.2, m = 0.9, beta = 0.1, eta = 0.5, w0 = (3, 4), constant gradient g = (0.6, 0.8).
    w = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    opt = LARS([w], lr=0.2, momentum=0.9, weight_decay=0.1, eta=0.5)
    g = torch.tensor([0.6, 0.8], dtype=torch.float64)
    # Step 1: ||w|| = 5, ||g|| = 1 -> lambda = 0.5 * 5 / (1 + 0.1 * 5) = 5/3.
    #   g + beta w = (0.9, 1.2); v = 0.2 * 5/3 * (0.9, 1.2) = (0.3, 0.4); w = (2.7, 3.6).
    w.grad = g.clone()
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([2.7, 3.6], dtype=torch.float64))
    # Step 2: ||w|| = 4.5 -> lambda = 0.5 * 4.5 / (1 + 0.45) = 45/29;
    #   g + beta w = (0.87, 1.16); v = 0.9 * (0.3, 0.4) + 0.2 * 45/29 * (0.87, 1.16)
    #   = (0.27, 0.36) + (0.27, 0.36) = (0.54, 0.72); w = (2.16, 2.88).
    w.grad = g.clone()
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([2.16, 2.88], dtype=torch.float64))
    buf = opt.state[w]["momentum_buffer"]
    torch.testing.assert_close(buf, torch.tensor([0.54, 0.72], dtype=torch.float64))


def test_local_lr_formula_and_zero_norm_fallback() -> None:
    w = torch.tensor([3.0, 4.0])
    g = torch.tensor([0.0, 2.0])
    assert LARS.local_lr(w, g, eta=0.01, weight_decay=0.0).item() == pytest.approx(0.01 * 5 / 2)
    assert LARS.local_lr(torch.zeros(2), g, eta=0.01, weight_decay=0.1).item() == 1.0
    assert LARS.local_lr(w, torch.zeros(2), eta=0.01, weight_decay=0.1).item() == 1.0
    # A zero weight falls back to plain momentum SGD: w = 0 - 0.5 * g.
    p = nn.Parameter(torch.zeros(2))
    p.grad = g.clone()
    LARS([p], lr=0.5, weight_decay=0.1, eta=0.01).step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.0, -1.0]))


def test_non_adapted_group_is_plain_momentum_sgd() -> None:
    b = nn.Parameter(torch.tensor([1.0]))
    opt = LARS([{"params": [b], "adapt": False, "weight_decay": 0.0}], lr=0.2, momentum=0.9)
    for expected in (0.9, 0.71):  # v = 0.1 then 0.9 * 0.1 + 0.1 = 0.19
        b.grad = torch.tensor([0.5])
        opt.step()
        assert b.item() == pytest.approx(expected)


def test_param_groups_exclude_biases_and_norms() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    adapted, plain = lars_param_groups(model)
    assert {id(p) for p in adapted["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert len(plain["params"]) == 4 and plain["adapt"] is False and plain["weight_decay"] == 0
    (everything,) = lars_param_groups(model, exclude_bias_and_norm=False)
    assert len(everything["params"]) == 6
    opt = LARS(lars_param_groups(model), lr=0.1)
    assert [g["adapt"] for g in opt.param_groups] == [True, False]


def test_warmup_then_polynomial_decay() -> None:
    factors = [warmup_polynomial_factor(s, total_steps=6, warmup_steps=2) for s in range(8)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.75**2, 0.5**2, 0.25**2, 0.0, 0.0])
    assert warmup_polynomial_factor(5, total_steps=10) == pytest.approx(0.25)  # (1 - t/T)^2
    p = nn.Parameter(torch.ones(2))
    opt = LARS([p], lr=2.0)
    sched = WarmupPolynomialLR(opt, total_steps=6, warmup_steps=2)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(2)
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2.0 * f for f in factors[:6]])
    with pytest.raises(ValueError):
        warmup_polynomial_factor(0, total_steps=5, warmup_steps=5)


def test_lars_trains_a_small_model() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
    x = torch.randn(64, 5)
    y = x @ torch.randn(5, 1)
    opt = LARS(lars_param_groups(model), lr=0.5, eta=0.02, weight_decay=1e-4)
    loss0 = nn.functional.mse_loss(model(x), y).item()
    for _ in range(100):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.004 * loss0  # measured: 0.0024 of the first loss


def test_invalid_hyperparameters() -> None:
    p = [nn.Parameter(torch.ones(1))]
    for kwargs in ({"lr": -1.0}, {"momentum": 1.0}, {"weight_decay": -0.1}, {"eta": 0.0}):
        with pytest.raises(ValueError):
            LARS(p, **kwargs)
