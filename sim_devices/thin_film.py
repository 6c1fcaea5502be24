r"""Thin-film diffraction physics of the simulated samples: peaks, profiles, background.

The samples of `sim_devices.samples` named after structures are built from these functions:

(b) **Structures simulated as thin films** (names = `crystals.list_structures` names such as
    ``"CsPbBr3"``, plus the `VARIANTS`, plus ``"cif:<path under data/cifs>"`` for the CIF
    library), label = the structure's space group (spglib's, for a CIF). The peak list
    comes from pymatgen's XRDCalculator (Cu K-alpha, via `crystals.powder.peak_list`:
    integrated intensities :math:`I_k` with multiplicity and Lorentz-polarisation, max 100),
    then:

    * **strain** (isotropic, :math:`\varepsilon`): :math:`d_k \to d_k (1 + \varepsilon)`,
      :math:`2\theta_k = 2 \arcsin(\lambda / 2 d_k)`;
    * **preferred orientation** (March-Dollase, Dollase 1986) along the film normal
      :math:`[hkl]_p` with ratio :math:`r`: :math:`I_k \to I_k \langle (r^2 \cos^2\alpha
      + \sin^2\alpha / r)^{-3/2} \rangle`, averaged over the symmetry-equivalent members of
      reflection :math:`k`, :math:`\alpha` the angle between a member and :math:`[hkl]_p`
      (:math:`r < 1`: plates lying on the substrate, :math:`[hkl]_p` reflections enhanced);
    * **broadening**: Gaussian instrument width (Caglioti 1958)
      :math:`\Gamma_G^2 = U \tan^2\theta + V \tan\theta + W` and Lorentzian size width
      (Scherrer) :math:`\Gamma_L = K \lambda / (L \cos\theta)`, combined into a pseudo-Voigt of
      width :math:`\Gamma` and Lorentz fraction :math:`\eta` by Thompson, Cox & Hastings (1987):
      :math:`\Gamma^5 = \Gamma_G^5 + 2.69269 \Gamma_G^4 \Gamma_L + 2.42843 \Gamma_G^3
      \Gamma_L^2 + 4.47163 \Gamma_G^2 \Gamma_L^3 + 0.07842 \Gamma_G \Gamma_L^4 + \Gamma_L^5`,
      :math:`\eta = 1.36603 q - 0.47719 q^2 + 0.11116 q^3`, :math:`q = \Gamma_L / \Gamma`;
    * **background**: :math:`b(x) = b_0 + b_1 e^{-x / x_b} + h\,G(x; x_h, w_h)` (flat, the
      low-angle air/slit scatter and the amorphous hump of a glass substrate);
    * optional **impurity phase**: a second structure's untextured peaks with area fraction
      :math:`f` of the main phase's scale.

    The density is :math:`s(x) = b(x) + A \sum_k (I_k / 100)\,\mathrm{PV}(x; 2\theta_k,
    \Gamma_k, \eta_k)` with :math:`A` the integrated rate of a reflection of relative
    intensity 100 (counts/s x deg), tabulated on a 0.002 deg grid over 0-95 deg (40 points
    per FWHM for the default ~0.085 deg peaks, 17 for the sharpest variant) so linear
    interpolation errs far below the Poisson noise; each peak is rendered within 60 FWHM of
    its centre (the Lorentzian tail beyond holds 0.5 % of its area).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pymatgen is imported lazily: `import sim_devices` stays light
    from pymatgen.core import Structure

#: Grid of simulated samples, degrees 2theta (0.002 deg step, 0-95 deg).
SIMULATION_GRID_DEG: np.ndarray = np.round(np.arange(0.0, 95.0 + 1e-9, 0.002), 6)
SIMULATION_GRID_DEG.setflags(write=False)
#: Peaks are taken from this 2theta range so tails of peaks just outside 0-95 deg are included.
PEAK_RANGE_DEG: tuple[float, float] = (1.0, 110.0)
#: Half-width, in FWHM, of the window each simulated peak is rendered in.
RENDER_REACH_FWHM: float = 60.0


@dataclass(frozen=True)
class ThinFilm:
    """Thin-film and instrument parameters of a simulated sample (see the module docstring).

    Parameters
    ----------
    preferred_hkl : tuple of int or None
        Planes lying parallel to the substrate (March-Dollase direction); None = random.
    march_r : float
        March-Dollase ratio r (> 0); 1 = no texture, < 1 enhances `preferred_hkl`.
    strain : float
        Isotropic lattice strain epsilon (d -> d (1 + epsilon)), dimensionless, |eps| < 0.1.
    caglioti_uvw : tuple of float
        Instrument Caglioti U, V, W, degrees**2.
    crystallite_size_nm : float
        Scherrer crystallite size L, nanometres (> 0).
    scherrer_k : float
        Scherrer shape factor K.
    peak_area : float
        Integrated rate of a reflection of relative intensity 100, counts/s x deg.
    background_flat : float
        Flat background b0, counts/s/deg.
    background_low_angle : float
        Amplitude b1 of the low-angle exponential background, counts/s/deg.
    background_decay_deg : float
        Decay length x_b of that background, degrees.
    substrate_hump : float
        Peak height h of the amorphous-substrate hump, counts/s/deg.
    substrate_hump_center_deg, substrate_hump_fwhm_deg : float
        Its centre x_h and FWHM w_h, degrees.
    impurity : str or None
        Name of a second structure (`crystals.list_structures`) present as an impurity.
    impurity_fraction : float
        Its peak scale relative to the main phase, in [0, 1].
    wavelength : str
        pymatgen wavelength name of the main line ("CuKa1": 1.54056 A).
    kalpha2_ratio : float
        Intensity of the Cu K-alpha2 line (1.54439 A) relative to K-alpha1, in [0, 1]
        (0.5 for an unmonochromated tube with a Ni filter; 0 for a K-alpha1 monochromator).
        Needs ``wavelength="CuKa1"`` when > 0.
    """

    preferred_hkl: tuple[int, int, int] | None = None
    march_r: float = 1.0
    strain: float = 0.0
    caglioti_uvw: tuple[float, float, float] = (0.004, -0.002, 0.004)
    crystallite_size_nm: float = 200.0
    scherrer_k: float = 0.9
    peak_area: float = 1.5e4
    background_flat: float = 1500.0
    background_low_angle: float = 4000.0
    background_decay_deg: float = 6.0
    substrate_hump: float = 800.0
    substrate_hump_center_deg: float = 24.0
    substrate_hump_fwhm_deg: float = 10.0
    impurity: str | None = None
    impurity_fraction: float = 0.0
    wavelength: str = "CuKa1"
    kalpha2_ratio: float = 0.5

    def __post_init__(self) -> None:
        checks = {
            "march_r": self.march_r > 0,
            "strain": abs(self.strain) < 0.1,
            "crystallite_size_nm": self.crystallite_size_nm > 0,
            "scherrer_k": self.scherrer_k > 0,
            "peak_area": self.peak_area >= 0,
            "background_flat": self.background_flat >= 0,
            "background_low_angle": self.background_low_angle >= 0,
            "background_decay_deg": self.background_decay_deg > 0,
            "substrate_hump": self.substrate_hump >= 0,
            "substrate_hump_fwhm_deg": self.substrate_hump_fwhm_deg > 0,
            "impurity_fraction": 0.0 <= self.impurity_fraction <= 1.0,
            "kalpha2_ratio": 0.0 <= self.kalpha2_ratio <= 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok or not math.isfinite(getattr(self, name))]
        if bad:
            raise ValueError(f"ThinFilm: invalid {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")
        if self.preferred_hkl is not None and (
            len(self.preferred_hkl) != 3 or not any(self.preferred_hkl)
        ):
            raise ValueError(f"ThinFilm: preferred_hkl must be 3 Miller indices, got {self.preferred_hkl!r}")
        if self.kalpha2_ratio > 0 and self.wavelength != "CuKa1":
            raise ValueError("ThinFilm: kalpha2_ratio > 0 needs wavelength='CuKa1' (the K-alpha1 line)")
        if self.impurity_fraction > 0 and self.impurity is None:
            raise ValueError("ThinFilm: impurity_fraction > 0 needs an impurity structure name")


def thompson_cox_hastings(fwhm_gauss: ArrayLike, fwhm_lorentz: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-Voigt width and Lorentz fraction approximating a Voigt (Thompson et al. 1987).

    Parameters
    ----------
    fwhm_gauss, fwhm_lorentz : array_like
        Gaussian and Lorentzian FWHM, degrees (>= 0, not both 0).

    Returns
    -------
    fwhm : numpy.ndarray
        Total FWHM, degrees.
    eta : numpy.ndarray
        Lorentz fraction in [0, 1].
    """
    g = np.asarray(fwhm_gauss, dtype=float)
    lo = np.asarray(fwhm_lorentz, dtype=float)
    fwhm = (
        g**5 + 2.69269 * g**4 * lo + 2.42843 * g**3 * lo**2 + 4.47163 * g**2 * lo**3
        + 0.07842 * g * lo**4 + lo**5
    ) ** 0.2
    q = lo / fwhm
    eta = np.clip(1.36603 * q - 0.47719 * q**2 + 0.11116 * q**3, 0.0, 1.0)
    return fwhm, eta


@dataclass(frozen=True)
class FilmPeaks:
    """Rendered reflections of a film: centres (deg), areas (counts/s x deg), FWHM (deg), eta."""

    centers: np.ndarray
    areas: np.ndarray
    fwhm: np.ndarray
    eta: np.ndarray
    hkls: list[tuple[int, int, int]]


def thin_film_peaks(
    structure: Structure, film: ThinFilm, *, textured: bool = True, kalpha2: bool = False
) -> FilmPeaks:
    """Peak positions, areas and shapes of `structure` as a thin film (module docstring).

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The phase.
    film : ThinFilm
        Strain, texture (used when `textured`), broadening and scale.
    textured : bool
        Apply `film.preferred_hkl` / `film.march_r` (False for an impurity phase).
    kalpha2 : bool
        Return the Cu K-alpha2 companions instead (same reflections at the K-alpha2
        wavelength, areas scaled by `film.kalpha2_ratio`).

    Returns
    -------
    FilmPeaks
        Reflections inside the Bragg limit, areas in counts/s x deg for `film.peak_area`.
    """
    from crystals.powder import peak_list
    from crystals.profiles import caglioti_fwhm, march_dollase, scherrer_fwhm

    from crystals.powder import wavelength_angstrom

    peaks = peak_list(structure, PEAK_RANGE_DEG, film.wavelength)
    wavelength = wavelength_angstrom("CuKa2") if kalpha2 else peaks.wavelength
    scale = film.kalpha2_ratio if kalpha2 else 1.0
    sine = wavelength / (2.0 * peaks.d_spacing * (1.0 + film.strain))
    keep = sine < 1.0
    centers = np.degrees(2.0 * np.arcsin(sine[keep]))
    areas = scale * film.peak_area * peaks.intensity[keep] / 100.0
    if textured and film.preferred_hkl is not None and film.march_r != 1.0:
        members = [m for m, k in zip(peaks.members, keep, strict=True) if k]
        areas = areas * march_dollase(members, peaks.lattice_matrix, film.preferred_hkl, film.march_r)
    u, v, w = film.caglioti_uvw
    gauss = caglioti_fwhm(centers, u, v, w)
    lorentz = scherrer_fwhm(centers, film.crystallite_size_nm, wavelength, film.scherrer_k)
    fwhm, eta = thompson_cox_hastings(gauss, lorentz)
    hkls = [h for h, k in zip(peaks.hkls, keep, strict=True) if k]
    return FilmPeaks(centers, areas, fwhm, eta, hkls)


def render_peaks(grid_deg: np.ndarray, peaks: FilmPeaks, reach_fwhm: float = RENDER_REACH_FWHM) -> np.ndarray:
    """Sum of area-normalised pseudo-Voigt peaks on `grid_deg`, counts/s/deg.

    Each peak is evaluated within ``reach_fwhm`` FWHM of its centre (the Gaussian part is
    zero to machine precision there; the Lorentzian tail beyond it holds
    ``2 / (pi * 2 * reach_fwhm)`` of its area, 0.5 % for the default 60), which makes a
    1500-reflection structure render in a fraction of a second.
    """
    from crystals.profiles import pseudo_voigt

    total = np.zeros_like(grid_deg, dtype=float)
    lows = np.searchsorted(grid_deg, peaks.centers - reach_fwhm * peaks.fwhm)
    highs = np.searchsorted(grid_deg, peaks.centers + reach_fwhm * peaks.fwhm, side="right")
    for k in range(peaks.centers.size):
        lo, hi = lows[k], highs[k]
        if hi > lo:
            profile = pseudo_voigt(grid_deg[lo:hi], peaks.centers[k], peaks.fwhm[k], peaks.eta[k])
            total[lo:hi] += peaks.areas[k] * profile
    return total


def render_film(
    grid_deg: np.ndarray, structure: Structure, film: ThinFilm, *, textured: bool = True
) -> np.ndarray:
    """Peaks of one phase on `grid_deg` (K-alpha1, plus K-alpha2 when its ratio > 0), counts/s/deg."""
    density = render_peaks(grid_deg, thin_film_peaks(structure, film, textured=textured))
    if film.kalpha2_ratio > 0:
        companions = thin_film_peaks(structure, film, textured=textured, kalpha2=True)
        density = density + render_peaks(grid_deg, companions)
    return density


def background(grid_deg: np.ndarray, film: ThinFilm) -> np.ndarray:
    """Background b(x) of the module docstring, counts/s/deg."""
    sigma = film.substrate_hump_fwhm_deg / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    hump = film.substrate_hump * np.exp(-0.5 * ((grid_deg - film.substrate_hump_center_deg) / sigma) ** 2)
    low_angle = film.background_low_angle * np.exp(-grid_deg / film.background_decay_deg)
    return film.background_flat + low_angle + hump
