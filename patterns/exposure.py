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

from collections.abc import Collection, Mapping
from typing import Any

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


def dwell_of_points(start: Mapping[str, Any], data_vars: Collection[str]) -> tuple[str, float] | None:
    """The per-point dwell field and the run's dwell (s) of a run that varies its dwell, else None.

    An adaptive scan names them in ``start["adaptive"]["dwell_field"]`` / ``["dwell_s"]``; its
    counts are then rescaled to the run's dwell by every reader (:func:`at_run_dwell`).
    `data_vars` are the fields the stream (or one event's ``data``) holds.

    Raises
    ------
    ValueError
        The run names a dwell field its stream does not hold, or no run dwell (reading such a run
        without the dwell would be a silent misread).
    """
    adaptive = start.get("adaptive")
    name = adaptive.get("dwell_field") if isinstance(adaptive, Mapping) else None
    if not name:
        return None
    if name not in data_vars:
        raise ValueError(f"run {start.get('uid')}: its points' dwell {name!r} is not among the fields {data_vars}")
    try:
        return str(name), float(adaptive["dwell_s"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"run {start.get('uid')}: names a per-point dwell but no run dwell (adaptive.dwell_s)") from exc
