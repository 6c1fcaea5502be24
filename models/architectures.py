"""Name -> network constructor, and splitting / stacking ensemble members.

Every network here maps preprocessed input [B, 2, 1376] to per-member logits
[B, n_members, n_classes] and has ``cam(x) -> [B, n_members, n_classes, 1376]``.
A member's weights are the state dict of the same network built with ``n_members=1``; members
trained separately (e.g. as parallel Prefect tasks) are stacked back into one network.
"""

from __future__ import annotations

import torch
from torch import nn

from models.acnn import ACNNEnsemble
from models.xrdnet import XRDNet

ARCHITECTURES: tuple[str, ...] = ("xrdnet", "acnn")


def build_network(architecture: str, n_classes: int, n_members: int, width: int) -> nn.Module:
    """A fresh network.

    Parameters
    ----------
    architecture : str
        "xrdnet" (ours) or "acnn" (the faithful a-CNN; ``width`` is ignored, it has 32 filters).
    n_classes, n_members, width : int
        Output classes, ensemble members, channels per member.
    """
    if architecture == "xrdnet":
        return XRDNet(n_classes, n_members=n_members, width=width)
    if architecture == "acnn":
        return ACNNEnsemble(n_classes, n_members=n_members, in_channels=1)
    raise ValueError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")


def split_members(architecture: str, state: dict[str, torch.Tensor], n_members: int) -> list[dict[str, torch.Tensor]]:
    """Per-member state dicts (each loadable into the ``n_members=1`` network)."""
    if architecture == "xrdnet":
        # every parameter and statistic of XRDNet is stacked member-major along dim 0, except the
        # scalar batch counters of batch normalisation, which all members share
        return [
            {k: (v.clone() if v.ndim == 0 else v.chunk(n_members, dim=0)[i].clone()) for k, v in state.items()}
            for i in range(n_members)
        ]
    if architecture == "acnn":
        return [
            {"members.0." + k.split(".", 2)[2]: v.clone() for k, v in state.items() if k.startswith(f"members.{i}.")}
            for i in range(n_members)
        ]
    raise ValueError(f"unknown architecture {architecture!r}")


def stack_members(architecture: str, members: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`split_members`: one state dict for the ``len(members)``-member network."""
    if not members:
        raise ValueError("no members to stack")
    if architecture == "xrdnet":
        return {k: (members[0][k] if members[0][k].ndim == 0 else torch.cat([m[k] for m in members], dim=0)) for k in members[0]}
    if architecture == "acnn":
        return {
            f"members.{i}." + k.split(".", 2)[2]: v for i, m in enumerate(members) for k, v in m.items()
        }
    raise ValueError(f"unknown architecture {architecture!r}")
