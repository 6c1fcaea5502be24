"""From the numbers a file holds to a validated `Pattern` on the model's Cu K-alpha1 2theta axis.

Every reader (text columns, XRDML, the vendor formats) produces a `RawScan`: the abscissae in the
file's own unit and order, the intensities, and what the file says about its radiation.
`to_pattern` then applies, in this order and once for all formats:

1. **finite values**, and abscissae inside the unit's physical range (2theta in [0, 180] deg):
   a file whose x runs past 180 is refused as "not 2theta in degrees" *before* anything is said
   about its intensities (a time-of-flight file is not refused for a negative count);
2. **negative intensities**: a background-subtracted file dips a little below zero; it is shifted
   up by its minimum (the model's preprocessing subtracts a background, so a constant offset
   changes nothing) and the shift is recorded. Negatives deeper than `NEGATIVE_LIMIT` times the
   maximum are not counts (a difference curve, a PDF): refused;
3. **order**: high-to-low scans are reversed; merged ranges (the angle jumps back and a new run of
   at least `MIN_RANGE_POINTS` points follows) are sorted; an isolated step back is an error;
4. **radiation and unit**: converted through d-spacings to Cu K-alpha1 2theta
   (`patterns.radiation`), points with no Cu angle dropped;
5. **repeated angles** averaged (re-measured points of merged ranges).

The metadata record every step (see `to_pattern`), so `classify` can print what was done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from patterns.pattern import Pattern
from patterns.radiation import (
    MODEL_RADIATION,
    MODEL_WAVELENGTH_A,
    is_model_wavelength,
    resolve_radiation,
    to_model_two_theta,
)

#: Negatives deeper than this fraction of the maximum are not a background-subtraction residue.
NEGATIVE_LIMIT: float = 0.5
#: A run after a step back must have at least this many points to count as a merged range.
MIN_RANGE_POINTS: int = 10
#: Physical range of each x unit (inclusive), in that unit.
_X_RANGES: dict[str, tuple[float, float]] = {
    "2th_deg": (0.0, 180.0),
    "2th_rad": (0.0, float(np.pi)),
    "q_nm^-1": (0.0, np.inf),
    "q_A^-1": (0.0, np.inf),
    "d_A": (0.0, np.inf),
}
_UNIT_WORDS: dict[str, str] = {
    "2th_deg": "2theta in degrees",
    "2th_rad": "2theta in radians",
    "q_nm^-1": "q in nm^-1",
    "q_A^-1": "q in A^-1",
    "d_A": "d-spacing in A",
}


@dataclass
class RawScan:
    """The numbers of one measurement as the file holds them.

    Attributes
    ----------
    x, y : numpy.ndarray
        float64[N], abscissae in `x_unit` and intensities, in file order.
    x_unit : str
        One of `patterns.radiation.X_UNITS`.
    file_wavelength_A : float or None
        The wavelength the file states, Angstrom.
    where : list of str
        N labels for errors, e.g. ``"line 12"`` or ``"scan 2 point 7"``.
    metadata : dict
        Reader-specific provenance (``format``, ``encoding``, ...), copied into the `Pattern`.
    """

    x: np.ndarray
    y: np.ndarray
    x_unit: str
    file_wavelength_A: float | None
    where: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)


def to_pattern(
    file: Path, raw: RawScan, *, wavelength_A: float | None = None, anode: str | None = None
) -> Pattern:
    """Validate, tidy and convert a `RawScan` into a `Pattern` (Cu K-alpha1 2theta, degrees).

    Parameters
    ----------
    file : pathlib.Path
        The file read (named in every error and in ``metadata["source"]``).
    raw : RawScan
        What the reader found.
    wavelength_A, anode : optional
        The user's radiation, used when the file states none (see
        `patterns.radiation.resolve_radiation`).

    Returns
    -------
    Pattern
        Metadata adds to the reader's: ``source``, ``name``, ``x_unit``, ``wavelength_A``,
        ``wavelength_source`` ("file", "user" or "default"), ``radiation``, ``model_wavelength_A``,
        ``converted_from`` (None when the file was already Cu K-alpha1 2theta),
        ``n_unreachable_points``, ``order`` ("ascending", "descending" or "merged ranges"),
        ``n_repeated_angles``, ``n_negative``, ``intensity_offset``.

    Raises
    ------
    ValueError
        Non-finite values, x outside the unit's range, negatives too deep to be a residue, an
        isolated step back in x, a declared radiation that contradicts the file, or fewer than
        two points left; the message starts with the file and names the line or point.
    """
    x, y = np.asarray(raw.x, dtype=np.float64), np.asarray(raw.y, dtype=np.float64)
    _check_finite_and_range(file, raw, x, y)
    y, negative = _lift_negatives(file, raw, y)
    order = _check_order(file, raw, x)
    try:
        radiation = resolve_radiation(raw.file_wavelength_A, wavelength_A=wavelength_A, anode=anode)
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from None
    two_theta, kept = to_model_two_theta(x, raw.x_unit, radiation.wavelength_A)
    intensity = y[kept]
    converted = raw.x_unit != "2th_deg" or not is_model_wavelength(radiation.wavelength_A)
    sort = np.argsort(two_theta, kind="stable")
    two_theta, intensity = two_theta[sort], intensity[sort]
    unique, inverse, counts = np.unique(two_theta, return_inverse=True, return_counts=True)
    merged = np.bincount(inverse, weights=intensity, minlength=unique.size) / counts
    metadata: dict[str, Any] = {
        **raw.metadata,
        "source": str(file),
        "name": file.stem,
        "x_unit": raw.x_unit,
        "wavelength_A": radiation.wavelength_A,
        "wavelength_source": radiation.source,
        "radiation": radiation.name,
        "model_wavelength_A": MODEL_WAVELENGTH_A,
        "converted_from": _conversion_note(raw.x_unit, radiation.name, radiation.wavelength_A) if converted else None,
        "n_unreachable_points": int(np.count_nonzero(~kept)),
        "order": order,
        "n_repeated_angles": int(two_theta.size - unique.size),
        **negative,
    }
    return Pattern(unique, merged, metadata)


def _conversion_note(unit: str, radiation: str, wavelength_A: float) -> str:
    if unit in ("2th_deg", "2th_rad"):
        what = f"{_UNIT_WORDS[unit]} for {radiation} ({wavelength_A:.7g} A)"
    else:
        what = _UNIT_WORDS[unit]
    return f"{what}, via d-spacing to 2theta for {MODEL_RADIATION} ({MODEL_WAVELENGTH_A} A)"


def _check_finite_and_range(file: Path, raw: RawScan, x: np.ndarray, y: np.ndarray) -> None:
    if x.size != y.size:
        raise ValueError(f"{file}: {x.size} x values but {y.size} intensities")
    bad = np.flatnonzero(~np.isfinite(x) | ~np.isfinite(y))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{file}: {raw.where[i]}: non-finite value (x {float(x[i])!r}, intensity {float(y[i])!r})")
    low, high = _X_RANGES[raw.x_unit]
    if x.size and x.max() > high:
        i = int(np.argmax(x))
        raise ValueError(
            f"{file}: {raw.where[i]}: x reaches {float(x[i])!r}, beyond {high:g}: not {_UNIT_WORDS[raw.x_unit]} "
            f"(a time-of-flight, energy or channel axis?)"
        )
    if x.size and (x.min() < low or (raw.x_unit == "d_A" and x.min() == 0.0)):
        i = int(np.argmin(x))
        raise ValueError(f"{file}: {raw.where[i]}: x is {float(x[i])!r}, outside the range of {_UNIT_WORDS[raw.x_unit]}")


def _lift_negatives(file: Path, raw: RawScan, y: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    negative = np.flatnonzero(y < 0)
    if not negative.size:
        return y, {"n_negative": 0, "intensity_offset": 0.0}
    i = int(negative[np.argmin(y[negative])])
    peak = float(y.max())
    if peak <= 0 or -y[i] > NEGATIVE_LIMIT * peak:
        first = int(negative[0])
        raise ValueError(
            f"{file}: {raw.where[first]}: negative intensity {float(y[first])!r}; the intensities reach "
            f"{float(y[i])!r} against a maximum of {peak!r}, deeper than a background-subtraction residue "
            f"({NEGATIVE_LIMIT:.0%} of the maximum): not counts of a diffraction pattern"
        )
    offset = float(-y[i])
    return y + offset, {"n_negative": int(negative.size), "intensity_offset": offset}


def _check_order(file: Path, raw: RawScan, x: np.ndarray) -> str:
    if x.size < 2:
        return "ascending"
    step = np.diff(x)
    direction = 1.0 if x[-1] >= x[0] else -1.0
    backs = np.flatnonzero(step * direction < 0)
    if not backs.size:
        return "ascending" if direction > 0 else "descending"
    bounds = np.concatenate(([0], backs + 1, [x.size]))
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if stop - start < MIN_RANGE_POINTS:
            i = int(start) if start > 0 else int(stop)
            i = min(i, x.size - 1)
            raise ValueError(
                f"{file}: {raw.where[i]}: x {float(x[i])!r} goes back after {float(x[i - 1])!r}, and the run there is "
                f"only {stop - start} points: not a merged range (those have >= {MIN_RANGE_POINTS})"
            )
    return "merged ranges"
