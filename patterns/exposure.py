"""Counts of points counted for different times, put on one footing: the run's dwell.

An adaptive scan may count its coarse steps over background for a fraction of the run's dwell
(`agent.policy.PolicyConfig.background_dwell`); each event then carries its own counting time (the
detector's dwell signal, read with the point, named in ``start["adaptive"]["dwell_field"]``).
Every reader of such a run rescales the counts to what the run's dwell would have counted,

    counts_at_run_dwell = counts * run_dwell / point_dwell,

the usual normalisation to counting time (a count rate times one reference time), so a pattern
read back has one intensity scale whatever the point's dwell. A rescaled point is noisier than a
full count (Poisson variance ``counts_at_run_dwell / exposure``); the agent's peak test puts its
bar on the rescaled counts on purpose (`agent.policy.above_background`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def exposure(point_dwell: ArrayLike, run_dwell: float) -> np.ndarray:
    """Each point's counting time as a fraction of the run's dwell (1 for a point counted as long).

    Parameters
    ----------
    point_dwell : array_like
        Counting time of each point, seconds (finite, > 0).
    run_dwell : float
        The run's dwell, seconds (finite, > 0).

    Returns
    -------
    np.ndarray
        float64, the shape of `point_dwell`.

    Raises
    ------
    ValueError
        A dwell that is not a positive finite number of seconds (a count time of 0 or NaN cannot
        be put on any footing: refused, never guessed).
    """
    point_dwell = np.asarray(point_dwell, dtype=np.float64)
    run_dwell = float(run_dwell)
    if not (np.isfinite(run_dwell) and run_dwell > 0):
        raise ValueError(f"the run's dwell must be a positive number of seconds, got {run_dwell}")
    bad = ~(np.isfinite(point_dwell) & (point_dwell > 0))
    if np.any(bad):
        raise ValueError(f"a point's dwell must be a positive number of seconds, got {point_dwell[bad].ravel()[0]}")
    return point_dwell / run_dwell


def at_run_dwell(counts: ArrayLike, point_dwell: ArrayLike, run_dwell: float) -> np.ndarray:
    """Counts rescaled to the run's dwell: ``counts * run_dwell / point_dwell``.

    Parameters
    ----------
    counts : array_like
        Counts of each point, as the detector gave them.
    point_dwell : array_like
        Counting time of each point, seconds (finite, > 0); broadcast against `counts`.
    run_dwell : float
        The run's dwell, seconds (finite, > 0).

    Returns
    -------
    np.ndarray
        float64 counts on the run's dwell.

    Raises
    ------
    ValueError
        As :func:`exposure`.
    """
    return np.asarray(counts, dtype=np.float64) / exposure(point_dwell, run_dwell)
