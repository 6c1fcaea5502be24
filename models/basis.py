"""Is there a basis for an answer? Checks a pattern must pass before the classifier is asked.

A classifier always returns a class; on a two-point file, an all-zero file or an X-ray
reflectivity curve that class means nothing. `assess_basis` looks at what was measured inside
the model's range (:data:`models.grid.GRID`, 5-60 deg 2theta, Cu K-alpha1) and returns either a
refusal (no answer should be given) or flags (an answer may be given, with these caveats).

Refusals, in the order checked:

* ``not_diffraction_reflectivity``: most points lie below the grid (2theta < 5 deg) and the
  intensity falls by more than `REFLECTIVITY_DECADES` decades: an X-ray reflectivity (or
  small-angle) curve, which the model has never seen;
* ``too_little_data``: fewer than `MIN_POINTS_IN_RANGE` measured points inside 5-60 deg;
* ``no_signal``: every intensity in range is the same (all zero, a dead detector);
* ``too_little_coverage``: the measured fraction of the grid is below `MIN_COVERAGE`.

Flags (strings; callers may add their own, e.g. an out-of-distribution flag):

* ``partial_coverage``: coverage below `FULL_COVERAGE`; the answer rests on part of the range;
* ``radiation_mismatch``: the file's header names a tube anode whose K-alpha1 differs from the
  wavelength used for the conversion (e.g. a Co comment read with the Cu default).

The thresholds are design choices, not fitted: `FULL_COVERAGE` = 0.6 because the measured
accuracy with the first 60 % of the range equals the full-scan figure (README, bench accuracy);
below `MIN_COVERAGE` = 0.2 (11 of the 55 degrees) most classes' strongest peaks can be missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.grid import GRID_START, GRID_STOP, coverage, measured_mask
from patterns.radiation import header_radiation_mismatch

#: Fewer measured points than this inside the grid range: refused.
MIN_POINTS_IN_RANGE: int = 20
#: Measured fraction of the grid below which no answer is given.
MIN_COVERAGE: float = 0.2
#: Measured fraction of the grid below which an answer is flagged ``partial_coverage``.
FULL_COVERAGE: float = 0.6
#: Decades of intensity fall that, with most points below the grid, mark a reflectivity curve.
REFLECTIVITY_DECADES: float = 3.0


@dataclass(frozen=True)
class Basis:
    """The outcome of `assess_basis`.

    Attributes
    ----------
    coverage : float
        Fraction of the model's grid (1376 points, 5-60 deg) backed by measurement, 0-1.
    refusal : str or None
        ``"<code>: <reason>"`` when no answer should be given, else None.
    flags : list of str
        Caveats on an answer (see the module docstring).
    """

    coverage: float
    refusal: str | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """Whether no answer should be given."""
        return self.refusal is not None


def assess_basis(two_theta: np.ndarray, intensity: np.ndarray, metadata: dict[str, Any] | None = None) -> Basis:
    """Decide whether a pattern gives the model a basis for an answer.

    Parameters
    ----------
    two_theta : numpy.ndarray
        float[N], degrees 2theta for Cu K-alpha1, increasing (a `patterns.Pattern`).
    intensity : numpy.ndarray
        float[N], >= 0.
    metadata : dict, optional
        The pattern's metadata; ``radiation_in_header`` and ``wavelength_A`` are used for the
        ``radiation_mismatch`` flag.

    Returns
    -------
    Basis
    """
    two_theta = np.asarray(two_theta, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    inside = (two_theta >= GRID_START) & (two_theta <= GRID_STOP)
    fraction = coverage(measured_mask(two_theta[inside])) if inside.any() else 0.0
    refusal = _refusal(two_theta, intensity, inside, fraction)
    flags: list[str] = []
    if refusal is None and fraction < FULL_COVERAGE:
        flags.append("partial_coverage")
    if header_radiation_mismatch(metadata or {}):
        flags.append("radiation_mismatch")
    return Basis(coverage=fraction, refusal=refusal, flags=flags)


def _refusal(two_theta: np.ndarray, intensity: np.ndarray, inside: np.ndarray, fraction: float) -> str | None:
    below = two_theta < GRID_START
    if np.count_nonzero(below) > 0.5 * two_theta.size and _decades_of_fall(intensity) > REFLECTIVITY_DECADES:
        return (
            f"not_diffraction_reflectivity: {np.count_nonzero(below)} of {two_theta.size} points lie below "
            f"{GRID_START:g} deg and the intensity falls by {_decades_of_fall(intensity):.1f} decades: an X-ray "
            f"reflectivity or small-angle curve, outside what the model knows"
        )
    n_inside = int(np.count_nonzero(inside))
    if n_inside < MIN_POINTS_IN_RANGE:
        return (
            f"too_little_data: {n_inside} measured points inside the model's {GRID_START:g}-{GRID_STOP:g} deg "
            f"range (at least {MIN_POINTS_IN_RANGE} needed)"
        )
    values = intensity[inside]
    if values.max() == values.min():
        return f"no_signal: every intensity inside {GRID_START:g}-{GRID_STOP:g} deg is {values[0]:g}"
    if fraction < MIN_COVERAGE:
        return (
            f"too_little_coverage: the scan covers {fraction:.0%} of the model's {GRID_START:g}-{GRID_STOP:g} deg "
            f"range (at least {MIN_COVERAGE:.0%} needed)"
        )
    return None


def _decades_of_fall(intensity: np.ndarray) -> float:
    """log10 of the first-tenth median over the last-tenth median (0 when it does not fall)."""
    n = max(1, intensity.size // 10)
    head, tail = float(np.median(intensity[:n])), float(np.median(intensity[-n:]))
    if head <= 0:
        return 0.0
    return float(np.log10(head / max(tail, 1.0)))

