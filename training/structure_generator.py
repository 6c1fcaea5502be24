"""Random crystal structures of the seven space-group classes, for training data that teaches
symmetry rather than a fixed list of materials.

Two kinds of structure, both seeded by the caller's ``numpy.random.Generator``:

1. **Substituted prototypes** (:func:`substituted_structure`): the structure types of
   :mod:`crystals.prototypes` (cubic and tilted tetragonal perovskites, B'B''X6 and vacancy-ordered
   A2BX6 double perovskites, layered and dimer A3B2X9, and their monoclinic Pc / P2_1/c
   derivatives) with the A, B and X sites filled from the metal-halide chemistry of
   :mod:`training.halide_chemistry` (Cs, Rb, K, MA, FA; Pb, Sn, Ge, Bi, Sb and B'/B'' pairs;
   Cl, Br, I; two-ion mixtures as partial occupancies), lattice constants from ionic-radius
   relations across each family's published range, and the free Wyckoff coordinates jittered
   within their freedom (special positions stay special, so the space group is kept: the tests
   check every class with spglib).
2. **Random crystals** (:func:`random_crystal`): pyxtal's random symmetric crystals in the same
   space groups with metal-halide compositions (Fredericks, Parrish, Sayre & Zhu, Comput. Phys.
   Commun. 261, 107810 (2021)); Schopmans, Reiser & Friederich, Digital Discovery (2023),
   doi:10.1039/D3DD00071K, show that networks trained on such synthetic crystals classify unseen
   ICSD structure types better than networks trained on the ICSD crystals themselves. Each is kept only if spglib (0.1 A) finds the intended class.

Isotropic Debye-Waller factors (angstrom^2) are drawn per site kind: halide perovskites are soft
lattices with large thermal motion at room temperature (X about 2-5 A^2, molecular A cations
larger; e.g. Weller et al., Chem. Commun. 51, 4180 (2015) for MAPbI3).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

# The structure-type builders of the cited prototypes, reused so that there is one definition of
# each structure type's Wyckoff positions.
from crystals.prototypes import (
    FILM_TEXTURE,
    ORTHOHEXAGONAL,
    ORTHOHEXAGONAL_DOUBLE_C,
    SPACE_GROUP_NUMBERS,
    _cubic_perovskite,
    _dimer_a3b2x9,
    _double_perovskite,
    _layered_a3b2x9,
    _lower_symmetry,
    _tetragonal_perovskite,
    _vacancy_double_perovskite,
)
from training.halide_chemistry import Site, draw_site, family_lattice_a, species

__all__ = ["GeneratedStructure", "substituted_structure", "random_crystal", "draw_structure"]


@dataclass(frozen=True)
class GeneratedStructure:
    """A structure for the simulator with what the renderer needs to know about it.

    Attributes
    ----------
    structure : pymatgen.core.Structure
        The crystal (pseudo-atoms as DummySpecies "Xma"/"Xfa").
    space_group : str
        Class symbol (patterns.SPACE_GROUPS spelling).
    origin : str
        "substituted", "pyxtal", "prototype" or "cif".
    name : str
        Composition and structure type, for provenance.
    texture : tuple of (h, k, l)
        Known thin-film growth directions (may be empty: then only generic low-index ones).
    b_factors : dict
        Isotropic Debye-Waller B per species symbol, angstrom^2.
    """

    structure: Structure
    space_group: str
    origin: str
    name: str
    texture: tuple[tuple[int, int, int], ...] = ()
    b_factors: dict[str, float] = field(default_factory=dict)


def _b_factors(sites: dict[str, Site], rng: np.random.Generator) -> dict[str, float]:
    """Debye-Waller B per species symbol: A 2-6, B 1-3, X 2-5 angstrom^2 (uniform)."""
    ranges = {"A": (2.0, 6.0), "B": (1.0, 3.0), "B1": (1.0, 3.0), "B2": (1.0, 3.0), "X": (2.0, 5.0)}
    out: dict[str, float] = {}
    for kind, site in sites.items():
        value = float(rng.uniform(*ranges[kind]))
        for sp in species(site):
            out.setdefault(getattr(sp, "symbol", str(sp)), value)
    return out


def _jitter(rng: np.random.Generator, value: float, half: float) -> float:
    return float(value + rng.uniform(-half, half))


def _perovskite(space_group: str, rng: np.random.Generator) -> tuple[Structure, dict[str, Site], str]:
    """Pm-3m or I4/mcm ABX3 with substituted sites; I4/mcm with a random octahedral tilt."""
    sites = {"A": draw_site("A", rng), "B": draw_site("B2", rng), "X": draw_site("X", rng)}
    a_pc = family_lattice_a("perovskite", sites, rng)
    a, b, x = (species(sites[k]) for k in ("A", "B", "X"))
    if space_group == "Pm-3m":
        return _cubic_perovskite(a, b, x, a_pc), sites, "perovskite"
    # a0a0c- tilt phi: x(X2) = 1/4 - tan(phi) / 4 and a = sqrt(2) a_pc cos(phi) (rigid octahedra);
    # MAPbI3 at 293 K has phi ~ 7.6 deg (x = 0.2165, Kawamura 2002)
    phi = math.radians(rng.uniform(3.0, 13.0))
    lattice_a = math.sqrt(2.0) * a_pc * math.cos(phi)
    lattice_c = 2.0 * a_pc * (1.0 + rng.uniform(0.0, 0.006))
    return _tetragonal_perovskite(a, b, x, lattice_a, lattice_c, 0.25 - math.tan(phi) / 4.0), sites, "tilted perovskite"


def _fm3m(rng: np.random.Generator) -> tuple[Structure, dict[str, Site], str]:
    """B'B''X6 double perovskite or vacancy-ordered A2BX6, x(X) from the B-X bond length."""
    if rng.random() < 0.6:
        sites = {"A": draw_site("A_inorganic", rng), "B1": draw_site("B1", rng, 0.0),
                 "B2": draw_site("B3_double", rng, 0.2), "X": draw_site("X_double", rng)}
        a = family_lattice_a("double_perovskite", sites, rng)
        x_x = _jitter(rng, 0.9221 * (sites["B1"].radius + sites["X"].radius) / a, 0.006)
        args = [species(sites[k]) for k in ("A", "B1", "B2", "X")]
        return _double_perovskite(*args, a, x_x), sites, "double perovskite"
    sites = {"A": draw_site("A_inorganic", rng), "B": draw_site("B4", rng, 0.0), "X": draw_site("X", rng)}
    a = family_lattice_a("vacancy_perovskite", sites, rng)
    x_x = _jitter(rng, (sites["B"].radius + sites["X"].radius) / a, 0.006)
    args = [species(sites[k]) for k in ("A", "B", "X")]
    return _vacancy_double_perovskite(*args, a, x_x), sites, "vacancy-ordered A2BX6"


def _a3b2x9(space_group: str, rng: np.random.Generator) -> tuple[Structure, dict[str, Site], str]:
    """Layered (P-3m1, Pc, P2_1/c) or dimer (P6_3/mmc) A3B2X9, free coordinates jittered."""
    sites = {"A": draw_site("A", rng), "B": draw_site("B3", rng), "X": draw_site("X", rng)}
    a, b, x = (species(sites[k]) for k in ("A", "B", "X"))
    if space_group == "P6_3/mmc":
        lattice_a = family_lattice_a("dimer", sites, rng)
        coords = dict(z_a2=_jitter(rng, 0.5805, 0.01), z_b=_jitter(rng, 0.1547, 0.01), x_x1=_jitter(rng, 0.4925, 0.01),
                      x_x2=_jitter(rng, 0.1710, 0.01), z_x2=_jitter(rng, 0.0806, 0.008))
        return _dimer_a3b2x9(a, b, x, lattice_a, lattice_a * rng.uniform(2.49, 2.56), **coords), sites, "dimer A3B2X9"
    lattice_a = family_lattice_a("layered", sites, rng)
    coords = dict(z_a2=_jitter(rng, 0.6735, 0.015), z_b=_jitter(rng, 0.1917, 0.015), x_x2=_jitter(rng, 0.1679, 0.015),
                  z_x2=_jitter(rng, 0.3332, 0.015))
    c_over_a = rng.uniform(1.21, 1.25)
    if space_group == "P-3m1":
        return _layered_a3b2x9(a, b, x, lattice_a, lattice_a * c_over_a, **coords), sites, "layered A3B2X9"
    # the distortion matches atoms by species string, which mixed and pseudo-atom sites do not
    # have: distort an ordered stand-in (one element per site kind) and put the sites back after
    parent = _layered_a3b2x9("Cs", "Bi", "I", lattice_a, lattice_a * c_over_a, **coords)
    cell = ORTHOHEXAGONAL if space_group == "Pc" else ORTHOHEXAGONAL_DOUBLE_C
    lowered = _lower_symmetry(parent, cell, SPACE_GROUP_NUMBERS[space_group], seed=int(rng.integers(2**31)),
                              amplitude_angstrom=rng.uniform(0.12, 0.3), shear_deg=rng.uniform(0.5, 2.5))
    lowered.replace_species({"Cs": a, "Bi": b, "I": x})
    return lowered, sites, f"layered A3B2X9 distorted to {space_group}"


def substituted_structure(space_group: str, rng: np.random.Generator) -> GeneratedStructure:
    """A prototype structure type of ``space_group`` with substituted sites, lattice and coordinates.

    Raises
    ------
    ValueError
        If ``space_group`` is not one of the seven classes.
    """
    if space_group in ("Pm-3m", "I4/mcm"):
        structure, sites, kind = _perovskite(space_group, rng)
    elif space_group == "Fm-3m":
        structure, sites, kind = _fm3m(rng)
    elif space_group in ("P-3m1", "P6_3/mmc", "Pc", "P2_1/a"):
        structure, sites, kind = _a3b2x9(space_group, rng)
    else:
        raise ValueError(f"unknown space group {space_group!r}; known: {sorted(SPACE_GROUP_NUMBERS)}")
    name = "".join(site.label for site in sites.values()) + f" ({kind})"
    return GeneratedStructure(structure, space_group, "substituted", name, FILM_TEXTURE[space_group], _b_factors(sites, rng))


#: Formula units (A, B, X counts) of random crystals: ABX3, A2BX4, A3B2X9, A2BX6, AB2X5, A3BX5,
#: A4BX6, ABX4 (all known metal-halide stoichiometries).
_FORMULAE = ((1, 1, 3), (2, 1, 4), (3, 2, 9), (2, 1, 6), (1, 2, 5), (3, 1, 5), (4, 1, 6), (1, 1, 4))
_RANDOM_ELEMENTS = {"A": ("Cs", "Rb", "K"), "B": ("Pb", "Sn", "Ge", "Bi", "Sb"), "X": ("Cl", "Br", "I")}
_MAX_ATOMS = 40


@functools.lru_cache(maxsize=None)
def _compatible_counts(number: int) -> tuple[tuple[int, int, int], ...]:
    """Ion counts (formula x Z, Z in 1, 2, 4, 8, at most _MAX_ATOMS atoms) that the Wyckoff
    positions of space group ``number`` can hold (pyxtal's check): the others always fail."""
    from pyxtal.symmetry import Group

    group = Group(number)
    counts = {tuple(n * z for n in f) for f in _FORMULAE for z in (1, 2, 4, 8)}
    return tuple(sorted(c for c in counts if sum(c) <= _MAX_ATOMS and group.check_compatible(list(c))[0]))


def random_crystal(space_group: str, rng: np.random.Generator, max_tries: int = 8) -> GeneratedStructure | None:
    """A pyxtal random crystal of ``space_group`` with a metal-halide composition, or None if
    ``max_tries`` attempts gave none that spglib (0.1 A) puts in the class."""
    from pyxtal import pyxtal  # heavy import: only when random crystals are asked for

    number = SPACE_GROUP_NUMBERS[space_group]
    options = _compatible_counts(number)
    for _ in range(max_tries if options else 0):
        counts = list(options[int(rng.integers(len(options)))])
        elements = [values[int(rng.integers(len(values)))] for values in _RANDOM_ELEMENTS.values()]
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, number, elements, counts, random_state=int(rng.integers(2**31)))
            if not crystal.valid:
                continue
            structure = crystal.to_pymatgen()
            found = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        except Exception:  # pyxtal raises on some Wyckoff combinations it cannot fill: draw another
            continue
        if found != number:
            continue
        b = float(rng.uniform(0.5, 4.0))
        name = f"{structure.composition.reduced_formula} (pyxtal random)"
        return GeneratedStructure(structure, space_group, "pyxtal", name, (), {el: b for el in elements})
    return None


def draw_structure(space_group: str, rng: np.random.Generator, random_fraction: float = 0.2) -> GeneratedStructure:
    """A substituted prototype, or with probability ``random_fraction`` a pyxtal random crystal
    (a substituted prototype when pyxtal gives none)."""
    if rng.random() < random_fraction:
        crystal = random_crystal(space_group, rng)
        if crystal is not None:
            return crystal
    return substituted_structure(space_group, rng)
