"""Bragg reflections of a crystal, computed once: Miller indices, multiplicities and |F|^2.

Everything about a structure that does not change from one simulated film to the next is
computed here once (numpy), so that the per-pattern work (lattice variation, texture, profiles,
noise; :mod:`training.film_renderer`) is a few batched tensor operations.

Kinematic structure factor (International Tables for Crystallography Vol. C, Sect. 6.1):

.. math::

    F(\\mathbf{h}) = \\sum_j o_j\\, f_j(s)\\, e^{-B_j s^2}\\, e^{2\\pi i\\, \\mathbf{h}\\cdot\\mathbf{x}_j},
    \\qquad s = \\sin\\theta / \\lambda = |\\mathbf{h}^*| / 2,

with site occupancies :math:`o_j` (mixed sites and partial occupancies add), isotropic
Debye-Waller factors :math:`B_j` (angstrom^2) and the atomic scattering factors :math:`f_j(s)` of
pymatgen's XRDCalculator table (the same parametrisation, so the two agree by construction; the
test compares the result with XRDCalculator on every shared CIF of the seven classes).

Molecular cations are equivalent-scattering pseudo-atoms: ``DummySpecies("Xma")``
(methylammonium CH3NH3+) and ``DummySpecies("Xfa")`` (formamidinium CH(NH2)2+) scatter as the sum
of their atoms' form factors placed at the site centre (C + N + 6 H and C + 2 N + 5 H). That is
the s -> 0 limit of an orientationally disordered molecule; at higher angle the real, spread-out
cation scatters somewhat less, so the A-site contribution is slightly overestimated there.

Reflections related by the Laue group (the point group plus inversion, from spglib) form one
family: it keeps its representative, multiplicity and every member (the members are needed for
March-Dollase texture, the representative for the Bragg angle of a symmetry-keeping strain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import spglib
from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS
from pymatgen.core import Element, Structure

__all__ = ["PSEUDO_ATOMS", "Reflections", "compute_reflections", "lorentz_polarisation", "scattering_factor"]

#: Equivalent-scattering pseudo-atoms of molecular cations: dummy-species symbol -> atoms.
PSEUDO_ATOMS: dict[str, dict[str, int]] = {
    "Xma": {"C": 1, "N": 1, "H": 6},  # methylammonium CH3NH3+
    "Xfa": {"C": 1, "N": 2, "H": 5},  # formamidinium CH(NH2)2+
}
_MOTT_BETHE = 41.78214  # angstrom^2: the constant of f(s) = Z - 41.78214 s^2 sum a_k exp(-b_k s^2)


def scattering_factor(symbol: str, s2: np.ndarray) -> np.ndarray:
    """X-ray atomic scattering factor f(s) in electrons at ``s2`` = (sin theta / lambda)^2.

    Parameters
    ----------
    symbol : str
        Element symbol ("Pb") or a pseudo-atom of :data:`PSEUDO_ATOMS` ("Xma", "Xfa").
    s2 : numpy.ndarray
        (sin theta / lambda)^2, angstrom^-2, any shape.

    Returns
    -------
    numpy.ndarray
        f(s), same shape as ``s2``.

    Raises
    ------
    ValueError
        If no scattering parameters exist for ``symbol``.
    """
    if symbol in PSEUDO_ATOMS:
        return sum(n * scattering_factor(atom, s2) for atom, n in PSEUDO_ATOMS[symbol].items())
    coeff = ATOMIC_SCATTERING_PARAMS.get(symbol)
    if coeff is None:
        raise ValueError(f"no X-ray scattering factors for species {symbol!r}")
    a, b = np.asarray(coeff, dtype=float).T
    return Element(symbol).Z - _MOTT_BETHE * s2 * np.sum(a * np.exp(-b * s2[..., None]), axis=-1)


def lorentz_polarisation(two_theta_deg: np.ndarray) -> np.ndarray:
    """Lorentz-polarisation factor (1 + cos^2 2theta) / (sin^2 theta cos theta), unpolarised beam,
    no monochromator (the factor pymatgen's XRDCalculator applies)."""
    theta = np.radians(two_theta_deg) / 2.0
    return (1.0 + np.cos(2.0 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))


@dataclass(frozen=True)
class Reflections:
    """The reflection families of one structure up to a maximum Bragg angle.

    Attributes
    ----------
    hkl : numpy.ndarray float64 [P, 3]
        Representative Miller indices of each family (in the structure's own cell).
    multiplicity : numpy.ndarray float64 [P]
        Number of reflections in the family (Friedel mates included).
    f_squared : numpy.ndarray float64 [P]
        |F|^2 of one member, electrons^2, Debye-Waller factors included.
    members : numpy.ndarray float64 [P, M, 3]
        Every member of each family, NaN-padded to the largest family.
    lattice_matrix : numpy.ndarray [3, 3]
        Direct lattice, rows a, b, c in angstrom (pymatgen convention).
    abc : numpy.ndarray [3]
        Lattice lengths, angstrom.
    angles : numpy.ndarray [3]
        Lattice angles alpha, beta, gamma, degrees.
    """

    hkl: np.ndarray
    multiplicity: np.ndarray
    f_squared: np.ndarray
    members: np.ndarray = field(repr=False)
    lattice_matrix: np.ndarray = field(repr=False)
    abc: np.ndarray = field(repr=False)
    angles: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return int(self.hkl.shape[0])

    def two_theta(self, wavelength: float) -> np.ndarray:
        """Bragg angles [P] (degrees) of the families in the unstrained cell; NaN if unreachable."""
        metric = np.linalg.inv(self.lattice_matrix @ self.lattice_matrix.T)
        s = wavelength * np.sqrt(np.einsum("pi,ij,pj->p", self.hkl, metric, self.hkl)) / 2.0
        with np.errstate(invalid="ignore"):
            return np.degrees(2.0 * np.arcsin(np.where(s <= 1.0, s, np.nan)))

    def powder_intensity(self, wavelength: float) -> np.ndarray:
        """Integrated powder intensities [P]: multiplicity x |F|^2 x Lorentz-polarisation."""
        return self.multiplicity * self.f_squared * lorentz_polarisation(self.two_theta(wavelength))


def _laue_rotations(structure: Structure, symprec: float) -> np.ndarray:
    """Rotations [R, 3, 3] (fractional, acting on x) of the point group plus inversion (spglib)."""
    kinds = {sp: i for i, sp in enumerate(sorted({site.species_string for site in structure}))}
    cell = (structure.lattice.matrix, structure.frac_coords, [kinds[s.species_string] for s in structure])
    symmetry = spglib.get_symmetry(cell, symprec=symprec)
    if symmetry is None:
        raise ValueError(f"spglib found no symmetry for {structure.composition.reduced_formula}")
    rotations = np.unique(np.asarray(symmetry["rotations"]), axis=0)
    return np.unique(np.concatenate([rotations, -rotations]), axis=0)


def _miller_box(lattice_matrix: np.ndarray, q_max: float) -> np.ndarray:
    """Every (h, k, l) != 0 with |h*| <= q_max (angstrom^-1), float [N, 3]."""
    bound = np.floor(q_max * np.linalg.norm(lattice_matrix, axis=1)).astype(int)  # |h_i| <= q |a_i|
    axes = [np.arange(-b, b + 1) for b in bound]
    hkl = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3).astype(float)
    metric = np.linalg.inv(lattice_matrix @ lattice_matrix.T)
    q2 = np.einsum("ni,ij,nj->n", hkl, metric, hkl)
    return hkl[(q2 > 0) & (q2 <= q_max**2 * (1 + 1e-12))]


def _structure_factor_squared(structure: Structure, hkl: np.ndarray, s2: np.ndarray, b_factors: dict[str, float]) -> np.ndarray:
    """|F(hkl)|^2 [N] of the structure (occupancy-weighted, Debye-Waller per species)."""
    phases = np.exp(2j * math.pi * (hkl @ structure.frac_coords.T))  # [N, sites]
    by_species: dict[str, np.ndarray] = {}
    for j, site in enumerate(structure):
        for species, occupancy in site.species.items():
            weights = by_species.setdefault(species.symbol, np.zeros(len(structure)))
            weights[j] += occupancy
    amplitude = np.zeros(hkl.shape[0], dtype=complex)
    for symbol, weights in by_species.items():
        f = scattering_factor(symbol, s2) * np.exp(-b_factors.get(symbol, 0.0) * s2)
        amplitude += f * (phases @ weights)
    return (amplitude * amplitude.conj()).real


def compute_reflections(
    structure: Structure,
    wavelength: float,
    two_theta_max: float,
    b_factors: dict[str, float] | None = None,
    symprec: float = 1e-3,
) -> Reflections:
    """The reflection families of ``structure`` up to ``two_theta_max``.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        Ordered or disordered (partial occupancies); pseudo-atoms as ``DummySpecies("Xma")`` etc.
    wavelength : float
        Angstrom.
    two_theta_max : float
        Largest Bragg angle kept, degrees (0, 180].
    b_factors : dict, optional
        Isotropic Debye-Waller B per species symbol, angstrom^2 (intensity factor exp(-2 B s^2)).
    symprec : float
        spglib tolerance (angstrom) for the Laue group that groups equivalent reflections.

    Returns
    -------
    Reflections
        Families sorted by increasing Bragg angle; systematically absent ones (|F|^2 below
        1e-10 of the strongest) left out.

    Raises
    ------
    ValueError
        If the angle is out of range, the structure has no sites or a species has no factors.
    """
    if not 0.0 < two_theta_max <= 180.0 or not wavelength > 0:
        raise ValueError(f"need 0 < two_theta_max <= 180 deg and wavelength > 0, got {two_theta_max}, {wavelength}")
    if len(structure) == 0:
        raise ValueError("structure has no sites")
    matrix = np.array(structure.lattice.matrix, dtype=float)
    q_max = 2.0 * math.sin(math.radians(two_theta_max) / 2.0) / wavelength
    hkl = _miller_box(matrix, q_max)
    metric = np.linalg.inv(matrix @ matrix.T)
    s2 = np.einsum("ni,ij,nj->n", hkl, metric, hkl) / 4.0
    # families: the canonical member is the largest integer code of the orbit under the Laue group
    rotations = _laue_rotations(structure, symprec)
    images = np.einsum("rji,nj->nri", rotations, hkl)  # h' = R^T h
    span = int(np.abs(hkl).max()) + 1
    codes = ((images[..., 0] + span) * (2 * span + 1) + (images[..., 1] + span)) * (2 * span + 1) + images[..., 2] + span
    _, family, multiplicity = np.unique(codes.max(axis=1).astype(np.int64), return_inverse=True, return_counts=True)
    by_family = np.argsort(family, kind="stable")
    starts = np.concatenate([[0], np.cumsum(multiplicity)[:-1]])
    first = by_family[starts]  # one member of each family
    f_squared = _structure_factor_squared(structure, hkl[first], s2[first], b_factors or {})
    members = np.full((multiplicity.size, int(multiplicity.max()), 3), np.nan)
    members[family[by_family], np.arange(hkl.shape[0]) - starts[family[by_family]]] = hkl[by_family]
    present = f_squared > 1e-10 * f_squared.max()  # systematic absences (lattice centring, glides, screws)
    order = np.flatnonzero(present)[np.argsort(s2[first][present], kind="stable")]
    return Reflections(
        hkl=hkl[first][order], multiplicity=multiplicity[order].astype(float), f_squared=f_squared[order],
        members=members[order], lattice_matrix=matrix,
        abc=np.array(structure.lattice.abc), angles=np.array(structure.lattice.angles),
    )
