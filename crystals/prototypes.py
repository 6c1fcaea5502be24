"""Metal-halide prototype structures for the seven space-group classes of Oviedo et al. (2019).

Each structure is built with pymatgen from a space group, lattice constants and Wyckoff positions
taken from the literature (citation beside each entry). Some lattice constants and free
coordinates are quoted from memory of the cited papers and are marked "approx." in the citation:
they are good to about 1 % (lattice) or 0.01 (fractional coordinates), which is inside the lattice
variation the training-data simulator applies anyway.

Molecular cations cannot be written as single atoms, so they are replaced by an atom with about
the same number of electrons (X-ray scattering power at low angle), as is common in quick
powder-pattern simulations:

- methylammonium CH3NH3+ (18 electrons) -> K (19 electrons),
- formamidinium CH(NH2)2+ (24 electrons) -> Cr (24 electrons).

The stand-in scatters like a point, while the real cation is spread out and often disordered, so
high-angle intensities of the A site are overestimated slightly.

Two classes, Pc (No. 7) and P2_1/a (= P2_1/c, No. 14), hold layered A3B2X9 compounds
(Rb3Bi2I9, Rb3Bi2Br9, ...) whose full structures (up to 56 atoms in the cell, 10-20 free
coordinates) we cannot quote reliably. They are derived here instead: the layered P-3m1
Cs3Bi2Br9-type parent with the right ions and lattice is expanded to the orthohexagonal
(a, sqrt(3) a, c) or doubled (a, sqrt(3) a, 2c) cell, as in the real monoclinic structures
(e.g. Rb3Sb2I9, P2_1/n, a = 14.64, b = 8.20, c = 20.95 A, approx., Harikesh et al. 2016,
Chem. Mater. 28, 7496), and given a seeded random displacement field (about 0.2-0.3 A) and a
monoclinic shear, symmetrised over a subgroup of the parent's operations that spglib identifies
as the target space group. These are "plausible structures of the right symmetry and chemistry",
not refined ones, and are marked ``derived`` in their citation.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import spglib
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

__all__ = [
    "Prototype",
    "PROTOTYPES",
    "IMPURITY_PHASES",
    "FILM_TEXTURE",
    "SPACE_GROUP_NUMBERS",
    "get_structure",
    "list_structures",
    "get_prototype",
]

#: International Tables number of each class symbol used by the project (patterns.SPACE_GROUPS).
SPACE_GROUP_NUMBERS: dict[str, int] = {
    "Fm-3m": 225,
    "I4/mcm": 140,
    "P2_1/a": 14,
    "P-3m1": 164,
    "P6_3/mmc": 194,
    "Pc": 7,
    "Pm-3m": 221,
}

#: Growth textures of thin films per class (Miller indices in each prototype's own cell), the
#: directions a training-data simulator should prefer: the perovskite (100) planes (in I4/mcm the
#: pseudo-cubic (100) is (110) or (001)), and for the layered and dimer A3B2X9 compounds the
#: planes of the layers, (001), which is also the (001) of the derived monoclinic cells (see
#: _lower_symmetry). For the double perovskites no single habit dominates reported films.
FILM_TEXTURE: dict[str, tuple[tuple[int, int, int], ...]] = {
    "Pm-3m": ((1, 0, 0),),
    "I4/mcm": ((1, 1, 0), (0, 0, 1)),
    "Fm-3m": ((1, 0, 0), (1, 1, 1), (1, 1, 0)),
    "P-3m1": ((0, 0, 1),),
    "P6_3/mmc": ((0, 0, 1),),
    "Pc": ((0, 0, 1),),
    "P2_1/a": ((0, 0, 1),),
}

# Electron-count stand-ins for molecular cations (see module docstring).
MA = "K"
FA = "Cr"


@dataclass(frozen=True)
class Prototype:
    """One literature (or derived) structure.

    Attributes
    ----------
    name : str
        Unique name, e.g. "CsPbBr3" or "MAPbI3-cubic".
    space_group : str
        Class symbol as in patterns.SPACE_GROUPS (e.g. "P2_1/a").
    citation : str
        Source of lattice constants and positions: authors, journal, year, and flags
        "approx." (quoted from memory, ~1 %), "estimated" (lattice scaled from an analogue)
        or "derived" (symmetry-lowered from a parent, see the module docstring).
    citation_key : str
        Short key for provenance records, e.g. "Weller2015".
    build : Callable[[], Structure]
        Builds the structure (called once, cached).
    note : str
        Anything a user should know (stand-in atoms, real symmetry differing from the label).
    """

    name: str
    space_group: str
    citation: str
    citation_key: str
    build: Callable[[], Structure]
    note: str = ""


def _hall_number(space_group_number: int) -> int:
    """First (standard-setting) Hall number of an International Tables space-group number."""
    for hall in range(1, 531):
        if spglib.get_spacegroup_type(hall).number == space_group_number:
            return hall
    raise ValueError(f"no space group number {space_group_number}")


_SYMBOL_TO_NUMBER = {"Pm-3m": 221, "I4/mcm": 140, "Fm-3m": 225, "P-3m1": 164, "P6_3/mmc": 194, "P4_2/mnm": 136, "Ia-3": 206}


def _from_spacegroup(
    symbol: str, lattice: Lattice, species: list[str | dict[str, float]], coords: list[list[float]]
) -> Structure:
    """Structure from a space group and its asymmetric unit (standard ITA setting).

    Equivalent to pymatgen's ``Structure.from_spacegroup`` but takes the operations from spglib's
    database (pymatgen rebuilds each group from its generators, ~0.3-1.4 s per call here).
    """
    dataset = spglib.get_symmetry_from_database(_hall_number(_SYMBOL_TO_NUMBER[symbol]))
    rotations, translations = dataset["rotations"], dataset["translations"]
    all_species, all_coords = [], []
    for sp, xyz in zip(species, coords):
        images = (np.einsum("nij,j->ni", rotations, np.asarray(xyz, dtype=float)) + translations) % 1.0
        unique: list[np.ndarray] = []
        for image in images:
            if not any(np.all(np.abs((image - u + 0.5) % 1.0 - 0.5) < 1e-4) for u in unique):
                unique.append(image)
        all_species.extend([sp] * len(unique))
        all_coords.extend(unique)
    return Structure(lattice, all_species, all_coords)


# --------------------------------------------------------------------------------------------
# Structure-type builders (standard settings of the International Tables, origin choice 2)
# --------------------------------------------------------------------------------------------


def _cubic_perovskite(
    a: str | dict[str, float], b: str | dict[str, float], x: str | dict[str, float], lattice_a: float
) -> Structure:
    """ABX3, Pm-3m: B 1a (0,0,0), A 1b (1/2,1/2,1/2), X 3d (1/2,0,0)."""
    return _from_spacegroup(
        "Pm-3m", Lattice.cubic(lattice_a), [a, b, x], [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]]
    )


def _tetragonal_perovskite(
    a: str, b: str | dict[str, float], x: str, lattice_a: float, lattice_c: float, x_eq: float
) -> Structure:
    """ABX3, I4/mcm (a0a0c- tilt; a = sqrt(2) a_p, c = 2 a_p).

    A 4b (0,1/2,1/4), B 4c (0,0,0), X1 (apical) 4a (0,0,1/4), X2 (equatorial) 8h (x, x+1/2, 0);
    x = 1/4 is the untilted limit, the octahedral tilt angle is about atan(4 (1/4 - x)).
    """
    return _from_spacegroup(
        "I4/mcm",
        Lattice.tetragonal(lattice_a, lattice_c),
        [a, b, x, x],
        [[0, 0.5, 0.25], [0, 0, 0], [0, 0, 0.25], [x_eq, x_eq + 0.5, 0]],
    )


def _double_perovskite(
    a: str, b1: str, b2: str, x: str, lattice_a: float, x_x: float
) -> Structure:
    """A2B(I)B(III)X6 elpasolite, Fm-3m: A 8c (1/4,1/4,1/4), B 4a (0,0,0), B' 4b (1/2,1/2,1/2),
    X 24e (x,0,0) with x ~ d(B-X) / a."""
    return _from_spacegroup(
        "Fm-3m",
        Lattice.cubic(lattice_a),
        [a, b1, b2, x],
        [[0.25, 0.25, 0.25], [0, 0, 0], [0.5, 0.5, 0.5], [x_x, 0, 0]],
    )


def _vacancy_double_perovskite(a: str, b: str, x: str, lattice_a: float, x_x: float) -> Structure:
    """A2BX6 (K2PtCl6 type), Fm-3m: A 8c, B 4a, X 24e (x,0,0); 4b empty."""
    return _from_spacegroup(
        "Fm-3m", Lattice.cubic(lattice_a), [a, b, x], [[0.25, 0.25, 0.25], [0, 0, 0], [x_x, 0, 0]]
    )


def _layered_a3b2x9(
    a: str, b: str, x: str, lattice_a: float, lattice_c: float,
    z_a2: float = 0.6735, z_b: float = 0.1917, x_x2: float = 0.1679, z_x2: float = 0.3332,
) -> Structure:
    """A3B2X9 corrugated-layer (Cs3Bi2Br9 type), P-3m1, Z = 1.

    A1 1a (0,0,0), A2 2d (1/3,2/3,z), B 2d (1/3,2/3,z), X1 (bridging) 3e (1/2,0,0),
    X2 (terminal) 6i (x,-x,z). Default free coordinates: Cs3Bi2Br9 (Lazarini 1977, approx.).
    """
    return _from_spacegroup(
        "P-3m1",
        Lattice.hexagonal(lattice_a, lattice_c),
        [a, a, b, x, x],
        [[0, 0, 0], [1 / 3, 2 / 3, z_a2], [1 / 3, 2 / 3, z_b], [0.5, 0, 0], [x_x2, -x_x2, z_x2]],
    )


def _dimer_a3b2x9(
    a: str, b: str, x: str, lattice_a: float, lattice_c: float,
    z_a2: float = 0.5805, z_b: float = 0.1547, x_x1: float = 0.4925, x_x2: float = 0.1710,
    z_x2: float = 0.0806,
) -> Structure:
    """A3B2X9 isolated face-sharing dimers [B2X9]3- (Cs3Cr2Cl9 type), P6_3/mmc, Z = 2.

    A1 2b (0,0,1/4), A2 4f (1/3,2/3,z), B 4f (1/3,2/3,z), X1 (bridging) 6h (x,2x,1/4),
    X2 (terminal) 12k (x,2x,z). Default free coordinates: Cs3Bi2I9 (approx.; the ideal
    close-packed values are z_A2 = 7/12, z_B = 1/6, x_X1 = 1/2, x_X2 = 1/6, z_X2 = 1/12).
    """
    return _from_spacegroup(
        "P6_3/mmc",
        Lattice.hexagonal(lattice_a, lattice_c),
        [a, a, b, x, x],
        [[0, 0, 0.25], [1 / 3, 2 / 3, z_a2], [1 / 3, 2 / 3, z_b], [x_x1, 2 * x_x1, 0.25], [x_x2, 2 * x_x2, z_x2]],
    )


# --------------------------------------------------------------------------------------------
# Symmetry lowering for the monoclinic classes (see module docstring)
# --------------------------------------------------------------------------------------------


def _atom_permutation(frac: np.ndarray, species: list[str], rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Index j of the atom that site i maps onto under x -> rot x + trans (periodic)."""
    mapped = frac @ rot.T + trans
    perm = np.empty(len(frac), dtype=int)
    for i, m in enumerate(mapped):
        diff = frac - m
        diff -= np.round(diff)
        dist = np.linalg.norm(diff, axis=1)
        j = int(np.argmin(dist))
        if dist[j] > 1e-3 or species[j] != species[i]:
            raise ValueError("operation is not a symmetry of the parent")
        perm[i] = j
    return perm


def _group_closure(generators: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """All products of the generators, translations taken modulo the cell."""
    group = [(np.eye(3), np.zeros(3))]
    changed = True
    while changed:
        changed = False
        for (r1, t1), (r2, t2) in itertools.product(list(group), generators):
            r = r1 @ r2
            t = (r1 @ t2 + t1) % 1.0
            if not any(np.allclose(r, rr) and np.allclose(((t - tt) + 0.5) % 1.0 - 0.5, 0, atol=1e-6) for rr, tt in group):
                group.append((r, t))
                changed = True
        if len(group) > 48:
            break
    return group


def _lower_symmetry(
    parent: Structure,
    supercell: list[list[int]],
    target_number: int,
    seed: int,
    amplitude_angstrom: float = 0.2,
    shear_deg: float = 1.2,
    max_tries: int = 400,
) -> Structure:
    """Random displacive distortion of ``parent`` whose symmetry is space group ``target_number``.

    A subgroup of the parent supercell's operations is drawn at random (one generator for
    No. 7, two for No. 14), a seeded random displacement field is averaged over that subgroup
    (so it keeps exactly those operations), and spglib (symprec 0.1 A) must report the target.
    Only operations whose rotation is diagonal in the orthohexagonal cell are drawn, so the
    monoclinic unique axis is the cell's a axis: the angle alpha (between b and c) is then opened
    by ``shear_deg``, which keeps the group, and the layers of the parent stay the (001) planes
    (the cell is returned in this setting, not spglib's standard one, so texture along the layer
    normal is simply (0, 0, 1)).
    """
    rng = np.random.default_rng(seed)
    cell = parent.copy()
    cell.make_supercell(supercell)
    frac = cell.frac_coords % 1.0
    species = [site.species_string for site in cell]
    ops = SpacegroupAnalyzer(cell, symprec=1e-3).get_symmetry_operations(cartesian=False)
    ops = [(np.round(op.rotation_matrix), op.translation_vector % 1.0) for op in ops]
    ops = [(r, t) for r, t in ops if np.allclose(r, np.diag(np.diag(r)))]
    n_generators = 1 if target_number == 7 else 2
    matrix = cell.lattice.matrix
    a, b, c = cell.lattice.abc
    sheared_lattice = Lattice.from_parameters(a, b, c, 90.0 + shear_deg, 90.0, 90.0)
    for _ in range(max_tries):
        picks = rng.choice(len(ops), size=n_generators, replace=False)
        group = _group_closure([ops[i] for i in picks])
        if len(group) > 4:
            continue
        disp_cart = rng.normal(size=(len(cell), 3)) * amplitude_angstrom
        disp_frac = disp_cart @ np.linalg.inv(matrix)
        sym = np.zeros_like(disp_frac)
        for rot, trans in group:
            perm = _atom_permutation(frac, species, rot, trans)
            # atom i moves to perm[i]; its displacement rotates with it
            sym[perm] += disp_frac @ rot.T
        sym /= len(group)
        candidate = Structure(sheared_lattice, species, frac + sym)
        if SpacegroupAnalyzer(candidate, symprec=0.1).get_space_group_number() == target_number:
            return candidate
    raise RuntimeError(f"could not derive space group {target_number} from {parent.composition.reduced_formula}")


ORTHOHEXAGONAL = [[1, 0, 0], [1, 2, 0], [0, 0, 1]]
ORTHOHEXAGONAL_DOUBLE_C = [[1, 0, 0], [1, 2, 0], [0, 0, 2]]


# --------------------------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------------------------

_ENTRIES: list[Prototype] = [
    # ---- Pm-3m (221): cubic ABX3 perovskites ----------------------------------------------
    Prototype(
        "CsPbBr3", "Pm-3m",
        "Cubic high-temperature phase, a = 5.87 A (approx.): Moller, Nature 182, 1436 (1958); "
        "Stoumpos et al., Cryst. Growth Des. 13, 2722 (2013)",
        "Moller1958",
        lambda: _cubic_perovskite("Cs", "Pb", "Br", 5.87),
    ),
    Prototype(
        "CsPbI3", "Pm-3m",
        "alpha-CsPbI3 at 634 K, a = 6.2894 A: Trots & Myagkota, J. Phys. Chem. Solids 69, 2520 (2008)",
        "Trots2008",
        lambda: _cubic_perovskite("Cs", "Pb", "I", 6.2894),
    ),
    Prototype(
        "CsPbCl3", "Pm-3m",
        "Cubic phase, a = 5.605 A (approx.): Moller, Nature 182, 1436 (1958)",
        "Moller1958",
        lambda: _cubic_perovskite("Cs", "Pb", "Cl", 5.605),
    ),
    Prototype(
        "MAPbBr3", "Pm-3m",
        "Cubic above 237 K, a = 5.901 A: Poglitsch & Weber, J. Chem. Phys. 87, 6373 (1987)",
        "Poglitsch1987",
        lambda: _cubic_perovskite(MA, "Pb", "Br", 5.901),
        note="MA modelled as K (electron count)",
    ),
    Prototype(
        "MAPbI3-cubic", "Pm-3m",
        "Cubic above 327 K, a = 6.3285 A: Poglitsch & Weber, J. Chem. Phys. 87, 6373 (1987)",
        "Poglitsch1987",
        lambda: _cubic_perovskite(MA, "Pb", "I", 6.3285),
        note="MA modelled as K (electron count)",
    ),
    Prototype(
        "MAPbCl3", "Pm-3m",
        "Cubic above 178 K, a = 5.685 A: Poglitsch & Weber, J. Chem. Phys. 87, 6373 (1987)",
        "Poglitsch1987",
        lambda: _cubic_perovskite(MA, "Pb", "Cl", 5.685),
        note="MA modelled as K (electron count)",
    ),
    Prototype(
        "FAPbI3", "Pm-3m",
        "alpha-FAPbI3 at 298 K, a = 6.3620 A: Weller et al., J. Phys. Chem. Lett. 6, 3209 (2015)",
        "Weller2015a",
        lambda: _cubic_perovskite(FA, "Pb", "I", 6.3620),
        note="FA modelled as Cr (electron count)",
    ),
    Prototype(
        "FAPbBr3", "Pm-3m",
        "Cubic FAPbBr3, a = 5.99 A (approx.): Hanusch et al., J. Phys. Chem. Lett. 5, 2791 (2014)",
        "Hanusch2014",
        lambda: _cubic_perovskite(FA, "Pb", "Br", 5.99),
        note="FA modelled as Cr (electron count)",
    ),
    Prototype(
        "CsSnI3", "Pm-3m",
        "alpha-CsSnI3 at 500 K, a = 6.219 A (approx.): Chung et al., J. Am. Chem. Soc. 134, 8579 (2012)",
        "Chung2012",
        lambda: _cubic_perovskite("Cs", "Sn", "I", 6.219),
    ),
    Prototype(
        "CsSnBr3", "Pm-3m",
        "Cubic CsSnBr3, a = 5.80 A (approx.): Barrett, Donaldson et al., J. Chem. Soc. A 3105 (1971)",
        "Barrett1971",
        lambda: _cubic_perovskite("Cs", "Sn", "Br", 5.80),
    ),
    # Mixed-halide / mixed-cation solid solutions: cubic at room temperature for these
    # compositions; lattice constants by Vegard's law between the end members above, as the
    # linear lattice-composition relation reported by Noh et al., Nano Lett. 13, 1764 (2013).
    Prototype(
        "MAPb(I0.5Br0.5)3", "Pm-3m",
        "Vegard between MAPbI3 (6.3285) and MAPbBr3 (5.901, Poglitsch & Weber 1987): a = 6.115 A "
        "(estimated); cubic for Br >= 0.2: Noh et al., Nano Lett. 13, 1764 (2013)",
        "Noh2013",
        lambda: _cubic_perovskite(MA, "Pb", {"I": 0.5, "Br": 0.5}, 6.115),
        note="MA modelled as K; disordered X site",
    ),
    Prototype(
        "FAPb(I0.5Br0.5)3", "Pm-3m",
        "Vegard between FAPbI3 (6.362, Weller 2015) and FAPbBr3 (5.99, Hanusch 2014): a = 6.176 A "
        "(estimated)",
        "Vegard-FAPbIBr",
        lambda: _cubic_perovskite(FA, "Pb", {"I": 0.5, "Br": 0.5}, 6.176),
        note="FA modelled as Cr; disordered X site",
    ),
    Prototype(
        "FA0.85MA0.15Pb(I0.85Br0.15)3", "Pm-3m",
        "Mixed-cation mixed-halide 'FAMA' absorber, a = 6.29 A by Vegard between FAPbI3, MAPbI3, "
        "FAPbBr3 and MAPbBr3 (estimated); composition of Jeon et al., Nature 517, 476 (2015)",
        "Jeon2015",
        lambda: _cubic_perovskite({FA: 0.85, MA: 0.15}, "Pb", {"I": 0.85, "Br": 0.15}, 6.29),
        note="FA as Cr, MA as K; disordered A and X sites",
    ),
    # ---- I4/mcm (140): tetragonal ABX3 perovskites (a0a0c- tilt) ----------------------------
    Prototype(
        "MAPbI3", "I4/mcm",
        "Tetragonal MAPbI3 at 293 K, a = 8.855, c = 12.659 A, x(I2) ~ 0.2165 (approx.): Kawamura, "
        "Mashiyama & Hasebe, J. Phys. Soc. Jpn. 71, 1694 (2002); Weller et al., Chem. Commun. 51, "
        "4180 (2015)",
        "Kawamura2002",
        lambda: _tetragonal_perovskite(MA, "Pb", "I", 8.855, 12.659, 0.2165),
        note="MA modelled as K (electron count)",
    ),
    Prototype(
        "MASnI3", "I4/mcm",
        "Tetragonal beta-MASnI3 at 200 K, a = 8.7577, c = 12.429 A (reported in I4cm; modelled in "
        "I4/mcm, x(I2) ~ 0.22, approx.): Stoumpos, Malliakas & Kanatzidis, Inorg. Chem. 52, 9019 (2013)",
        "Stoumpos2013",
        lambda: _tetragonal_perovskite(MA, "Sn", "I", 8.7577, 12.429, 0.22),
        note="MA modelled as K (electron count)",
    ),
    Prototype(
        "MAPb0.5Sn0.5I3", "I4/mcm",
        "Mixed Pb/Sn tetragonal perovskite, lattice by Vegard's law between MAPbI3 (Kawamura 2002) and "
        "MASnI3 (Stoumpos 2013) (estimated)",
        "Vegard-MAPbSnI3",
        lambda: _tetragonal_perovskite(MA, {"Pb": 0.5, "Sn": 0.5}, "I", 8.806, 12.544, 0.218),
        note="MA modelled as K; disordered B site",
    ),
    Prototype(
        "MAPbBr3-tetragonal", "I4/mcm",
        "Tetragonal MAPbBr3 (155-237 K), a = 8.322, c = 11.832 A: Poglitsch & Weber, J. Chem. Phys. 87, "
        "6373 (1987); x(Br2) ~ 0.22 (approx.)",
        "Poglitsch1987",
        lambda: _tetragonal_perovskite(MA, "Pb", "Br", 8.322, 11.832, 0.22),
        note="MA modelled as K (electron count)",
    ),
    # ---- Fm-3m (225): double perovskites and vacancy-ordered A2BX6 ---------------------------
    Prototype(
        "Cs2AgBiBr6", "Fm-3m",
        "a = 11.2499 A: Slavney et al., J. Am. Chem. Soc. 138, 2138 (2016); x(Br) ~ 0.249 (approx., "
        "from Ag-Br 2.80 A)",
        "Slavney2016",
        lambda: _double_perovskite("Cs", "Ag", "Bi", "Br", 11.2499, 0.249),
    ),
    Prototype(
        "Cs2AgBiCl6", "Fm-3m",
        "a = 10.7774 A: McClure et al., Chem. Mater. 28, 1348 (2016); x(Cl) ~ 0.250 (approx.)",
        "McClure2016",
        lambda: _double_perovskite("Cs", "Ag", "Bi", "Cl", 10.7774, 0.250),
    ),
    Prototype(
        "Cs2AgSbCl6", "Fm-3m",
        "a = 10.699 A (approx.): Tran et al., Mater. Horiz. 4, 688 (2017); x(Cl) ~ 0.252 (approx.)",
        "Tran2017",
        lambda: _double_perovskite("Cs", "Ag", "Sb", "Cl", 10.699, 0.252),
    ),
    Prototype(
        "Cs2AgSbBr6", "Fm-3m",
        "a = 11.14 A (approx.): Wei et al., Chem. Mater. 31, 3187 (2019) (approx.); x(Br) ~ 0.251",
        "Wei2019",
        lambda: _double_perovskite("Cs", "Ag", "Sb", "Br", 11.14, 0.251),
    ),
    Prototype(
        "Cs2AgInCl6", "Fm-3m",
        "a = 10.467 A: Volonakis et al., J. Phys. Chem. Lett. 8, 772 (2017); x(Cl) ~ 0.259 (approx.)",
        "Volonakis2017",
        lambda: _double_perovskite("Cs", "Ag", "In", "Cl", 10.467, 0.259),
    ),
    Prototype(
        "Cs2SnI6", "Fm-3m",
        "K2PtCl6 type, a = 11.65 A, x(I) ~ 0.245 (approx.): Lee et al., J. Am. Chem. Soc. 136, 15379 (2014)",
        "Lee2014",
        lambda: _vacancy_double_perovskite("Cs", "Sn", "I", 11.65, 0.245),
    ),
    Prototype(
        "Cs2SnBr6", "Fm-3m",
        "K2PtCl6 type, a = 10.84 A, x(Br) ~ 0.240 (approx.): Kaltzoglou et al., J. Phys. Chem. C 120, "
        "11777 (2016)",
        "Kaltzoglou2016",
        lambda: _vacancy_double_perovskite("Cs", "Sn", "Br", 10.84, 0.240),
    ),
    Prototype(
        "Cs2SnCl6", "Fm-3m",
        "K2PtCl6 type, a = 10.38 A, x(Cl) ~ 0.234 (approx.): Kaltzoglou et al., J. Phys. Chem. C 120, "
        "11777 (2016)",
        "Kaltzoglou2016",
        lambda: _vacancy_double_perovskite("Cs", "Sn", "Cl", 10.38, 0.234),
    ),
    Prototype(
        "Cs2TiBr6", "Fm-3m",
        "K2PtCl6 type, a = 10.92 A, x(Br) ~ 0.229 (approx.): Ju et al., ACS Energy Lett. 3, 297 (2018)",
        "Ju2018",
        lambda: _vacancy_double_perovskite("Cs", "Ti", "Br", 10.92, 0.229),
    ),
    Prototype(
        "Cs2TeI6", "Fm-3m",
        "K2PtCl6 type, a = 11.72 A, x(I) ~ 0.250 (approx.): Maughan et al., Chem. Mater. 28, 7365 (2016)",
        "Maughan2016",
        lambda: _vacancy_double_perovskite("Cs", "Te", "I", 11.72, 0.250),
    ),
    # ---- P-3m1 (164): corrugated-layer A3B2X9 (Cs3Bi2Br9 type) ------------------------------
    Prototype(
        "Cs3Bi2Br9", "P-3m1",
        "a = 7.972, c = 9.867 A, Cs2 z 0.6735, Bi z 0.1917, Br2 (0.1679, -x, 0.3332) (approx.): "
        "Lazarini, Acta Cryst. B 33, 2961 (1977)",
        "Lazarini1977",
        lambda: _layered_a3b2x9("Cs", "Bi", "Br", 7.972, 9.867),
    ),
    Prototype(
        "Cs3Sb2Br9", "P-3m1",
        "a = 7.93, c = 9.72 A (approx.): Zhang et al., Nano Lett. 17, 8037 (2017); positions of the "
        "Cs3Bi2Br9 type",
        "Zhang2017",
        lambda: _layered_a3b2x9("Cs", "Sb", "Br", 7.93, 9.72),
    ),
    Prototype(
        "Cs3Sb2I9-layered", "P-3m1",
        "Layered polymorph, a = 8.420, c = 10.386 A: Saparov et al., Chem. Mater. 27, 5622 (2015); "
        "positions of the Cs3Bi2Br9 type (approx.)",
        "Saparov2015",
        lambda: _layered_a3b2x9("Cs", "Sb", "I", 8.420, 10.386),
    ),
    Prototype(
        "Rb3Sb2Br9", "P-3m1",
        "a = 7.80, c = 9.62 A (estimated from Cs3Sb2Br9 by the Rb/Cs radius ratio); Cs3Bi2Br9 type",
        "estimated-Rb3Sb2Br9",
        lambda: _layered_a3b2x9("Rb", "Sb", "Br", 7.80, 9.62),
        note="lattice estimated",
    ),
    Prototype(
        "Rb3Sb2I9-layered", "P-3m1",
        "a = 8.20, c = 10.30 A (estimated from the layered Cs3Sb2I9 and the pseudo-hexagonal subcell of "
        "P2_1/n Rb3Sb2I9, Harikesh et al., Chem. Mater. 28, 7496 (2016)); Cs3Bi2Br9 type",
        "Harikesh2016",
        lambda: _layered_a3b2x9("Rb", "Sb", "I", 8.20, 10.30),
        note="real compound is monoclinic P2_1/n; the measured films are labelled P-3m1",
    ),
    Prototype(
        "K3Bi2I9", "P-3m1",
        "a = 8.15, c = 10.20 A (estimated; the real K3Bi2I9 is monoclinic P2_1/n with a layered "
        "pseudo-hexagonal subcell, Lindqvist 1968 approx.); Cs3Bi2Br9 type",
        "estimated-K3Bi2I9",
        lambda: _layered_a3b2x9("K", "Bi", "I", 8.15, 10.20),
        note="lattice estimated; labelled P-3m1 in the measured set",
    ),
    Prototype(
        "K3Sb2I9", "P-3m1",
        "a = 8.12, c = 10.15 A (estimated from the pseudo-hexagonal subcell of monoclinic K3Sb2I9); "
        "Cs3Bi2Br9 type",
        "estimated-K3Sb2I9",
        lambda: _layered_a3b2x9("K", "Sb", "I", 8.12, 10.15),
        note="lattice estimated; labelled P-3m1 in the measured set",
    ),
    # ---- P6_3/mmc (194): isolated [B2X9]3- dimers (Cs3Cr2Cl9 type) --------------------------
    Prototype(
        "Cs3Bi2I9", "P6_3/mmc",
        "a = 8.4116, c = 21.198 A (approx.): Lehner et al., Chem. Eur. J. 21, 7122 (2015); positions "
        "of the Cs3Cr2Cl9 type (approx.)",
        "Lehner2015",
        lambda: _dimer_a3b2x9("Cs", "Bi", "I", 8.4116, 21.198),
    ),
    Prototype(
        "Cs3Sb2I9", "P6_3/mmc",
        "Dimer polymorph, a = 8.33, c = 20.96 A (approx.): Saparov et al., Chem. Mater. 27, 5622 (2015)",
        "Saparov2015",
        lambda: _dimer_a3b2x9("Cs", "Sb", "I", 8.33, 20.96),
    ),
    Prototype(
        "MA3Bi2I9", "P6_3/mmc",
        "a = 8.5915, c = 21.758 A (approx.): Eckhardt et al., Chem. Commun. 52, 3058 (2016)",
        "Eckhardt2016",
        lambda: _dimer_a3b2x9(MA, "Bi", "I", 8.5915, 21.758),
        note="MA modelled as K (electron count)",
    ),
    Prototype(
        "MA3Sb2I9", "P6_3/mmc",
        "a = 8.60, c = 21.90 A (approx.): Hebig et al., ACS Energy Lett. 1, 309 (2016)",
        "Hebig2016",
        lambda: _dimer_a3b2x9(MA, "Sb", "I", 8.60, 21.90),
        note="MA modelled as K (electron count)",
    ),
    # ---- Pc (7) and P2_1/a (14): layered A3B2X9, symmetry-lowered (derived) ------------------
    Prototype(
        "Rb3Bi2I9", "Pc",
        "derived: Cs3Bi2Br9-type parent (Rb, Bi, I; a = 8.25, c = 10.40 A, estimated) in the "
        "orthohexagonal cell, random displacive distortion to Pc (seed 7)",
        "derived-Rb3Bi2I9-Pc",
        lambda: _lower_symmetry(_layered_a3b2x9("Rb", "Bi", "I", 8.25, 10.40), ORTHOHEXAGONAL, 7, seed=7),
        note="plausible, not refined",
    ),
    Prototype(
        "Rb3Bi2Br9", "Pc",
        "derived: Cs3Bi2Br9-type parent (Rb, Bi, Br; a = 7.85, c = 9.70 A, estimated) in the "
        "orthohexagonal cell, random displacive distortion to Pc (seed 11)",
        "derived-Rb3Bi2Br9-Pc",
        lambda: _lower_symmetry(_layered_a3b2x9("Rb", "Bi", "Br", 7.85, 9.70), ORTHOHEXAGONAL, 7, seed=11),
        note="plausible, not refined",
    ),
    Prototype(
        "Rb3Bi2Br9-P21a", "P2_1/a",
        "derived: Cs3Bi2Br9-type parent (Rb, Bi, Br; a = 7.85, c = 9.70 A, estimated) in the "
        "(a, sqrt3 a, 2c) cell, random displacive distortion to P2_1/c (seed 3)",
        "derived-Rb3Bi2Br9-P21a",
        lambda: _lower_symmetry(
            _layered_a3b2x9("Rb", "Bi", "Br", 7.85, 9.70), ORTHOHEXAGONAL_DOUBLE_C, 14, seed=3
        ),
        note="plausible, not refined",
    ),
    Prototype(
        "Rb3Sb2I9-P21a", "P2_1/a",
        "derived: parent a = 8.20, c = 10.30 A (pseudo-hexagonal subcell of P2_1/n Rb3Sb2I9, Harikesh et "
        "al., Chem. Mater. 28, 7496 (2016), approx.) in the (a, sqrt3 a, 2c) cell, random distortion to "
        "P2_1/c (seed 5)",
        "derived-Rb3Sb2I9-P21a",
        lambda: _lower_symmetry(
            _layered_a3b2x9("Rb", "Sb", "I", 8.20, 10.30), ORTHOHEXAGONAL_DOUBLE_C, 14, seed=5
        ),
        note="plausible, not refined",
    ),
    Prototype(
        "K3Bi2I9-P21a", "P2_1/a",
        "derived: parent a = 8.15, c = 10.20 A (estimated) in the (a, sqrt3 a, 2c) cell, random "
        "distortion to P2_1/c (seed 13); K3Bi2I9 is reported monoclinic P2_1/n (approx.)",
        "derived-K3Bi2I9-P21a",
        lambda: _lower_symmetry(
            _layered_a3b2x9("K", "Bi", "I", 8.15, 10.20), ORTHOHEXAGONAL_DOUBLE_C, 14, seed=13
        ),
        note="plausible, not refined",
    ),
]

#: name -> Prototype, in a fixed order (the seven classes; used for training data).
PROTOTYPES: dict[str, Prototype] = {p.name: p for p in _ENTRIES}

#: Common secondary phases of metal-halide films (impurity peaks in simulated patterns):
#: decomposition product PbI2 and the transparent-electrode substrates FTO (SnO2) and ITO (In2O3).
#: Not training classes, even where the space group coincides (PbI2 is P-3m1).
IMPURITY_PHASES: dict[str, Prototype] = {
    p.name: p
    for p in [
        Prototype(
            "PbI2", "P-3m1",
            "2H-PbI2, a = 4.557, c = 6.979 A, Pb 1a, I 2d z = 0.265 (approx.): Wyckoff, Crystal "
            "Structures vol. 1 (1963)",
            "Wyckoff1963",
            lambda: _from_spacegroup(
                "P-3m1", Lattice.hexagonal(4.557, 6.979), ["Pb", "I"], [[0, 0, 0], [1 / 3, 2 / 3, 0.265]]
            ),
        ),
        Prototype(
            "SnO2", "P4_2/mnm",
            "Cassiterite (FTO substrate), a = 4.737, c = 3.186 A, O 4f x = 0.307: Baur, Acta Cryst. 9, "
            "515 (1956)",
            "Baur1956",
            lambda: _from_spacegroup(
                "P4_2/mnm", Lattice.tetragonal(4.737, 3.186), ["Sn", "O"], [[0, 0, 0], [0.307, 0.307, 0]]
            ),
        ),
        Prototype(
            "In2O3", "Ia-3",
            "Bixbyite (ITO substrate), a = 10.117 A, In2 24d x = -0.0336, O 48e (0.3905, 0.1529, 0.3832): "
            "Marezio, Acta Cryst. 20, 723 (1966)",
            "Marezio1966",
            lambda: _from_spacegroup(
                "Ia-3",
                Lattice.cubic(10.117),
                ["In", "In", "O"],
                [[0.25, 0.25, 0.25], [-0.0336, 0, 0.25], [0.3905, 0.1529, 0.3832]],
            ),
        ),
    ]
}


@functools.lru_cache(maxsize=None)
def _built(name: str) -> Structure:
    return get_prototype(name).build()


def get_prototype(name: str) -> Prototype:
    """The :class:`Prototype` record (citation, class) of ``name``; ValueError if unknown."""
    found = PROTOTYPES.get(name) or IMPURITY_PHASES.get(name)
    if found is None:
        known = ", ".join([*PROTOTYPES, *IMPURITY_PHASES])
        raise ValueError(f"unknown structure {name!r}; known: {known}")
    return found


def get_structure(name: str) -> Structure:
    """A fresh copy of the prototype structure ``name``.

    Parameters
    ----------
    name : str
        One of :func:`list_structures` (e.g. "CsPbBr3", "MAPbI3", "Cs2AgBiBr6", "Cs3Bi2Br9",
        "Cs3Bi2I9", "Rb3Bi2I9").

    Returns
    -------
    pymatgen.core.Structure
        Lattice in angstrom; a copy, so callers may modify it.

    Raises
    ------
    ValueError
        If the name is unknown.
    """
    get_prototype(name)
    return _built(name).copy()


def list_structures() -> dict[str, str]:
    """Name -> space-group symbol of every structure: the class prototypes (symbols as in
    patterns.SPACE_GROUPS) followed by the impurity phases (their own symbols)."""
    return {name: p.space_group for name, p in [*PROTOTYPES.items(), *IMPURITY_PHASES.items()]}
