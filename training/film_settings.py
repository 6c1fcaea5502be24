"""Ranges of the random thin-film and instrument effects of the training-data simulator."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SimulationSettings"]


@dataclass(frozen=True)
class SimulationSettings:
    """Ranges of the random thin-film effects (all drawn uniformly unless stated).

    Attributes
    ----------
    lattice_strain : float
        Half-range of the isotropic lattice scale of a pattern, fraction (0.02 = +-2 %).
    anisotropic_strain : float
        Half-range of independent axis changes allowed by the crystal system, fraction.
    monoclinic_beta_deg : float
        Half-range of the change of the monoclinic angle, degrees.
    texture_probability : float
        Probability that a pattern is textured (else random powder, r = 1).
    march_r : tuple of float
        Range of the March-Dollase r (log-uniform) for textured patterns.
    size_nm : tuple of float
        Crystallite size range (log-uniform), nanometres (Scherrer broadening, K = 0.9).
    microstrain : tuple of float
        Range (log-uniform) of the microstrain epsilon (strain broadening 4 epsilon tan theta).
    caglioti_u, caglioti_v, caglioti_w : tuple of float
        Ranges of the Caglioti parameters, degrees**2.
    eta : tuple of float
        Range of the Lorentzian fraction of the pseudo-Voigt.
    kalpha2_probability : float
        Probability of an unmonochromated beam (K-alpha2 at half the K-alpha1 intensity).
    zero_shift_deg : float
        Half-range of the 2theta zero shift, degrees.
    displacement_deg : float
        Half-range of the sample-displacement shift at 2theta = 0 (scales with cos theta), degrees.
    debye_waller_extra : tuple of float
        Range of an extra overall B (angstrom^2) per pattern, on top of each structure's own.
    peak_counts : tuple of float
        Range of the strongest peak's height above background (log-uniform), counts.
    background_ratio : tuple of float
        Range of background level / strongest peak height (log-uniform).
    hump_probability : float
        Probability of an amorphous (glass substrate) hump at 20-30 degrees.
    impurity_probability : float
        Probability of an impurity phase: a substrate (FTO = SnO2, ITO = In2O3) for any film,
        or, for lead-containing films, also PbI2 (excess or decomposition product).
    impurity_fraction : tuple of float
        Range (log-uniform) of the impurity's strongest peak relative to the film's strongest
        peak; PbI2 may exceed the film, substrates are capped at ``substrate_fraction_max``.
    substrate_fraction_max : float
        Upper limit of the substrate fraction.
    film_absorption : tuple of float
        Range (log-uniform) of 2 mu t, the film's absorption-thickness product: sets the angle
        dependence of film (1 - exp(-2 mu t / sin theta)) and substrate (exp(-2 mu t / sin theta))
        intensities.
    stray_peak_probability : float
        Probability of 1-3 stray single peaks at 1-10 % of the strongest peak.
    cif_fraction : float
        Fraction of each class drawn from the CIF library (when it has structures of the class).
    random_crystal_fraction : float
        Fraction of generated structures that are pyxtal random crystals.
    """

    lattice_strain: float = 0.02
    anisotropic_strain: float = 0.01
    monoclinic_beta_deg: float = 1.0
    texture_probability: float = 0.85
    march_r: tuple[float, float] = (0.15, 0.9)
    size_nm: tuple[float, float] = (20.0, 150.0)
    microstrain: tuple[float, float] = (1e-4, 3e-3)
    caglioti_u: tuple[float, float] = (0.0, 0.02)
    caglioti_v: tuple[float, float] = (-0.01, 0.0)
    caglioti_w: tuple[float, float] = (0.001, 0.01)
    eta: tuple[float, float] = (0.1, 0.8)
    kalpha2_probability: float = 0.7
    zero_shift_deg: float = 0.1
    displacement_deg: float = 0.1
    debye_waller_extra: tuple[float, float] = (0.0, 1.5)
    peak_counts: tuple[float, float] = (300.0, 300000.0)
    background_ratio: tuple[float, float] = (0.003, 0.3)
    hump_probability: float = 0.4
    impurity_probability: float = 0.3
    impurity_fraction: tuple[float, float] = (0.02, 1.5)
    substrate_fraction_max: float = 0.5
    film_absorption: tuple[float, float] = (0.02, 1.0)
    stray_peak_probability: float = 0.2
    cif_fraction: float = 0.1
    random_crystal_fraction: float = 0.2
