"""What the header text of a pattern file says about its x axis and its radiation.

Text files carry their meaning in free text: a column-name row (``2Theta<TAB>Intensity``,
pyFAI's ``# q_nm^-1 I``, Fit2D's ``2-Theta Angle (Degrees)``), a wavelength line (pyFAI's
``# Wavelength: 1.540598e-10 m``) or a comment naming the tube (``# Co K-alpha1 1.78897 A``).
This module reads those hints and nothing else; it never guesses a unit from the numbers.

x-axis names are matched against pyFAI's unit names (``2th_deg``, ``2th_rad``, ``q_nm^-1``,
``q_A^-1``, ``r_mm``, ``chi_deg``; pyFAI documentation, "units") and the common spellings of
instrument exports. A name that is recognised but is not a diffraction angle, a momentum
transfer or a d-spacing (time-of-flight, energy, detector radius, azimuth, a rocking axis) is a
refusal with that reason, as is a header that says the data are neutron diffraction (the model
knows X-ray patterns).
"""

from __future__ import annotations

import re

#: (pattern on the lower-cased x-column name, unit) in the order they are tried.
_X_UNIT_NAMES: tuple[tuple[str, str], ...] = (
    (r"^2th_deg|^2th\b", "2th_deg"),
    (r"^2th_rad|^(2[-_ ]?theta|2θ|tth).*\brad", "2th_rad"),
    (r"^q.*(nm|nanomet)", "q_nm^-1"),
    (r"^q.*(\ba\b|_a\b|å|angstrom|1/a|a\^?-1|a-1)", "q_A^-1"),
    (r"^d\b.*(\ba\b|å|angstrom)|^d[-_ ]?spacing|^d_a\b", "d_A"),
    (r"^(2[-_ ]?theta|2θ|two[-_ ]?theta|tth|2-?th\b|angle|2theta)", "2th_deg"),
)
#: (pattern, reason) for x columns that are not a diffraction angle, q or d.
_X_REFUSALS: tuple[tuple[str, str], ...] = (
    (r"\btof\b|time[-_ ]?of[-_ ]?flight|µs|microsec", "time-of-flight (neutron or energy-resolved), not 2theta"),
    (r"\benergy\b|\bkev\b|\bev\b", "photon energy (energy-dispersive), not 2theta"),
    (r"^r_mm|^radi|\bpixel", "radial distance on the detector, not 2theta (integrate to 2theta or q first)"),
    (r"^chi|azimuth", "an azimuthal angle, not 2theta"),
    (r"^(omega|phi|psi)\b", "a sample rotation (rocking curve), not 2theta"),
    (r"^r\b|^r_a\b|\bg\(r\)|\bpdf\b", "a pair distribution function G(r), not a diffraction pattern"),
    (r"^q\b|^q_", "q without a unit (nm^-1 or A^-1)"),
)
_WAVELENGTH = re.compile(
    r"wave[-_ ]?length[^0-9+\-.]{0,20}([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(nm|m\b|a\b|å|angstrom)?",
    re.IGNORECASE,
)
_ANODE = re.compile(r"\b(Cr|Fe|Co|Cu|Mo|Ag)[\s_-]*K[\s_-]*(?:alpha|a|α)", re.IGNORECASE)
_NEUTRON = re.compile(r"\bneutron", re.IGNORECASE)


def x_unit_from_name(name: str | None) -> tuple[str | None, str | None]:
    """Classify an x-column name.

    Parameters
    ----------
    name : str or None
        The x-column name (the first field of a column-name row, or Fit2D's axis line).

    Returns
    -------
    unit : str or None
        One of `patterns.radiation.X_UNITS`, or None when the name says nothing known.
    refusal : str or None
        The reason this column cannot be a diffraction pattern's x axis, or None.
    """
    if not name:
        return None, None
    lowered = name.strip().lower()
    for pattern, unit in _X_UNIT_NAMES:
        if re.search(pattern, lowered):
            return unit, None
    for pattern, reason in _X_REFUSALS:
        if re.search(pattern, lowered):
            return None, f"the x column is {name.strip()!r}: {reason}"
    return None, None


def x_column_name(column_names: str | None) -> str | None:
    """The first field of a column-name row (``"2Theta"`` of ``"2Theta<TAB>Intensity"``)."""
    if not column_names:
        return None
    text = column_names.strip()
    # a name with a unit in brackets may contain spaces: "2-Theta Angle (Degrees)", "Q (nm^-1)"
    bracketed = re.match(r"^([^\t,;]*?[\(\[][^\)\]]*[\)\]])", text)
    if bracketed:
        return bracketed.group(1)
    fields = re.split(r"[\t,;]+|\s{2,}|\s+", text)
    return fields[0] if fields and fields[0] else None


def wavelength_from_header(lines: list[str]) -> float | None:
    """A wavelength stated in the header (``Wavelength: 1.5406e-10 m``), Angstrom, or None.

    A value without a unit is taken in metres below 1e-6 (pyFAI writes SI) and in Angstrom
    otherwise.
    """
    for line in lines:
        match = _WAVELENGTH.search(line)
        if match is None:
            continue
        value = float(match.group(1))
        unit = (match.group(2) or "").lower()
        if unit == "nm":
            return value * 10.0
        if unit == "m" or (not unit and value < 1e-6):
            return value * 1e10
        return value
    return None


def anode_mentioned(lines: list[str]) -> str | None:
    """The tube anode a header names (``"Co"`` from ``"Co K-alpha1"``), or None."""
    for line in lines:
        match = _ANODE.search(line)
        if match is not None:
            return match.group(1).capitalize()
    return None


def neutron_mentioned(lines: list[str]) -> bool:
    """Whether the header says the data are neutron diffraction."""
    return any(_NEUTRON.search(line) for line in lines)
