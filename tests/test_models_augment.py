"""training.augment: shapes, seeding, and the semantics of each augmentation."""

from __future__ import annotations

import numpy as np
import torch

from training.augment import AugmentConfig, augment_batch, coarsen, eliminate_peaks, partial_mask, shift_and_strain
from models.grid import GRID, GRID_SIZE, to_grid


def _batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.tensor([14.2, 20.1, 28.5, 40.7])
    grid = torch.from_numpy(GRID.astype(np.float32))
    peaks = (1000 * torch.exp(-0.5 * ((grid[None] - centres[:, None]) / 0.06) ** 2)).sum(0)
    values = (100 + peaks).repeat(n, 1)
    return values, torch.ones(n, GRID_SIZE, dtype=torch.bool)


def test_shapes_dtypes_and_no_values_where_unmeasured():
    values, masks = _batch()
    out_v, out_m = augment_batch(values, masks, AugmentConfig(), torch.Generator().manual_seed(0))
    assert out_v.shape == values.shape and out_m.shape == masks.shape
    assert out_v.dtype == torch.float32 and out_m.dtype == torch.bool
    assert (out_v[~out_m] == 0).all() and (out_v >= 0).all()
    assert torch.isfinite(out_v).all()


def test_seeded_reproducible_and_seed_dependent():
    values, masks = _batch()
    a = augment_batch(values, masks, AugmentConfig(), torch.Generator().manual_seed(5))
    b = augment_batch(values, masks, AugmentConfig(), torch.Generator().manual_seed(5))
    c = augment_batch(values, masks, AugmentConfig(), torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_shift_moves_peaks_within_the_bound():
    values, masks = _batch(32)
    config = AugmentConfig(max_shift_deg=0.4, max_strain=0.0)
    shifted, _ = shift_and_strain(values, masks, config, torch.Generator().manual_seed(0))
    window = torch.from_numpy((GRID > 13) & (GRID < 15.5))
    before = GRID[window.numpy()][values[:, window].argmax(1).numpy()]
    after = GRID[window.numpy()][shifted[:, window].argmax(1).numpy()]
    moved = np.abs(after - before)
    assert moved.max() <= 0.4 + 0.04 and moved.max() > 0.15


def test_truncation_keeps_the_first_part_of_the_range():
    _, masks = _batch(64)
    config = AugmentConfig(p_truncate=1.0, p_window=0.0, p_gap=0.0)
    out = partial_mask(masks, config, torch.Generator().manual_seed(1))
    for row in out:
        idx = np.flatnonzero(row.numpy())
        assert idx[0] == 0  # starts at the scan start
        assert np.all(np.diff(idx) == 1)  # contiguous
        assert 0.15 * GRID_SIZE - 2 <= idx.size <= GRID_SIZE
    assert out.sum(1).float().std() > 0  # truncated at different points


def test_coarsening_matches_to_grid_of_the_kept_points():
    rng = np.random.default_rng(0)
    values = torch.from_numpy(rng.random((1, GRID_SIZE)).astype(np.float32))
    mask = torch.zeros(1, GRID_SIZE, dtype=torch.bool)
    mask[0, 100:900] = True
    for factor in (2, 4, 8):
        new_v, new_m = coarsen(values, mask, torch.tensor([factor]), torch.Generator().manual_seed(factor))
        first = int(np.flatnonzero(new_m[0].numpy())[0])
        kept = np.arange(first, 900, factor)
        ref_v, ref_m = to_grid(GRID[kept], values[0, kept].numpy())
        assert np.array_equal(ref_m, new_m[0].numpy())
        assert np.allclose(ref_v, (new_v * new_m)[0].numpy(), atol=1e-5)


def test_peak_elimination_replaces_one_window_by_the_line_below_the_pattern():
    values = 100 + 1000 * torch.rand(64, GRID_SIZE, generator=torch.Generator().manual_seed(2)) ** 8  # peaks everywhere
    config = AugmentConfig(p_eliminate=1.0)
    out = eliminate_peaks(values, config, torch.Generator().manual_seed(3))
    changed = (out != values).numpy()
    for row, before, after in zip(changed, values.numpy(), out.numpy()):
        idx = np.flatnonzero(row)
        if idx.size:
            assert idx[-1] - idx[0] <= 1.0 / 0.04  # one window of at most 1 degree
            assert np.all(after[idx] < before[idx])  # the line only cuts peaks down
            assert after[idx].max() <= before.max()
    assert changed.any(1).mean() > 0.8  # every row has a window, and nearly every window cuts a peak


def test_partial_mask_matches_the_dense_definition():
    # per-row interval bounds must give the same mask as the point-by-point definition
    masks = torch.rand(200, 1, generator=torch.Generator().manual_seed(0)) * GRID_SIZE > torch.arange(GRID_SIZE)
    masks[::9, :150] = False
    config = AugmentConfig(p_truncate=0.5, p_window=0.5, p_gap=0.5)
    out = partial_mask(masks, config, torch.Generator().manual_seed(4))
    draws = torch.Generator().manual_seed(4)
    n, idx = masks.shape[0], torch.arange(GRID_SIZE)[None]
    lo = torch.where(masks, idx, GRID_SIZE).amin(1)
    hi = torch.where(masks, idx, -1).amax(1)
    length = (hi - lo).clamp(min=0).float()
    truncate = torch.rand(n, generator=draws) < config.p_truncate
    fraction = 0.15 + 0.85 * torch.rand(n, generator=draws)
    keep = idx <= torch.where(truncate, lo + (length * fraction).long(), hi)[:, None]
    window = torch.rand(n, generator=draws) < config.p_window
    w_len = (250 + torch.rand(n, generator=draws) * (length - 250).clamp(min=0)).long()
    w_start = lo + (torch.rand(n, generator=draws) * (length - w_len.float()).clamp(min=0)).long()
    keep &= ~window[:, None] | ((idx >= w_start[:, None]) & (idx <= (w_start + w_len)[:, None]))
    gap = torch.rand(n, generator=draws) < config.p_gap
    g_len = (0.5 + 4.5 * torch.rand(n, generator=draws)) / 0.04
    g_start = lo + (torch.rand(n, generator=draws) * length).long()
    keep &= ~(gap[:, None] & (idx >= g_start[:, None]) & (idx < (g_start + g_len.long())[:, None]))
    assert torch.equal(out, masks & keep)
