"""models.preprocess: masked Savitzky-Golay, background and normalisation."""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import savgol_filter

from models.grid import GRID, GRID_SIZE, to_grid
from models.preprocess import _masked_savgol, preprocess, preprocess_torch


def _pattern(rng: np.random.Generator) -> np.ndarray:
    peaks = sum(1000 * np.exp(-0.5 * ((GRID - c) / 0.06) ** 2) for c in (14.2, 20.1, 28.5, 40.7))
    return (200 + 30 * np.exp(-GRID / 10) + peaks + rng.normal(0, 5, GRID_SIZE)).astype(np.float32)


def test_shapes_channels_and_range():
    values = _pattern(np.random.default_rng(0))
    mask = np.ones(GRID_SIZE, bool)
    out = preprocess(values, mask)
    assert out.shape == (2, GRID_SIZE) and out.dtype == np.float32
    assert out[0].max() == np.float32(1.0) and out[0].min() >= 0
    assert (out[1] == 1).all()
    batch = preprocess(np.stack([values, values]), np.stack([mask, mask]))
    assert batch.shape == (2, 2, GRID_SIZE)
    assert np.allclose(batch[0], out, atol=1e-6)


def test_smoothing_equals_savitzky_golay_on_a_full_window():
    y = np.random.default_rng(1).random((3, GRID_SIZE)).astype(np.float32)
    ours = _masked_savgol(torch.from_numpy(y), torch.ones(3, GRID_SIZE)).numpy()
    reference = savgol_filter(y, 7, 2, axis=1)
    assert np.allclose(ours[:, 3:-3], reference[:, 3:-3], atol=1e-5)


def test_background_is_removed():
    values = _pattern(np.random.default_rng(2))
    out = preprocess(values, np.ones(GRID_SIZE, bool))[0]
    far_from_peaks = np.min(np.abs(GRID[:, None] - np.array([14.2, 20.1, 28.5, 40.7])[None]), axis=1) > 1.0
    assert np.median(out[far_from_peaks]) < 0.02


def test_unmeasured_points_never_change_the_output():
    rng = np.random.default_rng(3)
    values = _pattern(rng)
    mask = GRID <= 30.0  # a partial scan: the first part of the range
    mask[(GRID > 18) & (GRID < 19)] = False  # and a gap
    first = preprocess(values, mask)
    garbage = values.copy()
    garbage[~mask] = rng.uniform(0, 1e6, (~mask).sum())
    second = preprocess(garbage, mask)
    assert np.array_equal(first, second)
    assert (first[0][~mask] == 0).all() and (first[1] == mask).all()


def test_partial_scan_normalises_over_its_measured_part():
    values = _pattern(np.random.default_rng(4))
    two_theta = GRID[GRID <= 25.0]
    v, m = to_grid(two_theta, values[GRID <= 25.0])
    out = preprocess(v, m)
    assert out[0][m].max() == np.float32(1.0)


def test_torch_batch_matches_numpy():
    values = np.stack([_pattern(np.random.default_rng(s)) for s in range(4)])
    masks = np.ones_like(values, dtype=bool)
    masks[1, 700:] = False
    a = preprocess(values, masks)
    b = preprocess_torch(torch.from_numpy(values * masks), torch.from_numpy(masks)).numpy()
    assert np.allclose(a, b, atol=1e-6)
