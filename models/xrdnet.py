"""XRDNet: our classifier, an ensemble of small two-resolution CNNs with a 0.24-degree CAM.

Each member reads the two-channel input (processed intensity, measured mask) on the 0.04-degree grid:

    stem     Conv1d(2 -> W, kernel = stride = 6)            229 positions at 0.24 deg
    context  average pool x4 -> two Conv1d(W -> W, k=3,    57 positions at 0.96 deg,
             dilation 1 and 2) -> 1x1 projection            receptive field ~9 deg (peak patterns)
    fuse     ReLU(1x1(stem) + upsampled context)           229 positions at 0.24 deg  (last layer)
    head     average over *measured* positions -> Linear(W -> classes)

Because the head is linear after pooling, the class activation map (Zhou et al. 2016) is the head's
weights applied at every position of the last layer: 0.24-degree bins, upsampled to the grid, zero
where nothing was measured; the logits are the CAM's mean over the measured positions plus the bias.

All members run as one network: the stem is one convolution with ``n_members * width`` outputs and
the later layers are grouped convolutions, so an ensemble costs one forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.grid import GRID_SIZE

STEM_STRIDE: int = 6
"""Grid points per last-layer position: 6 x 0.04 = 0.24 degrees (the CAM resolution)."""
CONTEXT_POOL: int = 4
"""Context branch runs at STEM_STRIDE * CONTEXT_POOL = 24 grid points (0.96 degrees)."""
POSITIONS: int = GRID_SIZE // STEM_STRIDE  # 229
CAM_RESOLUTION_DEG: float = STEM_STRIDE * 0.04


class XRDNet(nn.Module):
    """An ensemble of ``n_members`` XRDNets evaluated together.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    n_members : int
        Ensemble members (independent weights, trained from different seeds and data splits).
    width : int
        Channels per member.
    """

    def __init__(self, n_classes: int, n_members: int = 5, width: int = 12) -> None:
        super().__init__()
        self.n_classes, self.n_members, self.width = n_classes, n_members, width
        channels = n_members * width
        self.stem = nn.Conv1d(2, channels, STEM_STRIDE, stride=STEM_STRIDE)
        self.context1 = nn.Conv1d(channels, channels, 3, padding=1, groups=n_members)
        self.context2 = nn.Conv1d(channels, channels, 3, padding=2, dilation=2, groups=n_members)
        self.context_out = nn.Conv1d(channels, channels, 1, groups=n_members)
        self.fine = nn.Conv1d(channels, channels, 1, groups=n_members)
        self.head_weight = nn.Parameter(torch.empty(n_members, n_classes, width))
        self.head_bias = nn.Parameter(torch.zeros(n_members, n_classes))
        nn.init.kaiming_uniform_(self.head_weight.view(-1, width), a=5**0.5)

    def _last_layer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last feature map [B, members, width, 229] and the measured weight of each position [B, 229]."""
        x = x[:, :, : POSITIONS * STEM_STRIDE]
        stem = F.relu(self.stem(x))
        context = F.avg_pool1d(stem, CONTEXT_POOL)
        context = F.relu(self.context1(context))
        context = F.relu(self.context2(context))
        context = self.context_out(context)
        context = F.pad(context.repeat_interleave(CONTEXT_POOL, dim=2), (0, POSITIONS - context.shape[2] * CONTEXT_POOL), mode="replicate")
        last = F.relu(self.fine(stem) + context)
        measured = F.avg_pool1d(x[:, 1:2], STEM_STRIDE).squeeze(1)  # fraction of each bin measured
        return last.view(x.shape[0], self.n_members, self.width, POSITIONS), measured

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-member logits [B, n_members, n_classes] for preprocessed input [B, 2, 1376]."""
        last, measured = self._last_layer(x)
        pooled = torch.einsum("bewp,bp->bew", last, measured) / measured.sum(1).clamp(min=1e-6)[:, None, None]
        return torch.einsum("bew,ekw->bek", pooled, self.head_weight) + self.head_bias

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """Class activation maps [B, n_members, n_classes, 1376], zero where unmeasured."""
        return self.logits_and_cam(x)[1]

    def logits_and_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs from one pass: logits [B, E, K] and CAMs [B, E, K, 1376].

        The logits equal the CAM's weighted mean over measured bins plus the bias (the head is
        linear, so it commutes with the pooling).
        """
        last, measured = self._last_layer(x)
        maps = torch.einsum("bewp,ekw->bekp", last, self.head_weight)
        weight = measured / measured.sum(1, keepdim=True).clamp(min=1e-6)
        logits = torch.einsum("bekp,bp->bek", maps, weight) + self.head_bias
        maps = (maps * measured[:, None, None]).repeat_interleave(STEM_STRIDE, dim=3)
        maps = F.pad(maps.flatten(1, 2), (0, GRID_SIZE - maps.shape[3]), mode="replicate").view(*maps.shape[:3], GRID_SIZE)
        return logits, maps * x[:, 1][:, None, None]
