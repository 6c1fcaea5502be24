"""Check :func:`training.reflections.compute_reflections` against pymatgen's XRDCalculator.

Both peak lists (Cu K-alpha1, 5-60 deg 2theta) are clustered together: sorted positions closer
than ``cluster_deg`` belong to one observed peak (pymatgen merges only coincident positions,
while a pseudo-symmetric file can split one family by 1e-3 deg). Reported: the largest distance
between a reflection of ours above 0.1 % of the strongest and the nearest pymatgen peak
(degrees), and the Pearson correlation of the two lists' max-normalised intensities per cluster.
"""

from __future__ import annotations

import numpy as np
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Structure

from crystals.powder import wavelength_angstrom
from training.reflections import compute_reflections

__all__ = ["compare_with_pymatgen"]


def compare_with_pymatgen(
    structure: Structure, two_theta_range: tuple[float, float] = (5.0, 60.0), cluster_deg: float = 0.01,
) -> tuple[float, float, int]:
    """Peak-position error and intensity correlation of our reflections against XRDCalculator.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        Real elements only (pymatgen has no factors for our pseudo-atoms).
    two_theta_range : tuple of float
        Degrees 2theta compared.
    cluster_deg : float
        Peaks closer than this (degrees) are one observed peak.

    Returns
    -------
    max_position_error_deg : float
        Largest distance from one of our reflections (> 0.1 % of the strongest) to the nearest
        pymatgen peak, degrees 2theta.
    pearson : float
        Pearson r of the per-cluster intensities (each list scaled to a maximum of 1).
    n_clusters : int
        Number of observed peaks compared.
    """
    wavelength = wavelength_angstrom("CuKa1")
    lo, hi = two_theta_range
    reference = XRDCalculator(wavelength=wavelength).get_pattern(structure, scaled=True, two_theta_range=(lo, hi))
    ref_x, ref_y = np.asarray(reference.x), np.asarray(reference.y)
    ours = compute_reflections(structure, wavelength, hi + 1.0)
    x, y = ours.two_theta(wavelength), ours.powder_intensity(wavelength)
    inside = (x >= lo) & (x <= hi)
    x, y = x[inside], y[inside]
    strong = y > 1e-3 * y.max()
    error = float(np.abs(x[strong, None] - ref_x[None, :]).min(axis=1).max()) if strong.any() else 0.0
    positions = np.concatenate([ref_x, x])
    source = np.concatenate([np.zeros(ref_x.size, int), np.ones(x.size, int)])
    weights = np.concatenate([ref_y / ref_y.max(), y / y.max()])
    order = np.argsort(positions)
    cluster = np.concatenate([[0], np.cumsum(np.diff(positions[order]) > cluster_deg)])
    n = int(cluster[-1]) + 1
    sums = np.zeros((2, n))
    np.add.at(sums, (source[order], cluster), weights[order])
    return error, float(np.corrcoef(sums[0], sums[1])[0, 1]), n
