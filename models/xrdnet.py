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

    @staticmethod
    def _pool(last: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
        # global max over measured positions (features are >= 0 after ReLU, so zeroing the
        # unmeasured ones removes them); a mean over 229 mostly empty positions dilutes the few
        # peak positions and trains far slower
        return (last * (measured > 0)[:, None, None]).amax(dim=3)  # [B, E, W]

    def _head(self, last: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bew,ekw->bek", self._pool(last, measured), self.head_weight) + self.head_bias

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input, [B, n_members * width]: the embedding the memory of measured patterns uses."""
        return self._pool(*self._last_layer(x)).flatten(1)

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


class FusedXRDNet:
    """Inference-only form of a trained :class:`XRDNet` with the same outputs, several times faster.

    Built once from a network in eval mode (:meth:`from_network`); it holds plain tensors, no
    autograd and no module hooks:

    - every batch normalisation is folded into the convolution before it (eval-mode statistics:
      ``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``);
    - activations live member-major and channels-last, ``[members, B, positions, width]``, so each
      member's grouped convolution is one slice of a batched matrix multiply (``torch.bmm``) and no
      layer needs a transpose;
    - the kernel = stride convolutions (stem 6, context1 4) are a reshape of the input into
      non-overlapping patches and one matrix multiply;
    - the k = 3 convolutions multiply every position once by all three taps and add the shifted
      products (no im2col copy);
    - the head pools and maps the member-mean CAM of the requested class only.

    Outputs equal the module's forward / CAM to float32 rounding (tested in
    tests/test_models_networks.py).
    """

    def __init__(self, tensors: dict[str, torch.Tensor], n_members: int, width: int, n_classes: int) -> None:
        self.t = tensors
        self.n_members, self.width, self.n_classes = n_members, width, n_classes

    @classmethod
    @torch.no_grad()
    def from_network(cls, net: XRDNet) -> FusedXRDNet:
        """Fold and re-lay the weights of ``net`` (its batch-norm running statistics are used)."""
        e, w = net.n_members, net.width

        def fold(conv: nn.Conv1d, norm: nn.BatchNorm1d | None) -> tuple[torch.Tensor, torch.Tensor]:
            weight, bias = conv.weight.detach().float(), conv.bias.detach().float()
            if norm is not None:
                scale = norm.weight.detach().float() / torch.sqrt(norm.running_var.float() + norm.eps)
                weight = weight * scale[:, None, None]
                bias = (bias - norm.running_mean.float()) * scale + norm.bias.detach().float()
            return weight, bias

        def per_member(weight: torch.Tensor) -> torch.Tensor:
            # grouped conv weight [E*W_out, W_in, k] -> [E, k*W_in, W_out], rows ordered (tap, channel)
            k = weight.shape[2]
            return weight.view(e, w, -1, k).permute(0, 3, 2, 1).reshape(e, -1, w).contiguous()

        def taps(weight: torch.Tensor) -> torch.Tensor:
            # k=3 conv weight [E*W_out, W_in, 3] -> [E, W_in, 3*W_out], columns ordered (tap, channel)
            return weight.view(e, w, w, 3).permute(0, 2, 3, 1).reshape(e, w, 3 * w).contiguous()

        stem_w, stem_b = fold(net.stem, net.stem_norm)  # [E*W, 3, 6]
        c1_w, c1_b = fold(net.context1, net.context1_norm)
        c2_w, c2_b = fold(net.context2, net.context2_norm)
        c3_w, c3_b = fold(net.context3, net.context3_norm)
        out_w, out_b = fold(net.context_out, None)
        fine_w, fine_b = fold(net.fine, None)
        tensors = {
            # stem rows ordered (input channel, tap), matching patches concatenated channel-major
            "stem_w": stem_w.view(e, w, 3 * STEM_STRIDE).transpose(1, 2).contiguous(),
            "stem_b": stem_b.view(e, 1, w),
            "c1_w": per_member(c1_w),
            "c1_b": c1_b.view(e, 1, w),
            "c2_w": taps(c2_w),
            "c2_b": c2_b.view(e, 1, 1, w),
            "c3_w": taps(c3_w),
            "c3_b": c3_b.view(e, 1, 1, w),
            "out_w": per_member(out_w),
            "out_b": out_b.view(e, 1, w),
            "fine_w": per_member(fine_w),
            # the context projection's bias is added at every position like the fine bias: fold it in
            "fine_b": (fine_b + out_b).view(e, 1, w),
            "head_wt": net.head_weight.detach().float().transpose(1, 2).contiguous(),  # [E, W, K]
            "head_b": net.head_bias.detach().float()[:, None],  # [E, 1, K]
            "position": net.position[0, 0, : POSITIONS * STEM_STRIDE].float().view(POSITIONS, STEM_STRIDE).clone(),
        }
        return cls(tensors, e, w, net.n_classes)

    def to(self, device: torch.device | str) -> FusedXRDNet:
        """A copy on ``device``."""
        return FusedXRDNet({k: v.to(device) for k, v in self.t.items()}, self.n_members, self.width, self.n_classes)

    @staticmethod
    def _taps(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dilation: int) -> torch.Tensor:
        """k=3 'same' convolution along dim 1 of [E, Q, B, W] (zero padding = dilation), bias, ReLU."""
        e, q, b, w = x.shape
        z = torch.bmm(x.view(e, q * b, w), weight).view(e, q, b, 3, w)
        out = z[:, :, :, 1] + bias
        out[:, dilation:] += z[:, :-dilation, :, 0]
        out[:, :-dilation] += z[:, dilation:, :, 2]
        return out.relu_()

    def last_layer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Last feature map and the measured fraction of each of the 229 positions.

        Returns
        -------
        main : torch.Tensor
            [E, 57, B, 4, W]: positions 0-227 as (context position q, pattern, offset j), position
            4 q + j. This order makes the stride-4 context input a view of the stem output and
            puts the pooled position dimension outermost (fast reductions).
        tail : torch.Tensor
            [E, B, W]: position 228, the last one, which has no context position of its own.
        measured : torch.Tensor
            [B, 229] fraction of each position's 6 grid points measured.
        last : torch.Tensor
            [E, 57 * B * 4 + B, W], the storage of ``main`` then ``tail``.
        """
        t, e, w = self.t, self.n_members, self.width
        b = x.shape[0]
        q, k, s = POSITIONS // CONTEXT_POOL, CONTEXT_POOL, STEM_STRIDE  # 57, 4, 6
        n_main = q * k * s  # 1368 grid points feed positions 0-227
        if b == 1:  # one pattern: rows (q, 0, j) are simply positions 0-228 in order
            signal = x[0, 0, : POSITIONS * s].view(POSITIONS, s)
            mask = x[0, 1, : POSITIONS * s].view(POSITIONS, s)
            patches = torch.cat([signal, mask, mask * t["position"]], dim=1)
        else:
            patches = x.new_empty(q * b * k + b, 3 * s)
            main_patches = patches[: q * b * k].view(q, b, k, 3 * s)
            mask = x[:, 1, :n_main].view(b, q, k, s).transpose(0, 1)
            main_patches[..., :s].copy_(x[:, 0, :n_main].view(b, q, k, s).transpose(0, 1))
            main_patches[..., s : 2 * s].copy_(mask)
            torch.mul(mask, t["position"][: q * k].view(q, 1, k, s), out=main_patches[..., 2 * s :])
            tail_patches = patches[q * b * k :]
            tail_mask = x[:, 1, n_main : n_main + s]
            tail_patches[:, :s].copy_(x[:, 0, n_main : n_main + s])
            tail_patches[:, s : 2 * s].copy_(tail_mask)
            torch.mul(tail_mask, t["position"][q * k], out=tail_patches[:, 2 * s :])
        stem = torch.baddbmm(t["stem_b"], patches[None].expand(e, -1, -1), t["stem_w"]).relu_()  # [E, rows, W]
        # context1 (kernel = stride = 4): rows (q, b, j) regroup to (q, b) x (j, channel) for free
        context = torch.baddbmm(t["c1_b"], stem[:, : q * b * k].view(e, q * b, k * w), t["c1_w"]).relu_()
        context = self._taps(context.view(e, q, b, w), t["c2_w"], t["c2_b"], 1)
        context = self._taps(context, t["c3_w"], t["c3_b"], 2)
        context = torch.bmm(context.view(e, q * b, w), t["out_w"]).view(e, q, b, 1, w)
        last = torch.baddbmm(t["fine_b"], stem, t["fine_w"])
        main = last[:, : q * b * k].view(e, q, b, k, w)
        tail = last[:, q * b * k :]
        # nearest upsampling of the context (x4); the last position repeats the last context value
        main.add_(context).relu_()
        tail.add_(context[:, -1, :, 0]).relu_()
        measured = x[:, 1, : POSITIONS * s].reshape(b, POSITIONS, s).mean(2)
        return main, tail, measured, last

    @staticmethod
    def _pooled(main: torch.Tensor, tail: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
        """Global max over measured positions, [E, B, W] (features >= 0, unmeasured zeroed)."""
        e, q, b, k, w = main.shape
        if bool(measured.min() > 0):  # every position measured (whole patterns): nothing to zero
            return torch.maximum(main.amax(1).amax(2), tail)
        measured_main = (measured[:, : q * k] > 0).to(main.dtype).view(b, q, k).transpose(0, 1)[None, :, :, :, None]
        pooled = (main * measured_main).amax(1).amax(2)
        return torch.maximum(pooled, tail * (measured[:, -1] > 0).to(main.dtype)[None, :, None])

    def _logits(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.t["head_b"], pooled, self.t["head_wt"]).transpose(0, 1)  # [B, E, K]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Per-member logits [B, n_members, n_classes] for preprocessed input [B, 2, 1376]."""
        return self._logits(self._pooled(*self.last_layer(x)[:3]))

    def logits_and_pooled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, E, K] and the head's input [B, E * W] (equal to ``XRDNet.pooled_features``)."""
        pooled = self._pooled(*self.last_layer(x)[:3])
        return self._logits(pooled), pooled.transpose(0, 1).flatten(1)

    def logits_and_class_cam(self, x: torch.Tensor, class_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, E, K] and the member-mean CAM [B, 1376] of one class per pattern."""
        logits, _, maps = self.logits_pooled_and_class_cam(x, class_index)
        return logits, maps

    def logits_pooled_and_class_cam(
        self, x: torch.Tensor, class_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits [B, E, K], the head's input [B, E * W] and the member-mean CAM [B, 1376] of one class.

        Parameters
        ----------
        x : torch.Tensor
            Preprocessed [B, 2, 1376].
        class_index : torch.Tensor, optional
            int64 [B]; the class of the highest member-mean logit when None.

        The map equals ``XRDNet.logits_and_cam(x)[1].mean(1)[range(B), class_index]`` (unclipped).
        """
        main, tail, measured, last = self.last_layer(x)
        pooled = self._pooled(main, tail, measured)
        logits = self._logits(pooled)
        if class_index is None:
            class_index = logits.mean(1).argmax(1)
        weights = self.t["head_wt"][:, :, class_index]  # [E, W, B]
        # sum over members and channels of the features at each position times the class weights
        b = x.shape[0]
        if b == 1:  # rows of `last` are the 229 positions in order
            maps = torch.bmm(last, weights).sum(0).view(1, POSITIONS)
        else:
            maps = torch.cat(
                [torch.einsum("eqbjw,ewb->bqj", main, weights).reshape(b, -1), torch.einsum("ebw,ewb->b", tail, weights)[:, None]],
                dim=1,
            )
        maps = maps * (measured / self.n_members)
        return logits, pooled.transpose(0, 1).flatten(1), self._upsample(maps) * x[:, 1]

    def logits_pooled_and_cams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits [1, E, K], the head's input [1, E * W] and the member-mean CAM of every class [K, 1376],
        for one preprocessed pattern [1, 2, 1376].

        All K maps come from the same last feature map as the logits (one product with the head's
        weights), so a second class's map costs no second forward pass. Row k equals
        ``logits_pooled_and_class_cam(x, k)``'s map (unclipped).

        Raises
        ------
        ValueError
            If `x` holds more than one pattern.
        """
        if x.shape[0] != 1:
            raise ValueError(f"logits_pooled_and_cams takes one pattern, got a batch of {x.shape[0]}")
        main, tail, measured, last = self.last_layer(x)
        pooled = self._pooled(main, tail, measured)
        # rows of `last` are the 229 positions in order (one pattern): [E, 229, W] x [E, W, K], summed over members
        maps = torch.bmm(last, self.t["head_wt"]).sum(0).T * (measured / self.n_members)  # [K, 229]
        return self._logits(pooled), pooled.transpose(0, 1).flatten(1), self._upsample(maps) * x[:, 1]

    @staticmethod
    def _upsample(maps: torch.Tensor) -> torch.Tensor:
        """[B, 229] -> [B, 1376]: each position over its 6 grid points, the last 2 replicating."""
        b = maps.shape[0]
        out = maps.new_empty(b, GRID_SIZE)
        out[:, : POSITIONS * STEM_STRIDE].view(b, POSITIONS, STEM_STRIDE).copy_(maps[:, :, None].expand(b, POSITIONS, STEM_STRIDE))
        out[:, POSITIONS * STEM_STRIDE :] = maps[:, -1:]
        return out
