"""The a-CNN of Oviedo et al. 2019 (npj Comput. Mater. 5, 60), faithfully: the baseline to beat.

Three Conv1D layers of 32 filters with kernel = stride = 8, 5 and 3, ReLU after each, global
average pooling, and one dense layer to the classes (softmax in the loss). The original code used a
binary cross-entropy over one-hot outputs; we train with a proper categorical cross-entropy.
On the 1376-point grid the feature maps are 172, 34 and 11 positions long, so the class activation
map has 11 bins of 4.8 degrees -- far too coarse to steer a scan, which is why :mod:`models.xrdnet`
exists.

An ensemble of ``n_members`` independent a-CNNs shares the interface of
:class:`models.xrdnet.XRDNet`: ``forward`` gives per-member logits, ``cam`` per-member maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.grid import GRID_SIZE

FILTERS: int = 32
KERNELS: tuple[int, int, int] = (8, 5, 3)  # kernel = stride, as in the paper


class ACNN(nn.Module):
    """One faithful a-CNN.

    Parameters
    ----------
    n_classes : int
        Number of output classes.
    in_channels : int
        1 reads the processed intensity only (the paper's input); 2 also reads the mask channel.
    """

    def __init__(self, n_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv1 = nn.Conv1d(in_channels, FILTERS, KERNELS[0], stride=KERNELS[0])
        self.conv2 = nn.Conv1d(FILTERS, FILTERS, KERNELS[1], stride=KERNELS[1])
        self.conv3 = nn.Conv1d(FILTERS, FILTERS, KERNELS[2], stride=KERNELS[2])
        self.dense = nn.Linear(FILTERS, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map, [B, 32, 11] for [B, C, 1376] input."""
        x = x[:, : self.in_channels]
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return F.relu(self.conv3(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [B, n_classes] (global average pooling, then the dense layer)."""
        return self.dense(self.features(x).mean(dim=2))

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """Class activation maps on the grid, [B, n_classes, 1376] (Zhou et al. 2016, paper Eq. 5)."""
        maps = torch.einsum("bcp,kc->bkp", self.features(x), self.dense.weight)
        return F.interpolate(maps, size=GRID_SIZE, mode="nearest")


class ACNNEnsemble(nn.Module):
    """``n_members`` independent a-CNNs; logits [B, n_members, n_classes]."""

    def __init__(self, n_classes: int, n_members: int = 1, in_channels: int = 1) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.n_members = n_members
        self.members = nn.ModuleList(ACNN(n_classes, in_channels) for _ in range(n_members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members], dim=1)

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n_members, n_classes, 1376]; zero where the input is unmeasured."""
        maps = torch.stack([member.cam(x) for member in self.members], dim=1)
        return maps * x[:, 1].unsqueeze(1).unsqueeze(1)

    def logits_and_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, n_members, n_classes] and CAMs [B, n_members, n_classes, 1376]."""
        return self.forward(x), self.cam(x)
