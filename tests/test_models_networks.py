"""Networks: the faithful a-CNN's layer shapes, XRDNet's CAM resolution and partial-input CAMs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.acnn import ACNN, ACNNEnsemble
from models.architectures import build_network, split_members, stack_members
from models.grid import GRID, GRID_SIZE
from models.xrdnet import CAM_RESOLUTION_DEG, POSITIONS, FusedXRDNet, XRDNet


def _input(n: int = 3, measured_until: float | None = None) -> torch.Tensor:
    x = torch.rand(n, 2, GRID_SIZE)
    x[:, 1] = 1.0
    if measured_until is not None:
        unmeasured = torch.from_numpy(GRID > measured_until)
        x[:, 0, unmeasured] = 0.0
        x[:, 1, unmeasured] = 0.0
    return x


def test_acnn_has_the_papers_layer_shapes():
    net = ACNN(n_classes=7)
    convs = [net.conv1, net.conv2, net.conv3]
    assert [c.out_channels for c in convs] == [32, 32, 32]
    assert [c.kernel_size[0] for c in convs] == [8, 5, 3]
    assert [c.stride[0] for c in convs] == [8, 5, 3]
    assert tuple(net.conv1.weight.shape) == (32, 1, 8)
    assert tuple(net.conv2.weight.shape) == (32, 32, 5)
    assert tuple(net.conv3.weight.shape) == (32, 32, 3)
    assert tuple(net.dense.weight.shape) == (7, 32)
    assert tuple(net.features(_input()).shape) == (3, 32, 11)  # 1376 -> 172 -> 34 -> 11
    assert tuple(net(_input()).shape) == (3, 7)


def test_ensembles_give_per_member_logits_and_cams():
    for net in (XRDNet(7, n_members=3, width=8), ACNNEnsemble(7, n_members=3)):
        logits, cams = net.logits_and_cam(_input())
        assert tuple(logits.shape) == (3, 3, 7)
        assert tuple(cams.shape) == (3, 3, 7, GRID_SIZE)
    x = _input(2)
    for net in (XRDNet(7, n_members=3, width=8), ACNNEnsemble(7, n_members=3)):
        assert torch.allclose(net(x), net.logits_and_cam(x)[0])


def test_xrdnet_cam_resolution_is_finer_than_a_quarter_degree():
    assert CAM_RESOLUTION_DEG <= 0.25
    assert POSITIONS * CAM_RESOLUTION_DEG >= GRID[-1] - GRID[0] - CAM_RESOLUTION_DEG
    torch.manual_seed(0)
    net = XRDNet(3, n_members=1, width=8)
    cam = net.cam(_input(1))[0, 0, 0].detach().numpy()
    bins = cam[: POSITIONS * 6].reshape(POSITIONS, 6)
    assert np.all(bins == bins[:, :1])  # constant within each 0.24-degree bin
    assert np.unique(bins[:, 0]).size > 100  # ~229 distinct bins, not the a-CNN's 11


def test_cam_is_zero_outside_the_measured_range():
    x = _input(2, measured_until=25.0)
    for net in (XRDNet(7, n_members=2, width=8), ACNNEnsemble(7, n_members=2)):
        cams = net.cam(x).detach()
        assert (cams[..., torch.from_numpy(GRID > 25.0)] == 0).all()


def test_xrdnet_ignores_what_lies_in_unmeasured_positions():
    net = XRDNet(7, n_members=2, width=8).eval()
    x = _input(2, measured_until=30.0)
    y = x.clone()
    unmeasured = torch.from_numpy(GRID > 30.25)
    y[:, 0, unmeasured] = 0.0  # channel 0 is 0 there by contract: only the mask says "unmeasured"
    assert torch.allclose(net(x), net(y))


def test_members_split_and_stack_round_trip():
    for arch in ("xrdnet", "acnn"):
        net = build_network(arch, 7, 3, 8)
        members = split_members(arch, net.state_dict(), 3)
        single = build_network(arch, 7, 1, 8)
        single.load_state_dict(members[1])
        x = _input(2)
        assert torch.allclose(single(x)[:, 0], net(x)[:, 1], atol=1e-5)
        rebuilt = build_network(arch, 7, 3, 8)
        rebuilt.load_state_dict(stack_members(arch, members))
        assert torch.allclose(rebuilt(x), net(x))


def test_class_average_cam_ignores_unmeasured_points(tmp_path):
    from models.cam import class_average_cams, plot_class_average_cams

    cams = np.zeros((3, GRID_SIZE))
    cams[0], cams[1], cams[2] = 1.0, 0.5, 0.25
    masks = np.ones((3, GRID_SIZE), bool)
    masks[1, 700:] = False  # a partial scan: its zeros beyond 700 must not pull the average down
    average = class_average_cams(cams * masks, np.array([0, 0, 2]), 3, masks)
    assert np.allclose(average[0, :700], 0.75) and np.allclose(average[0, 700:], 1.0)
    assert np.isnan(average[1]).all() and np.allclose(average[2], 0.25)
    assert plot_class_average_cams(average, ("a", "b", "c"), tmp_path / "cams.png").is_file()


def _trained_looking_xrdnet(n_members: int = 3, width: int = 8, seed: int = 0) -> XRDNet:
    """An XRDNet in eval mode whose batch norms hold non-trivial statistics and affine weights."""
    torch.manual_seed(seed)
    net = XRDNet(7, n_members=n_members, width=width)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return net.eval()


def _partial_inputs(n: int, seed: int) -> torch.Tensor:
    """Peaky inputs with truncated ranges, a masked gap and one empty-tail row."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 2, GRID_SIZE)
    x[:, 0] = torch.rand(n, GRID_SIZE, generator=gen) ** 8
    ends = torch.randint(40, GRID_SIZE + 1, (n,), generator=gen)
    x[:, 1] = (torch.arange(GRID_SIZE)[None] < ends[:, None]).float()
    x[0, 1, 300:420] = 0.0  # a gap
    x[:, 0] *= x[:, 1]
    return x


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_fused_path_matches_the_module_forward_and_cam(batch):
    net = _trained_looking_xrdnet()
    fused = FusedXRDNet.from_network(net)
    x = _partial_inputs(batch, seed=batch)
    with torch.inference_mode():
        logits = net(x)
        ref_logits, ref_maps = net.logits_and_cam(x)
        fast_logits, top_map = fused.logits_and_class_cam(x)
        chosen = torch.arange(batch) % 7
        _, given_map = fused.logits_and_class_cam(x, chosen)
        torch.testing.assert_close(fused(x), logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(fast_logits, ref_logits, atol=1e-4, rtol=1e-4)
        mean_maps = ref_maps.mean(1)
        best = ref_logits.mean(1).argmax(1)
        rows = torch.arange(batch)
        torch.testing.assert_close(top_map, mean_maps[rows, best], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(given_map, mean_maps[rows, chosen], atol=1e-4, rtol=1e-4)
        assert torch.all(top_map[x[:, 1] == 0] == 0)


@pytest.mark.parametrize("measured", ["partial", "whole"])
def test_every_class_map_in_one_pass_matches_the_one_class_map(measured):
    # the agent's second class's CAM comes from this one pass (no second forward pass): row k must be
    # exactly what the one-class path gives for class k, partial scans and whole patterns alike
    net = _trained_looking_xrdnet()
    fused = FusedXRDNet.from_network(net)
    x = _partial_inputs(1, seed=21)
    if measured == "whole":
        x[:, 1] = 1.0
    with torch.inference_mode():
        logits, pooled, maps = fused.logits_pooled_and_cams(x)
        ref_logits, ref_pooled, _ = fused.logits_pooled_and_class_cam(x)
        torch.testing.assert_close(logits, ref_logits)
        torch.testing.assert_close(pooled, ref_pooled)
        assert maps.shape == (7, GRID_SIZE)
        for k in range(7):
            torch.testing.assert_close(maps[k], fused.logits_and_class_cam(x, torch.tensor([k]))[1][0], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(maps[0], maps[1])  # the rows really are different classes' maps
        with pytest.raises(ValueError, match="one pattern"):
            fused.logits_pooled_and_cams(_partial_inputs(2, seed=3))


def test_fused_path_is_not_a_copy_of_batch_statistics():
    # a network in training mode normalises with batch statistics: the fused (eval) form must differ
    # from it, i.e. the equality above really compares folded running statistics
    net = _trained_looking_xrdnet()
    fused = FusedXRDNet.from_network(net)
    x = _partial_inputs(4, seed=9)
    with torch.no_grad():
        assert not torch.allclose(fused(x), net.train()(x), atol=1e-3)


def test_fused_path_matches_on_fully_measured_patterns():
    # whole patterns take the pooling branch that skips the mask
    net = _trained_looking_xrdnet(n_members=2, width=8, seed=1)
    x = _partial_inputs(3, seed=11)
    x[:, 1] = 1.0
    with torch.inference_mode():
        ref_logits, ref_maps = net.logits_and_cam(x)
        logits, top_map = FusedXRDNet.from_network(net).logits_and_class_cam(x)
        torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(top_map, ref_maps.mean(1)[torch.arange(3), ref_logits.mean(1).argmax(1)], atol=1e-4, rtol=1e-4)
