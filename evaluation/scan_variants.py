"""Coarser and shorter copies of measured patterns, for the step-size and partial-scan studies.

The step-size study (the paper's Fig. 4) asks how accuracy falls when a pattern is measured with
a coarser 2-theta step; the partial-scan study asks how accurate the model is when only the first
part of the 5-60 degree range has been measured. Both are answered on real measurements by
dropping points of the measured patterns and re-gridding them exactly as a live scan would be
(:func:`models.grid.to_grid` then :func:`models.preprocess.preprocess`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.grid import GRID_SIZE, GRID_START, GRID_STOP, to_grid
from models.preprocess import preprocess
from patterns import Pattern

STEP_SIZES: tuple[float, ...] = (0.04, 0.08, 0.12, 0.16, 0.24, 0.32)
"""Target 2-theta steps of the step-size study, degrees."""

PARTIAL_FRACTIONS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Fractions of the 5-60 degree range measured (from 5 degrees upwards) in the partial study."""


def native_step(pattern: Pattern) -> float:
    """Median spacing of the measured angles, degrees."""
    return float(np.median(np.diff(pattern.two_theta)))


def coarsen(pattern: Pattern, step: float) -> Pattern:
    """Keep every k-th measured point so that the spacing is as close to ``step`` as possible.

    ``k = max(1, round(step / native_step))``, starting from the first point. A pattern already
    measured more coarsely than ``step`` (the AUTO-XRD files have native steps 0.02-0.05 degrees)
    is returned unchanged at its native step: points can be dropped, not invented. The achieved
    step is recorded in ``metadata["step"]``.

    Parameters
    ----------
    pattern : Pattern
        A measured pattern.
    step : float
        Target step, degrees (> 0).
    """
    if not step > 0:
        raise ValueError(f"step must be positive, got {step}")
    base = native_step(pattern)
    every = max(1, int(round(step / base)))
    keep = slice(None, None, every)
    two_theta, intensity = pattern.two_theta[keep], pattern.intensity[keep]
    if two_theta.size < 2:  # a very short scan: keep its two end points rather than one
        two_theta = pattern.two_theta[[0, -1]]
        intensity = pattern.intensity[[0, -1]]
    return Pattern(two_theta, intensity, {**pattern.metadata, "step": base * every})


def truncate(pattern: Pattern, fraction: float) -> Pattern | None:
    """The part of ``pattern`` measured below ``5 + fraction * 55`` degrees.

    Returns None when fewer than 2 points remain (nothing measured yet in that range).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    limit = GRID_START + fraction * (GRID_STOP - GRID_START)
    keep = pattern.two_theta <= limit + 1e-9
    if np.count_nonzero(keep) < 2:
        return None
    return Pattern(pattern.two_theta[keep], pattern.intensity[keep],
                   {**pattern.metadata, "fraction": fraction})


def features_of(patterns: Sequence[Pattern | None]) -> np.ndarray:
    """Grid and preprocess patterns into ``[N, 2, 1376]``; a None entry becomes all zeros
    (no measured point: the model sees an empty mask)."""
    values = np.zeros((len(patterns), GRID_SIZE), dtype=np.float32)
    masks = np.zeros((len(patterns), GRID_SIZE), dtype=bool)
    for i, pattern in enumerate(patterns):
        if pattern is not None:
            values[i], masks[i] = to_grid(pattern.two_theta, pattern.intensity)
    return preprocess(values, masks)


def variant_features(
    patterns: Sequence[Pattern],
    steps: Sequence[float] = STEP_SIZES,
    fractions: Sequence[float] = PARTIAL_FRACTIONS,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Model inputs of every step-size and partial-range variant of the patterns.

    Returns
    -------
    features : dict of str to np.ndarray
        ``"step:<s>"`` and ``"partial:<f>"`` (formatted ``%.2f``) to ``[N, 2, 1376]``.
    info : dict of str to dict
        Per variant: ``mean_step`` (degrees, achieved), ``mean_coverage`` (fraction of the grid
        measured), ``n_empty`` (patterns with nothing measured).
    """
    features: dict[str, np.ndarray] = {}
    info: dict[str, dict[str, float]] = {}
    for step in steps:
        coarse = [coarsen(p, step) for p in patterns]
        key = f"step:{step:.2f}"
        features[key] = features_of(coarse)
        info[key] = {
            "mean_step": float(np.mean([p.metadata["step"] for p in coarse])),
            "mean_coverage": float(features[key][:, 1].mean()),
            "n_empty": 0,
        }
    for fraction in fractions:
        short = [truncate(p, fraction) for p in patterns]
        key = f"partial:{fraction:.2f}"
        features[key] = features_of(short)
        info[key] = {
            "mean_step": float("nan"),
            "mean_coverage": float(features[key][:, 1].mean()),
            "n_empty": int(sum(p is None for p in short)),
        }
    return features, info
