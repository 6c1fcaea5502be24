"""Radiation and x-axis units: every pattern is brought to the model's Cu K-alpha1 2theta.

The classifier was trained on Cu K-alpha thin-film patterns (Oviedo et al. 2019, npj Comput.
Mater. 5, 60), so a peak is recognised by its 2theta *for Cu K-alpha1*. A file measured with
another anode, or written against another quantity (q, d), describes the same lattice spacings at
other abscissae; Bragg's law maps each point through its d-spacing,

    d = lambda / (2 sin theta)  (Bragg),   d = 2 pi / q,   theta_Cu = asin(lambda_Cu / (2 d)),

so the conversion is exact for the peak positions. Intensities are kept as measured (the
Lorentz-polarisation factor and the absorption differ slightly between wavelengths; the model's
preprocessing normalises the pattern and the training augmentation varies relative intensities).
Points whose d-spacing is below lambda_Cu / 2 have no Cu K-alpha1 angle (a Mo or Ag scan reaches
further into reciprocal space) and are dropped; how many is recorded by the caller.

Wavelengths: International Tables for Crystallography Vol. C (2006), Table 4.2.2.1, the K-alpha1
values that PANalytical and Rigaku software also write into their files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: The wavelength the model's 2theta axis refers to: Cu K-alpha1, Angstrom.
MODEL_WAVELENGTH_A: float = 1.540598
#: Name of the model's radiation, printed with every conversion.
MODEL_RADIATION: str = "Cu K-alpha1"

#: K-alpha1 wavelength of the common X-ray tube anodes, Angstrom (ITC Vol. C, Table 4.2.2.1).
ANODE_WAVELENGTHS_A: dict[str, float] = {
    "Cr": 2.289760,
    "Fe": 1.936042,
    "Co": 1.788965,
    "Cu": 1.540598,
    "Mo": 0.709317,
    "Ag": 0.559421,
}

#: x-axis units a pattern may arrive in (pyFAI's unit names where it has one).
X_UNITS: tuple[str, ...] = ("2th_deg", "2th_rad", "q_nm^-1", "q_A^-1", "d_A")

#: Wavelengths this close (relative) are the same radiation: no conversion is made.
_SAME_WAVELENGTH_RTOL = 1e-4


@dataclass(frozen=True)
class Radiation:
    """The wavelength a file was measured with and where that was learned.

    Parameters
    ----------
    wavelength_A : float
        Wavelength in Angstrom, > 0.
    source : str
        ``"file"`` (the file states it), ``"user"`` (``--wavelength`` / ``--anode`` or the
        beamline configuration) or ``"default"`` (nothing said: the model's Cu K-alpha1).
    name : str
        Human-readable radiation, e.g. ``"Mo K-alpha1"`` or ``"0.7293 A"``.
    """

    wavelength_A: float
    source: str
    name: str


def anode_wavelength(anode: str) -> float:
    """K-alpha1 wavelength of an X-ray tube anode.

    Parameters
    ----------
    anode : str
        Element symbol, case-insensitive (``"Co"``, ``"mo"``); see `ANODE_WAVELENGTHS_A`.

    Returns
    -------
    float
        Wavelength, Angstrom.

    Raises
    ------
    ValueError
        If the anode is not in the table (the message lists the known ones).
    """
    for symbol, wavelength in ANODE_WAVELENGTHS_A.items():
        if symbol.lower() == anode.strip().lower():
            return wavelength
    raise ValueError(f"unknown anode {anode!r} (known: {', '.join(ANODE_WAVELENGTHS_A)})")


def anode_name(wavelength_A: float) -> str:
    """``"<element> K-alpha1"`` when `wavelength_A` is a tabulated anode line, else ``"<x> A"``."""
    for symbol, tabulated in ANODE_WAVELENGTHS_A.items():
        if abs(wavelength_A - tabulated) <= 5e-4 * tabulated:
            return f"{symbol} K-alpha1"
    return f"{wavelength_A:.5g} A"


def resolve_radiation(
    file_wavelength_A: float | None, *, wavelength_A: float | None = None, anode: str | None = None
) -> Radiation:
    """Choose the wavelength of a measurement: the file's, else the user's, else Cu K-alpha1.

    A wavelength the file states wins over the user's declaration (the file was written by the
    instrument that measured it); a user's declaration that contradicts it is an error, so a
    wrong ``--anode`` never passes silently.

    Parameters
    ----------
    file_wavelength_A : float or None
        The wavelength stated in the file (Angstrom), or None.
    wavelength_A : float, optional
        The user's wavelength, Angstrom (``--wavelength``).
    anode : str, optional
        The user's anode (``--anode``); give at most one of `wavelength_A` and `anode`.

    Returns
    -------
    Radiation

    Raises
    ------
    ValueError
        Both `wavelength_A` and `anode` given, a non-positive wavelength, an unknown anode, or a
        declaration that contradicts the file.
    """
    if wavelength_A is not None and anode is not None:
        raise ValueError("give the wavelength or the anode, not both")
    user = anode_wavelength(anode) if anode is not None else wavelength_A
    if user is not None and not (np.isfinite(user) and 0.05 <= user <= 20.0):
        raise ValueError(f"wavelength {user!r} A is not a plausible X-ray wavelength (0.05-20 A)")
    if file_wavelength_A is not None:
        if user is not None and not np.isclose(user, file_wavelength_A, rtol=1e-3):
            raise ValueError(
                f"the file states a wavelength of {file_wavelength_A:.7g} A but {user:.7g} A "
                f"was declared"
            )
        return Radiation(file_wavelength_A, "file", anode_name(file_wavelength_A))
    if user is not None:
        return Radiation(user, "user", anode_name(user))
    return Radiation(MODEL_WAVELENGTH_A, "default", MODEL_RADIATION)


def d_spacing(x: np.ndarray, unit: str, wavelength_A: float) -> np.ndarray:
    """Lattice spacing of each abscissa, Angstrom (Bragg's law, d = 2 pi / q).

    Parameters
    ----------
    x : numpy.ndarray
        Abscissae, float[N], in `unit`.
    unit : str
        One of `X_UNITS`.
    wavelength_A : float
        Wavelength the 2theta values were measured with, Angstrom (unused for q and d).

    Returns
    -------
    numpy.ndarray
        float64[N]; ``inf`` at 2theta = 0 or q = 0.

    Raises
    ------
    ValueError
        If `unit` is not one of `X_UNITS`.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        if unit == "2th_deg":
            return wavelength_A / (2.0 * np.sin(np.radians(x) / 2.0))
        if unit == "2th_rad":
            return wavelength_A / (2.0 * np.sin(x / 2.0))
        if unit == "q_A^-1":
            return 2.0 * np.pi / x
        if unit == "q_nm^-1":
            return 10.0 * 2.0 * np.pi / x
        if unit == "d_A":
            return x.copy()
    raise ValueError(f"unknown x unit {unit!r} (known: {', '.join(X_UNITS)})")


def to_model_two_theta(x: np.ndarray, unit: str, wavelength_A: float) -> tuple[np.ndarray, np.ndarray]:
    """Map abscissae to the model's Cu K-alpha1 2theta through their d-spacings.

    Parameters
    ----------
    x, unit, wavelength_A
        As for `d_spacing`: float[N] abscissae in `unit` (one of `X_UNITS`), and the measurement
        wavelength in Angstrom (used for 2theta units only).

    Returns
    -------
    two_theta : numpy.ndarray
        float64[M], degrees for Cu K-alpha1, for the points kept.
    kept : numpy.ndarray
        bool[N], False where the d-spacing has no Cu K-alpha1 angle (d < lambda_Cu / 2).
    """
    x = np.asarray(x, dtype=np.float64)
    if unit == "2th_deg" and is_model_wavelength(wavelength_A):
        return x.copy(), np.ones(x.size, dtype=bool)
    d = d_spacing(x, unit, wavelength_A)
    sine = MODEL_WAVELENGTH_A / (2.0 * d)
    kept = (sine >= 0.0) & (sine <= 1.0)
    return np.degrees(2.0 * np.arcsin(sine[kept])), kept


SAME_RADIATION_RTOL: float = 1e-3
"""K-alpha1 wavelengths within this relative difference are the same radiation."""


def header_radiation_mismatch(metadata: dict[str, Any]) -> str | None:
    """The anode a file's header text names when the pattern was read with another wavelength.

    Parameters
    ----------
    metadata : dict
        A `patterns.Pattern`'s metadata: ``radiation_in_header`` (an anode named in the header's
        free text, which the reader does not trust on its own) and ``wavelength_A`` (the one used).

    Returns
    -------
    str or None
        The named anode (e.g. ``"Co"``) when its K-alpha1 differs from the wavelength used (the
        angles were probably converted from the wrong radiation), else None.
    """
    anode = metadata.get("radiation_in_header")
    used = metadata.get("wavelength_A")
    if anode not in ANODE_WAVELENGTHS_A or used is None:
        return None
    return None if np.isclose(ANODE_WAVELENGTHS_A[anode], used, rtol=SAME_RADIATION_RTOL) else str(anode)


def is_model_wavelength(wavelength_A: float) -> bool:
    """Whether `wavelength_A` is the model's Cu K-alpha1 (no conversion needed)."""
    return abs(wavelength_A - MODEL_WAVELENGTH_A) <= _SAME_WAVELENGTH_RTOL * MODEL_WAVELENGTH_A
