"""Coupled ensembles: fusion rules and joint training of the branches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facecore.nn import create_model
from facecore.nn.ensembles import CoupledEnsemble, fuse_outputs

pytestmark = pytest.mark.usefixtures("torch_single_thread")  # restored after the module


def _outputs() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(3, 4, 5)  # K=3 branches, B=4, 5 classes


def test_log_softmax_fusion_is_mean_log_probability() -> None:
    out = _outputs()
    fused = fuse_outputs(out, "log_softmax")
    torch.testing.assert_close(fused, sum(F.log_softmax(o, dim=-1) for o in out) / 3)
    # NLL of the averaged log-probabilities = mean of the branches' cross-entropies.
    target = torch.tensor([0, 1, 2, 4])
    branch_ce = torch.stack([F.cross_entropy(o, target) for o in out]).mean()
    torch.testing.assert_close(F.nll_loss(fused, target), branch_ce)


def test_softmax_fusion_is_log_of_mean_probability() -> None:
    out = _outputs()
    fused = fuse_outputs(out, "softmax")
    torch.testing.assert_close(fused.exp(), F.softmax(out, dim=-1).mean(0))
    torch.testing.assert_close(fused.exp().sum(-1), torch.ones(4))


def test_mean_fusion_averages_raw_outputs() -> None:
    out = _outputs()
    torch.testing.assert_close(fuse_outputs(out, "mean"), out.mean(0))
    with pytest.raises(ValueError):
        fuse_outputs(out, "vote")  # type: ignore[arg-type]


def test_ensemble_structure_and_interface() -> None:
    torch.manual_seed(0)
    model = CoupledEnsemble("resnet_tiny", num_branches=3, num_outputs=5)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    single = create_model("resnet_tiny", num_outputs=5)
    assert model.num_branches == 3
    assert sum(p.numel() for p in model.parameters()) == 3 * sum(
        p.numel() for p in single.parameters()
    )
    # Branches are independent networks (different initialisations).
    w = [b.fc.weight for b in model.branches]
    assert not torch.equal(w[0], w[1])
    feats = model.forward_features(x)
    assert feats.shape == (2, 3 * 64, 1, 1) and model.num_features == 192
    assert [i["num_chs"] for i in model.feature_info] == [24, 48, 96, 192]
    with torch.no_grad():
        per_branch = model.branch_outputs(feats)
        assert per_branch.shape == (3, 2, 5)
        torch.testing.assert_close(per_branch[1], model.branches[1](x))
        torch.testing.assert_close(model(x), fuse_outputs(per_branch, "log_softmax"))


def test_joint_training_updates_every_branch() -> None:
    torch.manual_seed(0)
    model = create_model(
        "coupled_ensemble", branch="resnet_tiny", num_branches=2, fusion="mean", num_outputs=1
    )
    assert isinstance(model, CoupledEnsemble) and model.fusion == "mean"
    x, y = torch.randn(4, 3, 32, 32), torch.randn(4, 1)
    loss = F.mse_loss(model(x), y)
    loss.backward()
    for branch in model.branches:
        assert branch.fc.weight.grad is not None and branch.fc.weight.grad.abs().sum() > 0


def test_invalid_ensembles() -> None:
    with pytest.raises(ValueError):
        CoupledEnsemble("resnet_tiny", num_branches=0)
    with pytest.raises(ValueError):
        CoupledEnsemble("resnet_tiny", fusion="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CoupledEnsemble("coupled_ensemble")
    with pytest.raises(ValueError):
        CoupledEnsemble("no_such_model")
