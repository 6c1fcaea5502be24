"""The one 2-theta grid every model input lives on, and the map from measured points onto it.

The grid runs from 5.0 to 60.0 degrees at 0.04 degrees (1376 points), the range and finest step of
the AUTO-XRD thin-film patterns (Oviedo et al. 2019, npj Comput. Mater. 5, 60). A scan measured on
any other positions -- a partial scan (only the range measured so far), a coarse scan (0.16-0.32
degree steps) or a mixed-step scan -- is linearly interpolated onto the grid, and a boolean mask says
which grid points are backed by measurement. The mask is the model's second input channel.
"""

from __future__ import annotations

import numpy as np

GRID_START: float = 5.0
"""First grid point, degrees 2-theta."""
GRID_STOP: float = 60.0
"""Last grid point, degrees 2-theta."""
GRID_STEP: float = 0.04
"""Grid spacing, degrees 2-theta."""
GRID_SIZE: int = int(round((GRID_STOP - GRID_START) / GRID_STEP)) + 1  # 1376
GRID: np.ndarray = np.round(GRID_START + GRID_STEP * np.arange(GRID_SIZE), 10)
"""The grid, degrees 2-theta, float64[1376]."""
GRID.setflags(write=False)

DEFAULT_GAP_FACTOR: float = 2.0
"""An interval between measured points counts as a gap (left unmasked) when it is wider than this
multiple of the local step (the median of the five intervals around it)."""
_SPAN_TOLERANCE = 1e-6  # degrees: a measured point this close to a grid point covers it


def _merge_repeats(two_theta: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by angle and average points measured more than once (a re-measured step)."""
    if two_theta.size < 2 or bool(np.all(np.diff(two_theta) > 0)):
        return two_theta, intensity  # already sorted once (the agent's PartialScan.sorted): no second sort
    order = np.argsort(two_theta, kind="stable")
    two_theta, intensity = two_theta[order], intensity[order]
    unique, inverse, counts = np.unique(two_theta, return_inverse=True, return_counts=True)
    if unique.size == two_theta.size:
        return two_theta, intensity
    summed = np.bincount(inverse, weights=intensity, minlength=unique.size)
    return unique, summed / counts


def _local_steps(intervals: np.ndarray) -> np.ndarray:
    """Median of the (up to) five intervals centred on each interval, degrees."""
    n = intervals.size
    if n <= 2:
        return np.full(n, intervals.min())
    padded = np.pad(intervals, 2, mode="edge")
    v = [padded[k : k + n] for k in range(5)]  # the five neighbours of every interval
    # the median of five by a sorting network (Knuth's 9 compare-exchanges): the same values as
    # np.median, without its per-call overhead (this runs at every decision of the agent)
    for i, j in ((0, 1), (3, 4), (2, 4), (2, 3), (0, 3), (0, 2), (1, 4), (1, 3), (1, 2)):
        v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    return v[2]


def measured_mask(two_theta: np.ndarray, *, gap_factor: float = DEFAULT_GAP_FACTOR) -> np.ndarray:
    """Grid points backed by measurement at the given (sorted, unique) angles.

    Parameters
    ----------
    two_theta : np.ndarray
        Measured angles, degrees, strictly increasing, at least one point.
    gap_factor : float
        An interval wider than ``gap_factor`` times the local step is a gap: grid points strictly
        inside it are unmeasured.

    Returns
    -------
    np.ndarray
        bool[1376], True inside the measured span and not inside a gap.
    """
    lo, hi = two_theta[0] - _SPAN_TOLERANCE, two_theta[-1] + _SPAN_TOLERANCE
    mask = (GRID >= lo) & (GRID <= hi)
    if two_theta.size < 2:
        return mask
    intervals = np.diff(two_theta)
    gaps = np.flatnonzero(intervals > gap_factor * _local_steps(intervals))
    for i in gaps:  # few gaps in practice; each blanks the grid strictly between its end points
        inside = (GRID > two_theta[i] + _SPAN_TOLERANCE) & (GRID < two_theta[i + 1] - _SPAN_TOLERANCE)
        mask &= ~inside
    return mask


def to_grid(
    two_theta: np.ndarray, intensity: np.ndarray, *, gap_factor: float = DEFAULT_GAP_FACTOR
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate measured points onto :data:`GRID`.

    Parameters
    ----------
    two_theta : np.ndarray
        Measured angles, degrees. Any order; repeated angles (re-measured steps) are averaged.
    intensity : np.ndarray
        Counts (or any non-negative intensity) at those angles, same length.
    gap_factor : float
        See :func:`measured_mask`.

    Returns
    -------
    values : np.ndarray
        float32[1376], linear interpolation of the intensity; 0 where the mask is False.
    mask : np.ndarray
        bool[1376], True only inside the measured span and not across gaps wider than
        ``gap_factor`` times the local step.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, are empty, or hold non-finite values.
    """
    two_theta = np.asarray(two_theta, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    if two_theta.ndim != 1 or intensity.ndim != 1:
        raise ValueError(f"two_theta and intensity must be 1-D, got shapes {two_theta.shape} and {intensity.shape}")
    if two_theta.size != intensity.size:
        raise ValueError(f"two_theta has {two_theta.size} points but intensity has {intensity.size}")
    if two_theta.size == 0:
        raise ValueError("cannot grid an empty scan")
    if not (np.all(np.isfinite(two_theta)) and np.all(np.isfinite(intensity))):
        raise ValueError("two_theta and intensity must be finite")
    two_theta, intensity = _merge_repeats(two_theta, intensity)
    mask = measured_mask(two_theta, gap_factor=gap_factor)
    values = np.zeros(GRID_SIZE, dtype=np.float32)
    if mask.any():
        values[mask] = np.interp(GRID[mask], two_theta, intensity).astype(np.float32)
    return values, mask


def coverage(mask: np.ndarray) -> float:
    """Fraction of the grid that is measured, 0-1."""
    return float(np.count_nonzero(mask)) / GRID_SIZE
