"""The fit loop learns, checkpoints and resumes to the same weights."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from facecore.metrics import ldl_metrics
from facecore.training.fit import (
    CHECKPOINT_NAME,
    EpochRecord,
    FitConfig,
    fit,
    predict,
)


def softmax_task(n: int = 512, d: int = 6, labels: int = 4, seed: int = 0):
    """Inputs and label distributions of a learnable mapping: softmax(x @ W), W fixed."""
    W = 1.5 * torch.randn(d, labels, generator=torch.Generator().manual_seed(99))
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return X, torch.softmax(X @ W, dim=1)


def map_task(n: int = 256, seed: int = 0):
    """(N, 3, 4, 6) maps whose target distribution depends on channel means (flip-invariant)."""
    W = 2.0 * torch.randn(3, 5, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, 4, 6, generator=g) + torch.randn(n, 3, 1, 1, generator=g)
    return X, torch.softmax(X.mean(dim=(2, 3)) @ W, dim=1)


def conv_head() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 5, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def linear(d: int = 6, out: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(d, out)


def test_kl_fit_learns_a_label_distribution_mapping(caplog: pytest.LogCaptureFixture) -> None:
    X, T = softmax_task()
    Xv, Tv = softmax_task(128, seed=1)
    model = linear()
    before = ldl_metrics(Tv.numpy(), predict(model, Xv))["kl"]
    seen: list[EpochRecord] = []
    cfg = FitConfig(epochs=30, batch_size=32, lr=0.05, weight_decay=0.0, loss="kl")
    with caplog.at_level(logging.INFO, logger="facecore.training.fit"):
        res = fit(model, X, T, cfg, progress=seen.append)
    assert [r.epoch for r in seen] == list(range(1, 31)) and res.history == seen
    assert res.history[-1].loss < res.history[0].loss / 10
    after = ldl_metrics(Tv.numpy(), predict(model, Xv))["kl"]
    assert after < before / 10 and after < 0.01  # measured: 1.24 -> 0.0077
    assert "epoch 30/30: loss" in caplog.text
    assert not model.training  # left in eval mode
    # One-cycle: the rate rises then falls to ~0.
    lrs = [r.lr for r in res.history]
    assert max(lrs) == pytest.approx(0.05, rel=0.05) and lrs[-1] < 1e-4


def test_custom_loss_learns_and_only_kl_or_custom_exist() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 5, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0])

    cfg = FitConfig(epochs=40, batch_size=32, lr=0.1, loss="custom")
    res = fit(linear(5, 1), X, y, cfg, loss_fn=_l1)
    assert res.history[-1].loss < res.history[0].loss / 10
    with pytest.raises(ValueError, match="loss must be one of"):
        FitConfig(loss="ce")
    with pytest.raises(ValueError, match="go together"):
        fit(linear(5, 1), X, y, cfg)


def test_conv_head_on_float16_maps_learns() -> None:
    X, T = map_task()
    cfg = FitConfig(epochs=25, batch_size=32, lr=0.05, weight_decay=0.0)
    res = fit(conv_head(), X.numpy().astype(np.float16), T.numpy(), cfg)
    assert res.history[-1].loss < res.history[0].loss / 10


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    X, T = map_task(96)
    X_flipped = torch.flip(X, dims=[3])
    model_kw = dict(X_flipped=X_flipped)
    base = dict(epochs=4, batch_size=16, lr=0.02, seed=3)

    whole = conv_head()
    ref = fit(whole, X, T, FitConfig(**base, checkpoint_dir=tmp_path / "a"), **model_kw)

    class Interrupt(Exception):
        pass

    def stop_after_two(rec: EpochRecord) -> None:
        if rec.epoch == 2:
            raise Interrupt

    cfg = FitConfig(**base, checkpoint_dir=tmp_path / "b")
    with pytest.raises(Interrupt):
        fit(conv_head(), X, T, cfg, progress=stop_after_two, **model_kw)
    saved = torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=True)
    assert saved["epoch"] == 2 and len(saved["history"]) == 2
    assert {"model", "optimizer", "scheduler", "rng", "history", "config"} <= set(saved)

    torch.manual_seed(123)  # the caller's global state must not matter
    resumed_model = conv_head()  # fresh weights: everything comes from the checkpoint
    res = fit(resumed_model, X, T, cfg, resume=True, **model_kw)
    assert res.resumed_from == 2 and len(res.history) == 4
    for a, b in zip(ref.history, res.history, strict=True):
        assert a.loss == pytest.approx(b.loss, abs=1e-7)
    resumed_state = resumed_model.state_dict()
    for k, a in whole.state_dict().items():
        torch.testing.assert_close(a, resumed_state[k], atol=1e-6, rtol=0, msg=k)
    # The weights did move (the test would be vacuous otherwise).
    assert not torch.allclose(conv_head()[0].weight, whole[0].weight, atol=1e-3)

    # A finished fit resumes to nothing, and other settings are refused.
    again = fit(conv_head(), X, T, cfg, resume=True, **model_kw)
    assert again.resumed_from == 4 and len(again.history) == 4
    with pytest.raises(ValueError, match="other settings"):
        fit(conv_head(), X, T, FitConfig(**(base | {"lr": 0.1}), checkpoint_dir=tmp_path / "b"),
            resume=True, **model_kw)  # fmt: skip
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_bad_settings() -> None:
    X, T = softmax_task(16)
    with pytest.raises(ValueError):
        FitConfig(loss="mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FitConfig(epochs=0)
    with pytest.raises(ValueError):
        fit(linear(), X, T[:8], FitConfig(epochs=1))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            fit(linear(), X, T, FitConfig(epochs=1, device="cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda_learns() -> None:
    X, T = map_task()
    model = conv_head()
    cfg = FitConfig(epochs=25, batch_size=32, lr=0.05, weight_decay=0.0, device="cuda")
    res = fit(model, X, T, cfg)
    assert res.history[-1].loss < res.history[0].loss / 10
    assert next(model.parameters()).device.type == "cuda"


def _l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out.reshape(target.shape) - target).abs().mean()


def _probe(seen):
    """A model class that records the first value of every training input it sees."""
    from torch import nn

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            seen.append(x[:, 0, 0, 0].detach().clone())
            return self.w * x.mean(dim=(1, 2, 3))

    return Probe


def test_flipped_inputs_replace_half_the_samples():
    """With X_flipped, training sees each sample or its mirrored version (about half each)."""
    import torch

    from facecore.training.fit import FitConfig, fit

    seen = []
    Probe = _probe(seen)

    X = torch.zeros(200, 1, 2, 2)
    Xf = torch.ones(200, 1, 2, 2)
    Y = torch.zeros(200)
    fit(
        Probe(),
        X,
        Y,
        FitConfig(epochs=2, batch_size=50, loss="custom", lr=1e-3),
        loss_fn=_l1,
        X_flipped=Xf,
    )
    share = float(torch.cat(seen).mean())
    assert 0.4 < share < 0.6  # 400 draws of a fair coin
    with pytest.raises(ValueError, match="X_flipped"):
        fit(Probe(), X, Y, FitConfig(epochs=1, loss="custom"), loss_fn=_l1, X_flipped=Xf[:10])


def test_expectation_term_is_added_to_the_kl_loss():
    from facecore.training.fit import _kl_loss

    out = torch.tensor([[0.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0, 1.0]])
    bins = torch.tensor([1.0, 2.0, 3.0])
    plain = _kl_loss(out, target)
    both = _kl_loss(out, target, (0.5, bins))
    assert float(both - plain) == pytest.approx(0.5 * (3.0 - 2.0))
    with pytest.raises(ValueError, match="bins"):
        FitConfig(expectation_weight=1.0)
    assert FitConfig(expectation_weight=1.0, bins=[1, 2]).bins == (1.0, 2.0)


def test_gradient_clipping_bounds_each_step(monkeypatch: pytest.MonkeyPatch) -> None:
    X, T = softmax_task()
    with pytest.raises(ValueError, match="max_grad_norm"):
        FitConfig(max_grad_norm=0.0)
    norms: list[float] = []
    real = nn.utils.clip_grad_norm_

    def spy(params, max_norm):  # noqa: ANN001, ANN202
        norms.append(float(real(params, max_norm)))
        return norms[-1]

    monkeypatch.setattr(nn.utils, "clip_grad_norm_", spy)
    base = dict(epochs=2, batch_size=64, lr=0.05, weight_decay=0.0)
    fit(linear(), X, T, FitConfig(**base))
    assert norms == []  # off by default
    model = linear()
    fit(model, X, T, FitConfig(**base, max_grad_norm=1e-3))
    assert len(norms) == 2 * math.ceil(len(X) / 64)  # every step
    assert max(norms) > 1e-3  # the norms before clipping: each step was clipped
    assert all(p.grad is None or p.grad.norm() <= 1e-3 * 1.001 for p in model.parameters())
