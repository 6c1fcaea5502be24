"""Powder-diffraction peak lists of crystal structures (pymatgen XRDCalculator), cached.

A :class:`PeakList` keeps, beside positions and intensities, every symmetry-equivalent member of
each reflection, so that texture (March-Dollase) can be averaged over a family and the peak
positions of a strained lattice can be recomputed from the stored Miller indices without another
pymatgen call (:func:`two_theta_for_lattice`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.diffraction.xrd import WAVELENGTHS, XRDCalculator
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

__all__ = ["PeakList", "peak_list", "two_theta_for_lattice", "d_spacings_for_lattice", "wavelength_angstrom"]


@dataclass(frozen=True)
class PeakList:
    """Bragg reflections of one structure (arrays are read-only).

    Attributes
    ----------
    two_theta : numpy.ndarray [n]
        Peak positions, degrees 2theta, increasing.
    intensity : numpy.ndarray [n]
        Integrated intensity (Lorentz-polarisation and multiplicity included), relative, max 100.
    hkls : list of tuple[int, int, int]
        Miller indices of the first family at each peak as pymatgen reports it, with the
        hexagonal four-index (h, k, i, l) reduced to (h, k, l).
    d_spacing : numpy.ndarray [n]
        Interplanar spacing, angstrom.
    members : tuple of numpy.ndarray [m_i, 3]
        All symmetry-equivalent (h, k, l) of every family that contributes to each peak
        (Laue symmetry, Friedel pairs included), for texture averaging and strain.
    wavelength : float
        Wavelength used, angstrom.
    lattice_matrix : numpy.ndarray [3, 3]
        Direct lattice (rows, angstrom) the hkls refer to.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    hkls: list[tuple[int, int, int]]
    d_spacing: np.ndarray
    members: tuple[np.ndarray, ...] = field(repr=False, default=())
    wavelength: float = WAVELENGTHS["CuKa"]
    lattice_matrix: np.ndarray = field(repr=False, default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        n = len(self.two_theta)
        if not (len(self.intensity) == len(self.hkls) == len(self.d_spacing) == n):
            raise ValueError("PeakList: two_theta, intensity, hkls and d_spacing must have equal lengths")
        if self.members and len(self.members) != n:
            raise ValueError("PeakList: members must hold one array per peak")
        for arr in (self.two_theta, self.intensity, self.d_spacing, self.lattice_matrix, *self.members):
            if isinstance(arr, np.ndarray):
                arr.setflags(write=False)

    def __len__(self) -> int:
        return len(self.two_theta)


def wavelength_angstrom(wavelength: str | float) -> float:
    """Wavelength in angstrom from a pymatgen name ("CuKa", "CuKa1", ...) or a number."""
    if isinstance(wavelength, str):
        try:
            return float(WAVELENGTHS[wavelength])
        except KeyError:
            raise ValueError(f"unknown wavelength {wavelength!r}; known: {', '.join(WAVELENGTHS)}") from None
    value = float(wavelength)
    if not value > 0:
        raise ValueError("wavelength must be > 0 angstrom")
    return value


def _structure_key(structure: Structure, two_theta_range: tuple[float, float], wavelength: float) -> str:
    """Content hash of a structure (lattice, species, occupancies, coordinates) and settings."""
    h = hashlib.sha1()
    h.update(np.round(structure.lattice.matrix, 6).tobytes())
    h.update(np.round(structure.frac_coords % 1.0, 6).tobytes())
    h.update(";".join(str(site.species) for site in structure).encode())
    h.update(np.array([*two_theta_range, wavelength]).tobytes())
    return h.hexdigest()


_CACHE: dict[str, PeakList] = {}
_CACHE_LIMIT = 512


def _laue_rotations(structure: Structure) -> np.ndarray:
    """Rotation parts (fractional, acting on x) of the point group plus inversion."""
    ops = SpacegroupAnalyzer(structure, symprec=0.01).get_symmetry_operations(cartesian=False)
    rots = {tuple(np.round(op.rotation_matrix).astype(int).ravel()) for op in ops}
    rots |= {tuple(-np.array(r)) for r in rots}
    return np.array([np.array(r).reshape(3, 3) for r in rots])


def _three_index(hkl: tuple[int, ...]) -> tuple[int, int, int]:
    """(h, k, l) from pymatgen's (h, k, l) or hexagonal Miller-Bravais (h, k, i, l)."""
    if len(hkl) == 4:
        return (int(hkl[0]), int(hkl[1]), int(hkl[3]))
    return (int(hkl[0]), int(hkl[1]), int(hkl[2]))


def _family_members(hkl: tuple[int, int, int], rotations: np.ndarray) -> np.ndarray:
    """All h' = R^T h (reciprocal vectors transform with the transpose), unique rows."""
    images = np.einsum("nji,j->ni", rotations, np.asarray(hkl))
    return np.unique(images, axis=0)


def peak_list(
    structure: Structure,
    two_theta_range: tuple[float, float] = (5.0, 90.0),
    wavelength: str | float = "CuKa",
) -> PeakList:
    """Powder peak list of ``structure`` from pymatgen's XRDCalculator (cached per structure).

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The crystal structure (ordered or with partial occupancies).
    two_theta_range : tuple of float
        (min, max) in degrees 2theta, 0 <= min < max <= 180.
    wavelength : str or float
        Pymatgen wavelength name ("CuKa" = K-alpha1/K-alpha2 weighted mean 1.54184 A,
        "CuKa1" = 1.54056 A, ...) or angstrom.

    Returns
    -------
    PeakList
        Cached: the same object is returned for an identical structure and settings.

    Raises
    ------
    ValueError
        If the range or wavelength is invalid, or the structure is not a pymatgen Structure.
    """
    if not isinstance(structure, Structure):
        raise ValueError(f"peak_list needs a pymatgen Structure, got {type(structure).__name__}")
    lo, hi = (float(v) for v in two_theta_range)
    if not (0.0 <= lo < hi <= 180.0):
        raise ValueError(f"two_theta_range must satisfy 0 <= min < max <= 180 degrees, got {two_theta_range}")
    lam = wavelength_angstrom(wavelength)
    key = _structure_key(structure, (lo, hi), lam)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    pattern = XRDCalculator(wavelength=lam).get_pattern(structure, scaled=True, two_theta_range=(lo, hi))
    rotations = _laue_rotations(structure)
    members = []
    for families in pattern.hkls:
        rows = np.concatenate([_family_members(_three_index(f["hkl"]), rotations) for f in families])
        members.append(np.unique(rows, axis=0).astype(np.int64))
    result = PeakList(
        two_theta=np.asarray(pattern.x, dtype=float),
        intensity=np.asarray(pattern.y, dtype=float),
        hkls=[_three_index(families[0]["hkl"]) for families in pattern.hkls],
        d_spacing=np.asarray(pattern.d_hkls, dtype=float),
        members=tuple(members),
        wavelength=lam,
        lattice_matrix=np.array(structure.lattice.matrix, dtype=float),
    )
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = result
    return result


def _reciprocal_metric(lattice: Lattice | np.ndarray) -> np.ndarray:
    """G* = (A A^T)^-1 for lattice matrices A [..., 3, 3] (rows = lattice vectors)."""
    matrix = np.asarray(getattr(lattice, "matrix", lattice), dtype=float)
    if matrix.shape[-2:] != (3, 3):
        raise ValueError("lattice must be a 3x3 matrix (or a batch [..., 3, 3])")
    return np.linalg.inv(matrix @ np.swapaxes(matrix, -1, -2))


def d_spacings_for_lattice(hkls: np.ndarray, lattice: Lattice | np.ndarray) -> np.ndarray:
    """Interplanar spacings ``d = 1 / sqrt(h^T G* h)`` for a lattice or a batch of lattices.

    Parameters
    ----------
    hkls : numpy.ndarray [n, 3]
        Miller indices (one representative per peak suffices when the strain keeps the symmetry).
    lattice : pymatgen.core.Lattice or numpy.ndarray [3, 3] or [B, 3, 3]
        Direct lattice(s), rows in angstrom.

    Returns
    -------
    numpy.ndarray [n] or [B, n]
        d-spacings, angstrom.
    """
    g = _reciprocal_metric(lattice)
    h = np.asarray(hkls, dtype=float)
    q2 = np.einsum("ni,...ij,nj->...n", h, g, h)
    return 1.0 / np.sqrt(q2)


def two_theta_for_lattice(
    hkls: np.ndarray, lattice: Lattice | np.ndarray, wavelength: str | float = "CuKa"
) -> np.ndarray:
    """Bragg angles ``2 asin(lambda / 2d)`` of ``hkls`` for a (strained) lattice or a batch.

    Reflections beyond the limiting sphere (lambda / 2d > 1) come back as NaN.

    Returns
    -------
    numpy.ndarray [n] or [B, n]
        Degrees 2theta.
    """
    lam = wavelength_angstrom(wavelength)
    s = lam / (2.0 * d_spacings_for_lattice(hkls, lattice))
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(s <= 1.0, s, np.nan)))
