"""The `Pattern` type: one powder/thin-film diffraction pattern, validated at construction.

A `Pattern` is the unit every other layer exchanges (readers produce it, the simulated
beamline replays it, the classifier consumes its arrays). Validation happens once, here,
so code downstream can rely on the invariants instead of re-checking them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Physical range of a diffraction angle 2theta, in degrees.
TWO_THETA_MIN_DEG: float = 0.0
TWO_THETA_MAX_DEG: float = 180.0


@dataclass(frozen=True)
class Pattern:
    """A diffraction pattern: intensity as a function of 2theta.

    Parameters
    ----------
    two_theta : numpy.ndarray
        Diffraction angles 2theta in degrees, float64, strictly increasing,
        within [0, 180], at least 2 points.
    intensity : numpy.ndarray
        Intensity at each angle (counts or arbitrary units), float64, finite and
        non-negative, same length as `two_theta`.
    metadata : dict
        Free-form provenance. Conventional keys: ``"source"`` (file path or generator),
        ``"name"``, ``"label"``; the file readers add the radiation and what they did
        (``"wavelength_A"``, ``"wavelength_source"``, ``"converted_from"``, ...; see
        `patterns.raw_scan.to_pattern`). When ``"source"`` is given, validation errors name it.

    Raises
    ------
    ValueError
        If any invariant above is violated. The message names ``metadata["source"]``
        (when present) and the first offending index.

    Notes
    -----
    The arrays are converted to float64 copies and made read-only, so a frozen
    `Pattern` cannot be changed through its arrays either.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = _describe_source(self.metadata)
        two_theta = _as_float_vector(self.two_theta, "two_theta", where)
        intensity = _as_float_vector(self.intensity, "intensity", where)
        if two_theta.shape != intensity.shape:
            raise ValueError(
                f"{where}: two_theta has {two_theta.size} points but intensity has {intensity.size}"
            )
        if two_theta.size < 2:
            raise ValueError(f"{where}: a pattern needs at least 2 points, got {two_theta.size}")
        _check_finite(two_theta, "two_theta", where)
        _check_finite(intensity, "intensity", where)
        negative = np.flatnonzero(intensity < 0)
        if negative.size:
            i = int(negative[0])
            raise ValueError(f"{where}: intensity must be >= 0, got {intensity[i]!r} at index {i}")
        outside = np.flatnonzero((two_theta < TWO_THETA_MIN_DEG) | (two_theta > TWO_THETA_MAX_DEG))
        if outside.size:
            i = int(outside[0])
            raise ValueError(
                f"{where}: two_theta must lie within [{TWO_THETA_MIN_DEG}, {TWO_THETA_MAX_DEG}] deg, "
                f"got {two_theta[i]!r} at index {i}"
            )
        not_increasing = np.flatnonzero(np.diff(two_theta) <= 0)
        if not_increasing.size:
            i = int(not_increasing[0]) + 1
            raise ValueError(
                f"{where}: two_theta must be strictly increasing, got {two_theta[i]!r} after "
                f"{two_theta[i - 1]!r} at index {i}"
            )
        two_theta.setflags(write=False)
        intensity.setflags(write=False)
        # frozen dataclass: bypass __setattr__ to store the validated copies
        object.__setattr__(self, "two_theta", two_theta)
        object.__setattr__(self, "intensity", intensity)
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __len__(self) -> int:
        return int(self.two_theta.size)

    @property
    def name(self) -> str | None:
        """``metadata["name"]`` if present, else None."""
        return self.metadata.get("name")

    @property
    def label(self) -> str | None:
        """``metadata["label"]`` (e.g. a space group) if present, else None."""
        return self.metadata.get("label")

    @property
    def wavelength_A(self) -> float | None:
        """The measurement wavelength in Angstrom (``metadata["wavelength_A"]``), None if unknown.

        Readers set it with ``metadata["wavelength_source"]`` ("file", "user" or "default") and
        convert the angles to the model's Cu K-alpha1 2theta (``metadata["converted_from"]``).
        """
        return self.metadata.get("wavelength_A")

    def with_metadata(self, **updates: Any) -> Pattern:
        """Return a copy with `metadata` updated by `updates` (arrays are shared, read-only)."""
        return Pattern(self.two_theta, self.intensity, {**self.metadata, **updates})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pattern):
            return NotImplemented
        return (
            np.array_equal(self.two_theta, other.two_theta)
            and np.array_equal(self.intensity, other.intensity)
            and self.metadata == other.metadata
        )

    __hash__ = None  # type: ignore[assignment]  # arrays are not hashable


def _describe_source(metadata: dict[str, Any]) -> str:
    source = metadata.get("source") if isinstance(metadata, dict) else None
    return f"Pattern from {source}" if source else "Pattern"


def _as_float_vector(values: Any, what: str, where: str) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {what} is not numeric ({exc})") from exc
    if array.ndim != 1:
        raise ValueError(f"{where}: {what} must be one-dimensional, got shape {array.shape}")
    return array


def _check_finite(values: np.ndarray, what: str, where: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: {what} must be finite, got {values[i]!r} at index {i}")
