"""The class activation map over the measured range, in the few numbers a decision records.

The CAM arrives masked (0 where the grid's mask says unmeasured: the model masks it, once), so
nothing here masks it again.
"""

from __future__ import annotations

import numpy as np

from agent.decision import CamSummary


def summarise_cam(cam: np.ndarray | None, grid: np.ndarray) -> CamSummary:
    """Describe a class-activation map on `grid` (degrees) in a few numbers.

    Parameters
    ----------
    cam : np.ndarray or None
        Non-negative CAM values on `grid`, already 0 where unmeasured (the model masks it, once,
        with the grid's measured mask); None gives an empty summary.
    grid : np.ndarray
        Angles of the CAM values, degrees.
    """
    if cam is None or cam.size != grid.size:
        return CamSummary()
    values = np.asarray(cam)
    peak = int(np.argmax(values))
    if values[peak] <= 0:
        return CamSummary()
    high = values >= 0.5 * values[peak]
    # the widest contiguous high region
    edges = np.flatnonzero(np.diff(np.concatenate(([0], high.astype(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2]
    widest = int(np.argmax(ends - starts))
    # local maxima, strongest first
    interior = (values[1:-1] > values[:-2]) & (values[1:-1] >= values[2:]) & (values[1:-1] > 0)
    maxima = np.flatnonzero(interior) + 1
    top = maxima[np.argsort(values[maxima])[::-1][:3]]
    return CamSummary(
        peak_two_theta=float(grid[peak]),
        high_low=float(grid[starts[widest]]),
        high_high=float(grid[ends[widest] - 1]),
        top_two_theta=tuple(float(grid[i]) for i in top),
    )


def cam_on_interval(cam: np.ndarray, grid: np.ndarray, lo: float, hi: float) -> float:
    """Mean CAM over grid points in [lo, hi] (0 when none)."""
    i, j = np.searchsorted(grid, lo), np.searchsorted(grid, hi, side="right")
    return float(cam[i:j].mean()) if j > i else 0.0


def evidence_map(cam_top: np.ndarray, cam_second: np.ndarray | None) -> np.ndarray:
    """Where the evidence lies: ``|CAM1 - CAM2|`` of the two most probable classes, else CAM1.

    Parameters
    ----------
    cam_top : np.ndarray
        float[G] CAM of the most probable class (max 1, 0 where unmeasured).
    cam_second : np.ndarray or None
        float[G] CAM of the second most probable class, same scaling; None when not computed.

    Returns
    -------
    np.ndarray
        float[G] >= 0: high where one candidate finds evidence the other does not (the features
        that separate them), or the top class's CAM when there is no second map.
    """
    if cam_second is None:
        return cam_top
    return np.abs(cam_top - np.asarray(cam_second, dtype=np.float64))
