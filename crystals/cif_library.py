"""The CIF library: shared CIFs whose spglib space group is one of the seven classes.

The repository copy lives under ``data/cifs`` (only the files the project uses, each source
folder with its MIT LICENSE; see data/cifs/README.md). File names are not trusted: a few
PyXtal files are named after a space group they do not have, so every structure is classified
by spglib (symprec 0.1 A) and kept only if the number is one of the seven classes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from crystals.prototypes import SPACE_GROUP_NUMBERS

__all__ = ["CifEntry", "default_cif_root", "load_cif_library", "classify_structure"]

_NUMBER_TO_CLASS = {number: symbol for symbol, number in SPACE_GROUP_NUMBERS.items()}


@dataclass(frozen=True)
class CifEntry:
    """One CIF structure of the library.

    Attributes
    ----------
    name : str
        "cif:<path relative to the root>", unique.
    path : pathlib.Path
        The file.
    space_group : str
        Class symbol (patterns.SPACE_GROUPS spelling) from spglib.
    space_group_number : int
        International Tables number from spglib.
    formula : str
        Reduced formula.
    structure : pymatgen.core.Structure
        The parsed structure (do not modify; copy first).
    """

    name: str
    path: Path
    space_group: str
    space_group_number: int
    formula: str
    structure: Structure


def default_cif_root() -> Path:
    """The repository copy, ``<repo>/data/cifs``."""
    return Path(__file__).resolve().parent.parent / "data" / "cifs"


def classify_structure(structure: Structure, symprec: float = 0.1) -> str | None:
    """Class symbol of ``structure`` if spglib puts it in one of the seven classes, else None."""
    number = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
    return _NUMBER_TO_CLASS.get(number)


def load_cif_library(root: Path | str | None = None, symprec: float = 0.1) -> list[CifEntry]:
    """Parse every ``*.cif`` under ``root`` and keep those in one of the seven classes.

    Parameters
    ----------
    root : path, optional
        Folder searched recursively; default :func:`default_cif_root` (the repo copy).
        Pass the shared data folder's ``cifs`` directory to screen the full shared set.
    symprec : float
        spglib distance tolerance, angstrom.

    Returns
    -------
    list of CifEntry
        Sorted by name. Files that do not parse are skipped with a warning naming them.

    Raises
    ------
    ValueError
        If ``root`` is not a directory.
    """
    root = default_cif_root() if root is None else Path(root)
    if not root.is_dir():
        raise ValueError(f"CIF root {root} is not a directory")
    entries: list[CifEntry] = []
    for path in sorted(root.rglob("*.cif")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pymatgen warns about rounded occupancies etc.
                structure = Structure.from_file(path)
            number = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
        except Exception as exc:  # a malformed CIF must not stop the others
            warnings.warn(f"skipping {path}: {type(exc).__name__}: {exc}", stacklevel=2)
            continue
        symbol = _NUMBER_TO_CLASS.get(number)
        if symbol is None:
            continue
        entries.append(
            CifEntry(
                name=f"cif:{path.relative_to(root).as_posix()}",
                path=path,
                space_group=symbol,
                space_group_number=number,
                formula=structure.composition.reduced_formula,
                structure=structure,
            )
        )
    return entries
