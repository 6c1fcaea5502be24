r"""Sampling physics of a step-scanned point detector: expected counts of one step.

The model
---------
A sample is described by its diffracted **rate density** :math:`s(x)` in counts per second
per degree of 2theta at the detector circle (``Sample.rate_density``, tabulated on
``Sample.grid_deg`` and linear in between). A point detector behind a receiving slit of
angular **acceptance** :math:`w` (degrees 2theta), parked at :math:`2\theta` for a **dwell**
time :math:`t` (seconds), collects every photon diffracted into the window
:math:`[2\theta - w/2,\ 2\theta + w/2]`:

.. math::

    \lambda(2\theta; w, t) = t \int_{2\theta - w/2}^{2\theta + w/2} s(x)\,dx
                           = t\,\bigl[S(2\theta + w/2) - S(2\theta - w/2)\bigr],

with :math:`S(x) = \int_{x_0}^{x} s(u)\,du` the cumulative rate. The recorded counts are
:math:`N \sim \mathrm{Poisson}(\lambda)` (drawn by the detector, not here).

Because :math:`s` is piecewise linear between grid points :math:`x_i` with values
:math:`y_i`, :math:`S` is piecewise quadratic and is evaluated exactly:

.. math::

    S(x) = C_i + y_i (x - x_i) + \frac{y_{i+1} - y_i}{2 (x_{i+1} - x_i)} (x - x_i)^2,
    \qquad x_i \le x \le x_{i+1},\quad C_i = S(x_i),

and outside the tabulated range the density is held at its edge value
(:math:`S(x) = y_0 (x - x_0)` below :math:`x_0`, :math:`S(x) = C_n + y_n (x - x_n)` above).

Consequences (the reason the adaptive scan is a real question):

* counts scale linearly with dwell :math:`t`, and with :math:`w` where :math:`s` is flat
  (background);
* a uniform step :math:`\Delta` with fixed acceptance :math:`w < \Delta` leaves gaps of
  :math:`\Delta - w` between windows: a peak narrower than :math:`\Delta` can fall between
  windows (missed) or be caught on its flank (its measured height under-sampled). With
  :math:`w = \Delta` the windows tile the range and every photon is counted, but a peak
  narrower than :math:`\Delta` is averaged into one point: its height per degree,
  :math:`\lambda / (t w)`, drops by up to a factor :math:`\Delta / \mathrm{FWHM}`.

Units: angles and widths in degrees 2theta, times in seconds, :math:`s` in counts s\ :sup:`-1`
deg\ :sup:`-1`, :math:`\lambda` in counts.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike


class TabulatedRate(Protocol):
    """What `expected_counts` needs from a sample (see `sim_devices.samples.Sample`)."""

    @property
    def grid_deg(self) -> np.ndarray:
        """Strictly increasing 2theta grid, degrees, >= 2 points."""
        ...

    @property
    def rate_density(self) -> np.ndarray:
        """Rate density at `grid_deg`, counts/s/deg, >= 0."""
        ...

    @property
    def cumulative_rate(self) -> np.ndarray:
        """`cumulative_integral` of the two arrays above, counts/s."""
        ...


def cumulative_integral(grid_deg: np.ndarray, rate_density: np.ndarray) -> np.ndarray:
    """Exact running integral :math:`C_i = S(x_i)` of a piecewise-linear density (trapezoids).

    Parameters
    ----------
    grid_deg : numpy.ndarray
        Grid :math:`x_i`, degrees, strictly increasing.
    rate_density : numpy.ndarray
        Values :math:`y_i`, counts/s/deg.

    Returns
    -------
    numpy.ndarray
        :math:`C_i`, counts/s, with :math:`C_0 = 0`.
    """
    segments = 0.5 * (rate_density[1:] + rate_density[:-1]) * np.diff(grid_deg)
    return np.concatenate(([0.0], np.cumsum(segments)))


def cumulative_rate_at(x: ArrayLike, sample: TabulatedRate) -> np.ndarray:
    """:math:`S(x)` of the module docstring: integral of the rate density from the grid start.

    Parameters
    ----------
    x : array_like
        Angles, degrees 2theta (any finite values; outside the grid the density is held
        at its edge value).
    sample : TabulatedRate
        The sample's tabulated density.

    Returns
    -------
    numpy.ndarray
        Cumulative rate, counts/s (negative below the first grid point).
    """
    grid, density, cumulative = sample.grid_deg, sample.rate_density, sample.cumulative_rate
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:  # one detector step: plain floats are ~10x faster than array ufuncs
        return np.asarray(_cumulative_rate_scalar(float(x), grid, density, cumulative))
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    x_i, y_i = grid[i], density[i]
    slope = (density[i + 1] - y_i) / (grid[i + 1] - x_i)
    dx = x - x_i
    inside = cumulative[i] + y_i * dx + 0.5 * slope * dx * dx
    below = density[0] * (x - grid[0])
    above = cumulative[-1] + density[-1] * (x - grid[-1])
    return np.where(x < grid[0], below, np.where(x > grid[-1], above, inside))


def _cumulative_rate_scalar(
    x: float, grid: np.ndarray, density: np.ndarray, cumulative: np.ndarray
) -> float:
    """`cumulative_rate_at` for one angle (same equations, Python floats)."""
    if x < grid[0]:
        return float(density[0] * (x - grid[0]))
    if x > grid[-1]:
        return float(cumulative[-1] + density[-1] * (x - grid[-1]))
    i = min(int(np.searchsorted(grid, x, side="right")) - 1, grid.size - 2)
    x_i, y_i = float(grid[i]), float(density[i])
    slope = (float(density[i + 1]) - y_i) / (float(grid[i + 1]) - x_i)
    dx = x - x_i
    return float(cumulative[i]) + y_i * dx + 0.5 * slope * dx * dx


def expected_counts(
    two_theta: ArrayLike, acceptance: float, dwell: float, sample: TabulatedRate
) -> np.ndarray:
    """Expected counts :math:`\\lambda` of step measurements (module docstring, first equation).

    Parameters
    ----------
    two_theta : array_like
        Detector positions (window centres), degrees 2theta, finite.
    acceptance : float
        Full angular width of the receiving window, degrees 2theta, > 0.
    dwell : float
        Counting time per position, seconds, >= 0.
    sample : TabulatedRate
        The sample (e.g. `sim_devices.samples.Sample`).

    Returns
    -------
    numpy.ndarray
        Expected counts, same shape as `two_theta` (a 0-d array for a scalar), >= 0.

    Raises
    ------
    ValueError
        If `acceptance` is not > 0, `dwell` not >= 0, or a position is not finite.
    """
    acceptance = float(acceptance)
    dwell = float(dwell)
    if not (np.isfinite(acceptance) and acceptance > 0):
        raise ValueError(f"expected_counts: acceptance must be finite and > 0 deg, got {acceptance!r}")
    if not (np.isfinite(dwell) and dwell >= 0):
        raise ValueError(f"expected_counts: dwell must be finite and >= 0 s, got {dwell!r}")
    centre = np.asarray(two_theta, dtype=np.float64)
    if not np.all(np.isfinite(centre)):
        raise ValueError("expected_counts: two_theta must be finite degrees")
    half = 0.5 * acceptance
    window = cumulative_rate_at(centre + half, sample) - cumulative_rate_at(centre - half, sample)
    # round-off of S at large x can make a zero-density window slightly negative
    return dwell * np.maximum(window, 0.0)
