"""The candidate networks and RankIQA's ranking loss."""

import numpy as np
import pytest
import torch

from facecore.quality.network import ARCHITECTURES, build, ranking_loss

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_shapes():
    assert build("quality_map_head")(torch.randn(3, 64, 17, 17)).shape == (3,)
    chips = torch.randint(0, 256, (2, 3, 150, 150), dtype=torch.uint8)
    assert build("quality_chip_net")(chips).shape == (2,)
    with pytest.raises(ValueError, match="unknown quality architecture"):
        build("resnet1000")
    assert {a.input_node for a in ARCHITECTURES.values()} == {"stage2", "chip"}


def test_ranking_loss_counts_only_misordered_pairs():
    levels = torch.arange(5).repeat(2, 1)
    ordered = torch.tensor([[8.0, 6.0, 4.0, 2.0, 0.0], [4.0, 3.0, 2.0, 1.0, 0.0]])
    # Gaps of 2 beat the margin of 1 everywhere in row 0; row 1's adjacent gaps are exactly 1.
    assert float(ranking_loss(ordered, levels)) == 0.0
    reversed_ = -ordered
    # Row 0: 10 pairs with gaps 2,4,6,8 (x4,3,2,1) -> hinge 1 + gap; row 1 the same with gaps 1..4.
    expected = np.mean(
        [1 + 2 * g for g in (1, 1, 1, 1, 2, 2, 2, 3, 3, 4)]
        + [1 + g for g in (1, 1, 1, 1, 2, 2, 2, 3, 3, 4)]
    )
    assert float(ranking_loss(reversed_, levels)) == pytest.approx(expected)


def test_ranking_loss_ignores_equal_levels():
    s = torch.tensor([[0.0, 5.0]])
    assert float(ranking_loss(s, torch.tensor([[1, 1]]))) == 0.0
    assert float(ranking_loss(s, torch.tensor([[0, 1]]))) == pytest.approx(6.0)


def test_a_map_head_learns_to_rank_noise():
    # Maps whose spread grows with the level: a few steps of the ranking loss order them.
    torch.manual_seed(0)
    net = build("quality_map_head")
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    levels = torch.arange(5).repeat(8, 1)

    def batch():
        base = torch.rand(8, 1, 64, 17, 17)
        noise = torch.randn(8, 5, 64, 17, 17) * levels.view(8, 5, 1, 1, 1) * 0.3
        return (base + noise).view(40, 64, 17, 17)

    for _ in range(60):
        loss = ranking_loss(net(batch()).view(8, 5), levels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        s = net(batch()).view(8, 5)
    i, j = np.triu_indices(5, k=1)
    assert float((s[:, i] > s[:, j]).float().mean()) > 0.9
