"""The two candidate quality networks and RankIQA's pairwise ranking loss.

Both end in a scalar score (higher: better quality) and are trained only through rankings
(:func:`ranking_loss`): X. Liu, J. van de Weijer, A. D. Bagdanov, "RankIQA: Learning from
Rankings for No-reference Image Quality Assessment", ICCV 2017. The paper's Siamese network
shares one set of weights between the two images of a pair; here a batch holds every graded
version of a crop, scored by the one network, and the hinge is taken over all of their pairs
(the same loss, without duplicating the forward of an image that appears in several pairs).

* :class:`MapQualityNet` - a small head on the trunk's shared stage-2 map (64x17x17): it adds
  two convolutions and a pooled MLP to the forward the trunk has already made.
* :class:`ChipQualityNet` - a small network of its own on the 150x150 RGB chip, for when the
  trunk's map has lost what quality needs (high frequencies, exposure); the bench decides.

Each pools the mean and the standard deviation of its last feature map: blur lowers the
spread of the responses, noise and blocking raise it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ARCHITECTURES", "ChipQualityNet", "MapQualityNet", "build", "ranking_loss"]


def _mean_std(x: Tensor) -> Tensor:
    flat = x.flatten(2)
    return torch.cat([flat.mean(2), flat.std(2, unbiased=False)], dim=1)


class MapQualityNet(nn.Module):
    """Quality score from the trunk's stage-2 map (N, 64, 17, 17) -> (N,)."""

    input_node = "stage2"

    def __init__(self, channels: int = 64, width: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Linear(2 * width, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(_mean_std(self.features(x.float()))).squeeze(1)


class ChipQualityNet(nn.Module):
    """Quality score from aligned RGB chips (N, 3, 150, 150), uint8 or float on 0..255 -> (N,)."""

    input_node = "chip"

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * c, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x.float() / 127.5 - 1.0
        return self.head(_mean_std(self.features(x))).squeeze(1)


#: Architecture name (as stored in the model file and the manifest) -> class.
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "quality_map_head": MapQualityNet,
    "quality_chip_net": ChipQualityNet,
}


def build(architecture: str) -> nn.Module:
    """A fresh network of ``architecture`` (a key of :data:`ARCHITECTURES`)."""
    try:
        return ARCHITECTURES[architecture]()
    except KeyError:
        raise ValueError(
            f"unknown quality architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}"
        ) from None


def ranking_loss(scores: Tensor, levels: Tensor, margin: float = 1.0) -> Tensor:
    """RankIQA's hinge over every ordered pair of graded versions of the same crop.

    Parameters
    ----------
    scores : Tensor (G, L)
        Scores of L versions of each of G crops (one distortion kind per group).
    levels : Tensor (G, L)
        Their distortion levels (0 = clean; higher = more distorted).
    margin : float, default 1.0

    Returns
    -------
    Tensor ()
        Mean over pairs (i, j) with ``levels[i] < levels[j]`` of
        ``max(0, margin - (scores[i] - scores[j]))``.
    """
    diff = scores.unsqueeze(2) - scores.unsqueeze(1)  # s_i - s_j
    better = levels.unsqueeze(2) < levels.unsqueeze(1)  # i less distorted than j
    if not bool(better.any()):
        return scores.sum() * 0.0
    return torch.relu(margin - diff[better]).mean()
