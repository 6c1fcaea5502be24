"""The structures a :class:`training.generator.FilmGenerator` draws films from, as one peak table.

The pool holds, per class, the cited prototypes of :mod:`crystals.prototypes`, the CIF library
structures of the class (drawn for a minority ``cif_fraction`` of films) and
``structures_per_class`` generated structures (:mod:`training.structure_generator`: substituted
prototypes and pyxtal random crystals). Generated slots are replaced one at a time as films are
drawn, so a long training run sees many more structures than the pool holds at any moment. The
impurity phases (PbI2, SnO2, In2O3) sit in the first slots.
"""

from __future__ import annotations

import copy
import functools
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from crystals.cif_library import load_cif_library
from crystals.prototypes import FILM_TEXTURE, IMPURITY_PHASES, PROTOTYPES, get_structure
from patterns import SPACE_GROUPS
from training.peak_table import PeakTable, PhaseEntry, phase_entry
from training.reflections import compute_reflections
from training.structure_generator import GeneratedStructure, draw_structure

__all__ = ["StructurePool", "IMPURITY_NAMES", "TWO_THETA_MAX", "fixed_entries", "generated_entry", "structure_entry"]

TWO_THETA_MAX = 68.0  # degrees: reflections computed beyond the 60-degree grid end, for strain and shifts
IMPURITY_NAMES: tuple[str, ...] = tuple(IMPURITY_PHASES)
_WAVELENGTH = 1.5405929  # Cu K-alpha1, angstrom (pymatgen's value)


def structure_entry(structure: Structure, name: str, space_group: str, origin: str, habits: tuple[tuple[int, int, int], ...] = (),
                    b_factors: dict[str, float] | None = None, citation_key: str = "") -> PhaseEntry:
    """The peak-table entry of one structure: its reflections to TWO_THETA_MAX, ready to render."""
    elements = {getattr(sp, "symbol", str(sp)) for sp in structure.composition}
    reflections = compute_reflections(structure, _WAVELENGTH, TWO_THETA_MAX, b_factors)
    return phase_entry(name, space_group, origin, elements, reflections, habits, citation_key=citation_key)


def generated_entry(g: GeneratedStructure) -> PhaseEntry:
    """The peak-table entry of a generated structure."""
    return structure_entry(g.structure, g.name, g.space_group, g.origin, g.texture, g.b_factors, citation_key=g.origin)


@functools.lru_cache(maxsize=2)
def fixed_entries(include_cifs: bool) -> tuple[PhaseEntry, ...]:
    """Impurities, then the prototypes and (optionally) CIF structures of every class (cached)."""
    entries = [structure_entry(get_structure(n), n, p.space_group, "impurity", citation_key=p.citation_key) for n, p in IMPURITY_PHASES.items()]
    for name, proto in PROTOTYPES.items():
        entries.append(structure_entry(get_structure(name), name, proto.space_group, "prototype", FILM_TEXTURE[proto.space_group],
                              citation_key=proto.citation_key))
    if include_cifs:
        for cif in load_cif_library():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # the conventional standard cell: several files are in non-standard or primitive
                # settings, and the lattice variation must see the true crystal system
                cell = SpacegroupAnalyzer(cif.structure, symprec=0.1).get_conventional_standard_structure()
            entries.append(structure_entry(cell, cif.name, cif.space_group, "cif"))
    return tuple(entries)


@dataclass
class StructurePool:
    """Peak table plus, per class, which table slots hold which kind of structure.

    Parameters
    ----------
    seed : int
        Seeds the generated structures and their replacements.
    device : torch.device
        Where the table's tensors live.
    structures_per_class : int
        Generated structures held per class at any time.
    random_fraction : float
        Share of generated structures that are pyxtal random crystals.
    include_cifs : bool
        Whether the CIF library is in the pool.
    """

    seed: int
    device: torch.device
    structures_per_class: int = 16
    random_fraction: float = 0.2
    include_cifs: bool = True

    def __post_init__(self) -> None:
        fixed = list(fixed_entries(self.include_cifs))
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))
        self.generated_slots: dict[str, list[int]] = {sg: [] for sg in SPACE_GROUPS}
        entries = list(fixed)
        for sg in SPACE_GROUPS:
            for _ in range(self.structures_per_class):
                self.generated_slots[sg].append(len(entries))
                entries.append(generated_entry(draw_structure(sg, self._rng, self.random_fraction)))
        self.table = PeakTable(entries, self.device)
        self.impurity_slots = {e.name: i for i, e in enumerate(fixed) if e.origin == "impurity"}
        self.main_slots = {sg: [i for i, e in enumerate(entries) if e.space_group == sg and e.origin in ("prototype", "substituted", "pyxtal")]
                           for sg in SPACE_GROUPS}
        self.cif_slots = {sg: [i for i, e in enumerate(fixed) if e.origin == "cif" and e.space_group == sg] for sg in SPACE_GROUPS}
        self.replaced = 0
        """Number of generated structures replaced so far."""

    def copy_with_seed(self, seed: int) -> "StructurePool":
        """A pool holding the same structures now (no reflections recomputed) whose later
        replacements come from ``seed``: a cheap pool for another generator stream."""
        other = copy.copy(self)
        other.seed = int(seed)
        other._rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
        other.table = PeakTable(list(self.table.entries), self.device)
        other.generated_slots = {sg: list(v) for sg, v in self.generated_slots.items()}
        other.replaced = 0
        return other

    def refresh_one(self) -> None:
        """Replace the oldest generated structure of the next class (round robin) by a new one."""
        sg = SPACE_GROUPS[self.replaced % len(SPACE_GROUPS)]
        slots = self.generated_slots[sg]
        slot = slots[(self.replaced // len(SPACE_GROUPS)) % len(slots)] if slots else None
        self.replaced += 1
        if slot is not None:
            self.table.replace(slot, generated_entry(draw_structure(sg, self._rng, self.random_fraction)))

    def entry(self, slot: int) -> PhaseEntry:
        """The entry in table slot ``slot``."""
        return self.table.entries[slot]
