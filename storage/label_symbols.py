"""Class names as people type them: space-group symbols and numbers, dimensionalities.

A beamline scientist types ``P63/mmc``, ``p6_3/mmc``, ``pm-3m`` or ``194``; the model's class
is ``P6_3/mmc``. The symbols of all 230 space groups, in every setting, come from spglib's
table of the 530 Hall settings (``spglib.get_spacegroup_type``), not from a table of ours:
a symbol is matched case-, space- and underscore-blind (``P 1 2_1/a 1``, ``P21/a`` and
``p2_1/a`` are one key), and a symbol or number of the same space-group type as one of the
model's classes in another setting (``P2_1/c`` for ``P2_1/a``, both No. 14) names that class.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

#: Number of Hall settings in spglib's table (International Tables Vol. A settings).
_N_HALL_SETTINGS = 530


def symbol_key(symbol: str) -> str:
    """The matching key of a symbol: lower case, without spaces and underscores (``P 6_3/mmc`` -> ``p63/mmc``)."""
    return "".join(symbol.split()).replace("_", "").lower()


def _short_monoclinic(full: str) -> str | None:
    """``P 1 2_1/a 1`` -> ``P2_1/a``: the monoclinic short symbol of a full one (None otherwise)."""
    parts = full.split()
    if len(parts) == 4 and sum(p == "1" for p in parts[1:]) == 2:
        return parts[0] + next(p for p in parts[1:] if p != "1")
    return None


@lru_cache(maxsize=1)
def symbol_numbers() -> dict[str, int]:
    """Every space-group symbol spglib knows, by :func:`symbol_key`, with its number (1-230)."""
    import spglib

    table: dict[str, int] = {}
    for hall in range(1, _N_HALL_SETTINGS + 1):
        entry = spglib.get_spacegroup_type(hall)
        names = [entry.international_short, entry.international_full, *entry.international.split("=")]
        names.append(_short_monoclinic(entry.international_full) or "")
        for name in names:
            if name.strip():
                table.setdefault(symbol_key(name), int(entry.number))
    return table


def normalise_space_group(text: str, classes: Sequence[str]) -> str:
    """The model class ``text`` names: a symbol in any usual spelling, or a number 1-230.

    Parameters
    ----------
    text : str
        What was typed, e.g. "P63/mmc", "pm-3m", "14".
    classes : sequence of str
        The model's space-group classes (Hermann-Mauguin symbols with ``_`` for screw axes).

    Returns
    -------
    str
        The element of ``classes`` meant.

    Raises
    ------
    ValueError
        Not a space group (unknown symbol, number outside 1-230), or a space group the model
        does not know (the message names it and lists the classes).
    """
    typed = str(text).strip()
    known = symbol_numbers()
    by_key = {symbol_key(c): c for c in classes}
    by_number = {known[symbol_key(c)]: c for c in classes if symbol_key(c) in known}
    if typed.isdigit():
        number = int(typed)
        if not 1 <= number <= 230:
            raise ValueError(f"space group number {number} is outside 1-230")
    elif symbol_key(typed) in by_key:
        return by_key[symbol_key(typed)]
    elif symbol_key(typed) in known:
        number = known[symbol_key(typed)]
    else:
        raise ValueError(f"unknown space group {typed!r}: not a Hermann-Mauguin symbol or a number 1-230; "
                         f"the champion model knows {', '.join(classes)}")
    if number in by_number:
        return by_number[number]
    raise ValueError(f"unknown space group {typed!r} (No. {number}): the champion model knows {', '.join(classes)}")


def normalise_dimensionality(text: str, classes: Sequence[str]) -> str:
    """``2d``, ``2`` or ``2D`` -> ``2D`` when the model has that class; ValueError otherwise."""
    typed = str(text).strip().upper()
    candidate = typed if typed.endswith("D") else f"{typed}D"
    if candidate in classes:
        return candidate
    raise ValueError(f"unknown dimensionality {text!r}: the champion model knows {', '.join(classes)}")
