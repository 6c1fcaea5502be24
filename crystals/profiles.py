"""Peak-shape, peak-width and texture functions for powder diffraction (pure numpy).

Every function is vectorised: arrays of peaks broadcast against arrays of angles, so a
renderer can evaluate many peaks on a grid in one call.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["pseudo_voigt", "caglioti_fwhm", "scherrer_fwhm", "march_dollase", "march_dollase_from_cos2"]

_FOUR_LN2 = 4.0 * np.log(2.0)
_GAUSS_NORM = 2.0 * np.sqrt(np.log(2.0) / np.pi)


def pseudo_voigt(x: ArrayLike, center: ArrayLike, fwhm: ArrayLike, eta: ArrayLike) -> np.ndarray:
    """Area-normalised pseudo-Voigt profile(s).

    ``PV(x) = eta * L(x) + (1 - eta) * G(x)`` with

    ``G(x) = (2 / fwhm) * sqrt(ln 2 / pi) * exp(-4 ln 2 (x - center)**2 / fwhm**2)``

    ``L(x) = (2 / (pi * fwhm)) / (1 + 4 (x - center)**2 / fwhm**2)``

    Both components integrate to 1 over x, so ``PV`` does too (for any ``eta`` in [0, 1]).

    Parameters
    ----------
    x : array_like, shape (n_x,)
        Angles at which to evaluate, degrees 2theta.
    center : array_like, shape (...)
        Peak centres, degrees 2theta (one per peak; any shape).
    fwhm : array_like, broadcastable to ``center``
        Full width at half maximum, degrees 2theta, > 0.
    eta : array_like, broadcastable to ``center``
        Lorentzian fraction in [0, 1].

    Returns
    -------
    numpy.ndarray, shape ``center.shape + (n_x,)``
        Profile values, 1/degree (multiply by an integrated intensity to get counts).

    Raises
    ------
    ValueError
        If any fwhm is not positive or any eta lies outside [0, 1].
    """
    x = np.asarray(x, dtype=float)
    center, fwhm, eta = np.broadcast_arrays(
        np.asarray(center, dtype=float), np.asarray(fwhm, dtype=float), np.asarray(eta, dtype=float)
    )
    if np.any(~(fwhm > 0)):
        raise ValueError("pseudo_voigt: every fwhm must be > 0 degrees")
    if np.any((eta < 0) | (eta > 1)):
        raise ValueError("pseudo_voigt: eta must lie in [0, 1]")
    dx2 = ((x - center[..., None]) / fwhm[..., None]) ** 2
    gauss = (_GAUSS_NORM / fwhm[..., None]) * np.exp(-_FOUR_LN2 * dx2)
    lorentz = (2.0 / (np.pi * fwhm[..., None])) / (1.0 + 4.0 * dx2)
    return eta[..., None] * lorentz + (1.0 - eta[..., None]) * gauss


def caglioti_fwhm(two_theta: ArrayLike, u: float, v: float, w: float) -> np.ndarray:
    """Instrumental peak width after Caglioti, Paoletti & Ricci (1958), Nucl. Instrum. 3, 223.

    ``FWHM**2 = U tan(theta)**2 + V tan(theta) + W`` with ``theta = two_theta / 2``.

    Parameters
    ----------
    two_theta : array_like
        Peak positions, degrees 2theta.
    u, v, w : float
        Caglioti parameters, degrees**2 (typical lab diffractometer: U 0.004, V -0.002, W 0.004).

    Returns
    -------
    numpy.ndarray
        FWHM, degrees 2theta (negative radicands are clipped to 0).
    """
    tan_theta = np.tan(np.radians(np.asarray(two_theta, dtype=float)) / 2.0)
    return np.sqrt(np.clip(u * tan_theta**2 + v * tan_theta + w, 0.0, None))


def scherrer_fwhm(
    two_theta: ArrayLike,
    size_nm: ArrayLike,
    wavelength_angstrom: float = 1.5406,
    shape_factor: float = 0.9,
) -> np.ndarray:
    """Crystallite-size broadening after Scherrer (1918).

    ``beta = K * lambda / (L * cos(theta))`` in radians, returned in degrees 2theta.

    Parameters
    ----------
    two_theta : array_like
        Peak positions, degrees 2theta.
    size_nm : array_like
        Mean crystallite size L, nanometres (> 0), broadcastable to ``two_theta``.
    wavelength_angstrom : float
        X-ray wavelength lambda, angstrom (Cu K-alpha1 1.5406).
    shape_factor : float
        Scherrer constant K (0.9 for spherical crystallites).

    Returns
    -------
    numpy.ndarray
        Size-broadening FWHM, degrees 2theta.

    Raises
    ------
    ValueError
        If a size is not positive.
    """
    size_nm = np.asarray(size_nm, dtype=float)
    if np.any(~(size_nm > 0)):
        raise ValueError("scherrer_fwhm: crystallite size must be > 0 nm")
    theta = np.radians(np.asarray(two_theta, dtype=float)) / 2.0
    beta_rad = shape_factor * wavelength_angstrom / (size_nm * 10.0 * np.cos(theta))
    return np.degrees(beta_rad)


def march_dollase_from_cos2(cos2_alpha: ArrayLike, r: ArrayLike) -> np.ndarray:
    """March-Dollase weight for given cos**2 of the angle to the preferred direction.

    ``W(alpha) = (r**2 cos(alpha)**2 + sin(alpha)**2 / r) ** (-3/2)``

    Dollase (1986), J. Appl. Cryst. 19, 267. ``r < 1``: plate-like crystallites lying with the
    preferred planes parallel to the substrate (those reflections are enhanced in Bragg-Brentano
    geometry); ``r = 1``: random powder (W = 1).

    Parameters
    ----------
    cos2_alpha : array_like
        cos**2 of the angle between a reflection's scattering vector and the preferred direction.
    r : array_like
        March parameter (> 0), broadcastable to ``cos2_alpha``.

    Returns
    -------
    numpy.ndarray
        Weights (dimensionless).
    """
    c2 = np.clip(np.asarray(cos2_alpha, dtype=float), 0.0, 1.0)
    r = np.asarray(r, dtype=float)
    if np.any(~(r > 0)):
        raise ValueError("march_dollase: r must be > 0")
    return (r**2 * c2 + (1.0 - c2) / r) ** -1.5


def _cos2_to_direction(hkls: np.ndarray, reciprocal_metric: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """cos**2 of the angle between reciprocal vectors ``hkls`` [..., 3] and ``preferred`` [3]."""
    g_dot_p = np.einsum("...i,ij,j->...", hkls, reciprocal_metric, preferred)
    g_norm2 = np.einsum("...i,ij,...j->...", hkls, reciprocal_metric, hkls)
    p_norm2 = preferred @ reciprocal_metric @ preferred
    return g_dot_p**2 / np.maximum(g_norm2 * p_norm2, 1e-300)


def march_dollase(
    hkls: ArrayLike | list[ArrayLike],
    lattice: object,
    preferred_hkl: ArrayLike,
    r: float,
) -> np.ndarray:
    """March-Dollase texture weight per reflection (see :func:`march_dollase_from_cos2`).

    The angle alpha is taken between the reciprocal-lattice vector of each reflection and the
    reciprocal vector of ``preferred_hkl`` (the normal of the preferred planes), using the
    reciprocal metric of ``lattice``. When a reflection is given as the list of its symmetry-
    equivalent members (an array [m, 3]), the weight is the mean over the members, as the
    powder average of a family requires.

    Parameters
    ----------
    hkls : array_like [n, 3] or list of array_like [m_i, 3]
        Miller indices, one row per reflection, or one array of equivalent members per peak.
    lattice : pymatgen.core.Lattice or array_like [3, 3]
        Direct lattice (rows are the lattice vectors, angstrom).
    preferred_hkl : array_like [3]
        Miller indices of the preferred planes (parallel to the substrate).
    r : float
        March parameter (> 0); 1 gives weights of 1.

    Returns
    -------
    numpy.ndarray [n]
        Texture weights (dimensionless).
    """
    matrix = np.asarray(getattr(lattice, "matrix", lattice), dtype=float)
    if matrix.shape != (3, 3):
        raise ValueError("march_dollase: lattice must be a 3x3 matrix of lattice vectors")
    reciprocal_metric = np.linalg.inv(matrix @ matrix.T)
    preferred = np.asarray(preferred_hkl, dtype=float)
    if preferred.shape != (3,) or not np.any(preferred):
        raise ValueError("march_dollase: preferred_hkl must be three Miller indices, not all 0")
    if isinstance(hkls, np.ndarray) and hkls.ndim == 2:
        members = [row[None, :] for row in hkls.astype(float)]
    else:
        members = [np.atleast_2d(np.asarray(m, dtype=float)) for m in hkls]
    weights = np.empty(len(members))
    for i, m in enumerate(members):
        if m.shape[-1] != 3:
            raise ValueError("march_dollase: each reflection needs three Miller indices")
        weights[i] = march_dollase_from_cos2(_cos2_to_direction(m, reciprocal_metric, preferred), r).mean()
    return weights
