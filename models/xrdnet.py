"""XRDNet: our classifier, an ensemble of small two-resolution CNNs with a 0.24-degree CAM.

Each member reads the two-channel input (processed intensity, measured mask) on the 0.04-degree grid:

    stem     Conv1d(2 -> W, kernel = stride = 6)            229 positions at 0.24 deg
             (every convolution but the 1x1s is followed by batch normalisation and ReLU)
    context  Conv1d(W -> W, kernel = stride = 4), then     57 positions at 0.96 deg,
             two Conv1d(W -> W, k=3, dilation 1 and 2)      receptive field ~12 deg (peak patterns)
             -> 1x1 projection
    fuse     ReLU(1x1(stem) + upsampled context)           229 positions at 0.24 deg  (last layer)
    head     global max over *measured* positions -> Linear(W -> classes)

The stem also reads a third, fixed channel: the grid position (0 at 5 deg, 1 at 60 deg), because
convolutions see only relative peak spacings while absolute angles fix the lattice. The class
activation map (Zhou et al. 2016) is the head's weights applied at every position of the last
layer: 0.24-degree bins, upsampled to the grid, zero where nothing was measured.

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

    def __init__(self, n_classes: int, n_members: int = 5, width: int = 16) -> None:
        super().__init__()
        self.n_classes, self.n_members, self.width = n_classes, n_members, width
        channels = n_members * width
        self.stem = nn.Conv1d(3, channels, STEM_STRIDE, stride=STEM_STRIDE)
        # the third input channel is the grid position (0 at 5 deg, 1 at 60 deg): convolutions
        # alone only see relative peak spacings, while a peak's absolute angle fixes the lattice
        self.register_buffer("position", torch.linspace(0.0, 1.0, GRID_SIZE)[None, None], persistent=False)
        self.context1 = nn.Conv1d(channels, channels, CONTEXT_POOL, stride=CONTEXT_POOL, groups=n_members)
        self.context2 = nn.Conv1d(channels, channels, 3, padding=1, groups=n_members)
        self.context3 = nn.Conv1d(channels, channels, 3, padding=2, dilation=2, groups=n_members)
        self.context_out = nn.Conv1d(channels, channels, 1, groups=n_members)
        # batch normalisation (per channel, hence per member): without it the network sits on a
        # loss plateau for a hundred steps before it finds the peaks; with it, it trains in tens
        self.stem_norm = nn.BatchNorm1d(channels)
        self.context1_norm = nn.BatchNorm1d(channels)
        self.context2_norm = nn.BatchNorm1d(channels)
        self.context3_norm = nn.BatchNorm1d(channels)
        self.fine = nn.Conv1d(channels, channels, 1, groups=n_members)
        self.head_weight = nn.Parameter(torch.empty(n_members, n_classes, width))
        self.head_bias = nn.Parameter(torch.zeros(n_members, n_classes))
        nn.init.kaiming_uniform_(self.head_weight.view(-1, width), a=5**0.5)

    def _last_layer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last feature map [B, members, width, 229] and the measured weight of each position [B, 229]."""
        x = x[:, :, : POSITIONS * STEM_STRIDE]
        position = self.position[:, :, : POSITIONS * STEM_STRIDE].expand(x.shape[0], 1, -1)
        stem = F.relu(self.stem_norm(self.stem(torch.cat([x, position * x[:, 1:2]], dim=1))))
        context = F.relu(self.context1_norm(self.context1(stem)))
        context = F.relu(self.context2_norm(self.context2(context)))
        context = F.relu(self.context3_norm(self.context3(context)))
        context = self.context_out(context)
        context = F.pad(context.repeat_interleave(CONTEXT_POOL, dim=2), (0, POSITIONS - context.shape[2] * CONTEXT_POOL), mode="replicate")
        last = F.relu(self.fine(stem) + context)
        measured = F.avg_pool1d(x[:, 1:2], STEM_STRIDE).squeeze(1)  # fraction of each bin measured
        return last.view(x.shape[0], self.n_members, self.width, POSITIONS), measured

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-member logits [B, n_members, n_classes] for preprocessed input [B, 2, 1376]."""
        last, measured = self._last_layer(x)
        return self._head(last, measured)

    def _head(self, last: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
        # global max over measured positions (features are >= 0 after ReLU, so zeroing the
        # unmeasured ones removes them); a mean over 229 mostly empty positions dilutes the few
        # peak positions and trains far slower
        pooled = (last * (measured > 0)[:, None, None]).amax(dim=3)
        return torch.einsum("bew,ekw->bek", pooled, self.head_weight) + self.head_bias

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """Class activation maps [B, n_members, n_classes, 1376], zero where unmeasured."""
        return self.logits_and_cam(x)[1]

    def logits_and_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs from one pass: logits [B, E, K] and CAMs [B, E, K, 1376].

        The CAM of class k at a position is the head's class-k weights applied to the last layer's
        features there (Zhou et al. 2016), so it shows where the evidence for k sits.
        """
        last, measured = self._last_layer(x)
        logits = self._head(last, measured)
        maps = torch.einsum("bewp,ekw->bekp", last, self.head_weight)
        maps = (maps * measured[:, None, None]).repeat_interleave(STEM_STRIDE, dim=3)
        maps = F.pad(maps.flatten(1, 2), (0, GRID_SIZE - maps.shape[3]), mode="replicate").view(*maps.shape[:3], GRID_SIZE)
        return logits, maps * x[:, 1][:, None, None]

    def logits_and_top_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, E, K] and the member-mean CAM [B, 1376] of each pattern's top class only.

        The single-scan path of the agent needs one map, so the other classes' maps are not
        computed or upsampled (a third of the batch-1 latency otherwise).
        """
        last, measured = self._last_layer(x)
        logits = self._head(last, measured)
        best = logits.mean(1).argmax(1)  # [B]
        weights = self.head_weight[:, best].permute(1, 0, 2)  # [B, E, W]
        maps = torch.einsum("bewp,bew->bp", last, weights) / self.n_members * measured
        maps = maps.repeat_interleave(STEM_STRIDE, dim=1)
        maps = F.pad(maps[:, None], (0, GRID_SIZE - maps.shape[1]), mode="replicate")[:, 0]
        return logits, maps * x[:, 1]
