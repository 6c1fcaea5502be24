"""Metal-halide site chemistry: which ions sit on the A, B and X sites, their radii, and the lattice
constants they imply, for element substitution in simulated training structures.

Ionic radii (angstrom) are Shannon's (R. D. Shannon, Acta Cryst. A 32, 751 (1976); A site
12-coordinate, B and X 6-coordinate), except Sn2+ (1.10, the revised value of Travis, Glover,
Bronstein, Scanlon & Palgrave, Chem. Sci. 7, 4548 (2016)) and the effective radii of the
molecular cations methylammonium (2.17) and formamidinium (2.53) of Kieslich, Sun & Cheetham,
Chem. Sci. 5, 4712 (2014), and Ge2+, whose lone pair off-centres it in its octahedron so that
its Shannon radius (0.73) does not set the lattice: an effective 1.07 reproduces CsGeBr3
(pseudo-cubic a = 5.64 A, approx.; Thiele, Rotter & Schmidt, Z. Anorg. Allg. Chem. 545, 148
(1987)). Molecular cations are the pseudo-atoms of
:data:`training.reflections.PSEUDO_ATOMS` (``DummySpecies("Xma")``, ``DummySpecies("Xfa")``).

Lattice constants follow ionic-radius relations, each scaled once to a cited anchor compound
(the prototypes of :mod:`crystals.prototypes`), with Vegard's law (L. Vegard, Z. Phys. 5, 17
(1921); linear lattice-composition relation of mixed halides: Noh et al., Nano Lett. 13, 1764
(2013)) for mixed sites:

- corner-sharing ABX3: pseudo-cubic a_pc = k 2 (r_B + r_X) + 0.12 (r_A - r_Cs), k from CsPbBr3
  (a = 5.87 A, Moller 1958); checks: MAPbI3-cubic 6.35 (6.3285 measured), CsPbCl3 5.59 (5.605),
  FAPbI3 6.39 (6.362);
- B'B''X6 double perovskites: a = k' 2 (r_B' + r_B'' + 2 r_X), k' from Cs2AgBiBr6 (11.2499 A,
  Slavney 2016); Cs2AgBiCl6 10.70 (10.777), Cs2AgInCl6 10.27 (10.467);
- vacancy-ordered A2BX6 (K2PtCl6 type), set by the A-X contacts: a = k'' 2 sqrt(2) (r_A + r_X),
  k'' from Cs2SnI6 (11.65 A, Lee 2014); Cs2SnBr6 10.97 (10.84);
- A3B2X9 (close-packed A3X9 layers): a = a0 + 2.04 (r_X - r_X0) + 0.6 (r_A - r_Cs)
  + 0.16 (r_B - r_Bi), the slopes from the cited prototypes (Br -> I: Cs3Sb2Br9 7.93 ->
  Cs3Sb2I9 8.420; Cs -> MA: Cs3Bi2I9 8.4116 -> MA3Bi2I9 8.5915; Bi -> Sb: Cs3Bi2Br9 7.972 ->
  Cs3Sb2Br9 7.93), a0 from Cs3Bi2Br9 (layered, 7.972 A, Lazarini 1977) and Cs3Bi2I9 (dimer,
  8.4116 A, Lehner 2015); c/a is drawn in the range of the cited compounds (layered
  1.226-1.238, dimer 2.516-2.532, each widened by 1-2 %).

Every draw is then spread by a relative jitter (default +-2 %, the scatter of the relations about
the measured values above) and kept within the family's range: the smallest and largest cited
lattice constant, widened by 8 % (the relations extrapolate beyond the measured compounds for,
e.g., K and Rb chlorides; wider than that they are not trusted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pymatgen.core import DummySpecies

__all__ = ["FAMILY_LATTICE", "IONIC_RADII", "SITE_IONS", "Site", "draw_site", "family_lattice_a", "mean_radius", "species"]

#: Ionic radii, angstrom (see the module docstring for sources).
IONIC_RADII: dict[str, float] = {
    # A site (XII)
    "Cs": 1.88, "Rb": 1.72, "K": 1.64, "MA": 2.17, "FA": 2.53,
    # B site (VI): divalent, trivalent, monovalent (double perovskites), tetravalent (A2BX6)
    "Pb": 1.19, "Sn": 1.10, "Ge": 1.07, "Bi": 1.03, "Sb": 0.76, "In": 0.80,
    "Ag": 1.15, "Na": 1.02, "Te": 0.97, "Ti": 0.605, "Zr": 0.72, "Sn4": 0.69,
    # X site (VI)
    "Cl": 1.81, "Br": 1.96, "I": 2.20,
}

#: Ions that may occupy each site kind.
SITE_IONS: dict[str, tuple[str, ...]] = {
    "A": ("Cs", "Rb", "K", "MA", "FA"),
    "A_inorganic": ("Cs", "Rb", "K"),
    "B2": ("Pb", "Sn", "Ge"),            # ABX3 perovskites
    "B3": ("Bi", "Sb"),                  # A3B2X9
    "B1": ("Ag", "Na"),                  # B' of B'B''X6
    "B3_double": ("Bi", "Sb", "In"),     # B'' of B'B''X6
    "B4": ("Sn4", "Te", "Ti", "Zr"),     # A2BX6
    "X": ("Cl", "Br", "I"),
    # B'B''X6 double perovskites: chlorides and bromides (the iodides are unstable as bulk
    # elpasolites, and their lattice, ~12 A, lies outside the cited range of the family)
    "X_double": ("Cl", "Br"),
}

_PSEUDO = {"MA": "Xma", "FA": "Xfa", "Sn4": "Sn"}


@dataclass(frozen=True)
class Site:
    """A (possibly mixed) site: ion -> occupancy, occupancies summing to 1."""

    occupancy: dict[str, float]

    @property
    def radius(self) -> float:
        """Occupancy-weighted ionic radius, angstrom (Vegard)."""
        return mean_radius(self.occupancy)

    @property
    def label(self) -> str:
        """Short composition, e.g. "Cs0.5MA0.5" or "Br"."""
        if len(self.occupancy) == 1:
            return next(iter(self.occupancy)).replace("Sn4", "Sn")
        return "".join(f"{k.replace('Sn4', 'Sn')}{v:.2g}" for k, v in self.occupancy.items())


def mean_radius(occupancy: dict[str, float]) -> float:
    """Occupancy-weighted radius of a mixed site, angstrom; ValueError for an unknown ion."""
    unknown = set(occupancy) - set(IONIC_RADII)
    if unknown:
        raise ValueError(f"no ionic radius for {sorted(unknown)}; known: {sorted(IONIC_RADII)}")
    return sum(IONIC_RADII[ion] * occ for ion, occ in occupancy.items())


def species(site: Site) -> dict:
    """pymatgen species mapping of a site (molecular cations as pseudo-atom DummySpecies)."""
    out: dict = {}
    for ion, occ in site.occupancy.items():
        symbol = _PSEUDO.get(ion, ion)
        key = DummySpecies(symbol) if symbol.startswith("X") else symbol
        out[key] = out.get(key, 0.0) + occ
    return out


def draw_site(kind: str, rng: np.random.Generator, mix_probability: float = 0.3) -> Site:
    """A random site of ``kind`` (a key of :data:`SITE_IONS`): one ion, or with probability
    ``mix_probability`` a two-ion solid solution with a uniform fraction in [0.1, 0.9]."""
    ions = SITE_IONS[kind]
    first = ions[int(rng.integers(len(ions)))]
    if len(ions) < 2 or rng.random() >= mix_probability:
        return Site({first: 1.0})
    second = [i for i in ions if i != first][int(rng.integers(len(ions) - 1))]
    fraction = float(np.round(rng.uniform(0.1, 0.9), 2))
    return Site({first: fraction, second: round(1.0 - fraction, 2)})


_SQRT2 = math.sqrt(2.0)
_K_PEROVSKITE = 5.87 / (2 * (1.19 + 1.96))            # CsPbBr3
_K_DOUBLE = 11.2499 / (2 * (1.15 + 1.03 + 2 * 1.96))  # Cs2AgBiBr6
_K_VACANCY = 11.65 / (2 * _SQRT2 * (1.88 + 2.20))     # Cs2SnI6

_RANGE_MARGIN = 0.08  # relative widening of the cited range of a family (see the module docstring)

#: Family -> (smallest, largest) cited lattice constant a, angstrom, before the 8 % widening:
#: ABX3 pseudo-cubic CsPbCl3 5.605 - FAPbI3 6.362; double perovskites Cs2AgInCl6 10.467 -
#: Cs2AgBiBr6 11.2499; A2BX6 Cs2SnCl6 10.38 - Cs2TeI6 11.72; layered A3B2X9 Rb3Sb2Br9 7.80 -
#: Cs3Sb2I9 8.420; dimer A3B2X9 Cs3Cr2Cl9 7.22 (the structure type's chloride prototype, approx.:
#: Wessel & IJdo, Acta Cryst. 10, 466 (1957)) - MA3Bi2I9 8.5915 (other sources in crystals.prototypes).
FAMILY_LATTICE: dict[str, tuple[float, float]] = {
    "perovskite": (5.605, 6.362),
    "double_perovskite": (10.467, 11.2499),
    "vacancy_perovskite": (10.38, 11.72),
    "layered": (7.80, 8.420),
    "dimer": (7.22, 8.5915),
}


def family_lattice_a(family: str, sites: dict[str, Site], rng: np.random.Generator, jitter: float = 0.02) -> float:
    """Lattice constant a (angstrom) of ``family`` for the given sites, jittered and clipped.

    ``perovskite`` returns the pseudo-cubic a_pc (the I4/mcm cell is built from it); the others
    the conventional a. Sites: "A", "B" (or "B1"/"B2" for double perovskites), "X".
    """
    r_a, r_x = sites["A"].radius, sites["X"].radius
    if family == "perovskite":
        a = _K_PEROVSKITE * 2 * (sites["B"].radius + r_x) + 0.12 * (r_a - IONIC_RADII["Cs"])
    elif family == "double_perovskite":
        a = _K_DOUBLE * 2 * (sites["B1"].radius + sites["B2"].radius + 2 * r_x)
    elif family == "vacancy_perovskite":
        a = _K_VACANCY * 2 * _SQRT2 * (r_a + r_x)
    elif family in ("layered", "dimer"):
        a0, x0 = (7.972, IONIC_RADII["Br"]) if family == "layered" else (8.4116, IONIC_RADII["I"])
        a = a0 + 2.04 * (r_x - x0) + 0.6 * (r_a - IONIC_RADII["Cs"]) + 0.16 * (sites["B"].radius - IONIC_RADII["Bi"])
    else:
        raise ValueError(f"unknown family {family!r}; known: {sorted(FAMILY_LATTICE)}")
    lo, hi = FAMILY_LATTICE[family]
    return float(np.clip(a * (1.0 + rng.uniform(-jitter, jitter)), lo * (1.0 - _RANGE_MARGIN), hi * (1.0 + _RANGE_MARGIN)))
