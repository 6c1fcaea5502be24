"""models.grid: the grid, and to_grid on full, partial, coarse, mixed-step and gapped scans."""

from __future__ import annotations

import numpy as np
import pytest

from models.grid import GRID, GRID_SIZE, GRID_STEP, coverage, to_grid


def test_grid_is_5_to_60_at_004():
    assert GRID_SIZE == 1376 and GRID.shape == (1376,)
    assert GRID[0] == 5.0 and GRID[-1] == 60.0
    assert np.allclose(np.diff(GRID), GRID_STEP)


def test_full_scan_on_grid_round_trips():
    values, mask = to_grid(GRID.copy(), np.arange(GRID_SIZE, dtype=float))
    assert values.dtype == np.float32 and mask.dtype == bool
    assert mask.all()
    assert np.allclose(values, np.arange(GRID_SIZE))


def test_partial_scan_masks_only_the_measured_span():
    two_theta = np.arange(5.0, 30.0001, 0.04)
    values, mask = to_grid(two_theta, np.ones_like(two_theta))
    measured = GRID[mask]
    assert measured[0] == pytest.approx(5.0) and measured[-1] == pytest.approx(30.0)
    assert not mask[GRID > 30.001].any()
    assert (values[~mask] == 0).all()
    assert coverage(mask) == pytest.approx(mask.sum() / GRID_SIZE)


def test_coarse_scan_is_interpolated_and_masked_inside_its_span():
    two_theta = np.arange(10.0, 40.0001, 0.32)
    intensity = 2.0 * two_theta  # linear: interpolation must be exact
    values, mask = to_grid(two_theta, intensity)
    assert mask[(GRID >= 10.0) & (GRID <= two_theta[-1])].all()
    assert not mask[GRID < 9.999].any() and not mask[GRID > two_theta[-1] + 1e-6].any()
    assert np.allclose(values[mask], 2.0 * GRID[mask], atol=1e-3)


def test_mixed_step_scan_has_no_false_gap():
    coarse = np.arange(5.0, 20.0, 0.16)
    fine = np.arange(20.0, 30.0001, 0.04)
    two_theta = np.concatenate([coarse, fine])
    _, mask = to_grid(two_theta, np.ones_like(two_theta))
    assert mask[(GRID >= 5.0) & (GRID <= 30.0)].all()


def test_gap_wider_than_twice_the_local_step_is_unmeasured():
    two_theta = np.concatenate([np.arange(5.0, 20.0001, 0.04), np.arange(25.0, 30.0001, 0.04)])
    _, mask = to_grid(two_theta, np.ones_like(two_theta))
    assert not mask[(GRID > 20.01) & (GRID < 24.99)].any()
    assert mask[(GRID >= 5.0) & (GRID <= 20.0)].all() and mask[(GRID >= 25.0) & (GRID <= 30.0)].all()


def test_unsorted_and_repeated_points_are_merged():
    two_theta = np.array([12.0, 10.0, 11.0, 11.0])
    intensity = np.array([3.0, 1.0, 2.0, 4.0])  # 11.0 measured twice: averaged to 3
    values, mask = to_grid(two_theta, intensity)
    assert values[np.argmin(np.abs(GRID - 11.0))] == pytest.approx(3.0)
    assert mask.sum() == 51


@pytest.mark.parametrize(
    "two_theta, intensity",
    [(np.array([]), np.array([])), (np.array([1.0, 2.0]), np.array([1.0])), (np.array([10.0, np.nan]), np.array([1.0, 2.0])),
     (np.ones((2, 2)), np.ones((2, 2)))],
)
def test_bad_input_raises_value_error(two_theta, intensity):
    with pytest.raises(ValueError):
        to_grid(two_theta, intensity)


def test_scan_outside_the_grid_has_empty_mask():
    values, mask = to_grid(np.array([70.0, 71.0]), np.array([1.0, 2.0]))
    assert not mask.any() and not values.any()


def test_local_steps_are_the_median_of_five_neighbouring_intervals() -> None:
    from models.grid import _local_steps

    rng = np.random.default_rng(0)
    for n in (3, 4, 5, 6, 50, 400):
        for _ in range(50):
            intervals = rng.choice([0.04, 0.08, 0.16, 0.32], size=n) * (1 + 1e-6 * rng.standard_normal(n))
            windows = np.lib.stride_tricks.sliding_window_view(np.pad(intervals, 2, mode="edge"), 5)
            np.testing.assert_array_equal(_local_steps(intervals), np.median(windows, axis=1))
