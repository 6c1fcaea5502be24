"""xrd-agent: crystal structures and powder-diffraction peak lists (no torch, no bluesky).

Public API::

    from crystals import get_structure, list_structures, PeakList, peak_list
"""

from crystals.powder import PeakList, d_spacings_for_lattice, peak_list, two_theta_for_lattice
from crystals.prototypes import PROTOTYPES, SPACE_GROUP_NUMBERS, Prototype, get_prototype, get_structure, list_structures

__all__ = [
    "PeakList",
    "peak_list",
    "two_theta_for_lattice",
    "d_spacings_for_lattice",
    "get_structure",
    "list_structures",
    "get_prototype",
    "Prototype",
    "PROTOTYPES",
    "SPACE_GROUP_NUMBERS",
]
