"""Simulated thin-film XRD training patterns for the seven space-group classes (numpy only).

The 164 simulated ICSD patterns of Oviedo et al. (2019) are not public, so training patterns are
simulated from structures: the cited metal-halide prototypes of :mod:`crystals.prototypes` and the
spglib-filtered CIF library of :mod:`crystals.cif_library`. Each pattern draws, from its own
seeded generator stream:

- a structure of the class (prototypes, and CIF structures for a minority ``cif_fraction``),
- a lattice variation that keeps the crystal system (isotropic scale, c/a for uniaxial cells,
  independent a, b, c, beta for monoclinic ones; wider for lattices flagged "estimated"/"derived"),
- March-Dollase texture along a low-index direction with strong, widely spaced planes
  (thin films are strongly textured: often only one (h00) or (00l) family survives), or none,
- Caglioti instrumental plus Scherrer size broadening, pseudo-Voigt profiles, optional K-alpha2,
- a 2theta zero shift and a sample-displacement shift (proportional to cos theta),
- the finite film thickness (absorption 2 mu t): low-angle film peaks relatively enhanced,
  substrate peaks attenuated through the film,
- a smooth background (constant, decay at low angle, slope, optional amorphous glass hump),
- occasional impurity phases (PbI2, FTO/SnO2, ITO/In2O3) and stray single peaks,
- Poisson counting noise at a random count level.

Intensities are raw counts (not normalised): preprocessing belongs to :mod:`models.preprocess`.

The renderer is vectorised over (pattern, peak) pairs: positions for strained lattices come from
the reciprocal metric of the stored Miller indices (as :func:`crystals.two_theta_for_lattice`), so
no pymatgen call is made per pattern; peaks are placed as sticks on a 0.02-degree grid
(``np.bincount``) and convolved with pseudo-Voigt profiles by FFT (analytic transforms), so the
cost does not grow with the number of peaks. Measured on this machine: about 4,500 patterns per
CPU-second on one core (about 2,100/s wall clock while the 2 cores were shared by other jobs),
once the per-structure peak lists are cached (10-20 s, once per process).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from crystals.cif_library import load_cif_library
from crystals.powder import PeakList, peak_list, wavelength_angstrom
from crystals.profiles import caglioti_fwhm, march_dollase_from_cos2, scherrer_fwhm
from crystals.prototypes import FILM_TEXTURE, IMPURITY_PHASES, PROTOTYPES, get_structure
from models.grid import GRID, GRID_SIZE, GRID_START, GRID_STEP
from patterns import DIMENSIONALITIES, SPACE_GROUP_TO_DIMENSIONALITY, SPACE_GROUPS

__all__ = [
    "LABEL_THEO_COUNTS",
    "SimulationSettings",
    "class_counts",
    "render_pattern",
    "simulate_training_set",
    "structure_sources",
]

#: Class balance of the paper's 164 simulated ICSD patterns (data/auto-xrd/label_theo.csv).
LABEL_THEO_COUNTS: dict[str, int] = {
    "Fm-3m": 58, "I4/mcm": 8, "P2_1/a": 30, "P-3m1": 18, "P6_3/mmc": 14, "Pc": 6, "Pm-3m": 30,
}

_LAMBDA_KA1 = wavelength_angstrom("CuKa1")
_LAMBDA_KA2 = wavelength_angstrom("CuKa2")
_PEAK_RANGE = (2.0, 66.0)  # degrees: computed wider than the grid so shifts and strain stay inside
_MIN_RELATIVE_INTENSITY = 0.002  # % of the strongest powder peak: weaker ones are dropped (texture can raise a
# reflection by up to r**-3 ~ 300x, so the cut sits well below what could become visible)
FILM_TEXTURE_SHARE = 0.8  # probability that a textured prototype pattern uses a known film habit
_VISIBLE = 5e-4  # fraction of a pattern's strongest peak below which a peak is not rendered


@dataclass(frozen=True)
class SimulationSettings:
    """Ranges of the random thin-film effects (all drawn uniformly unless stated).

    Attributes
    ----------
    lattice_strain : float
        Half-range of the isotropic lattice scale, fraction (0.02 = +-2 %).
    lattice_strain_uncertain : float
        Same for structures whose lattice is "estimated" or "derived" (wider: less is known).
    anisotropic_strain : float
        Half-range of independent axis changes allowed by the crystal system, fraction.
    monoclinic_beta_deg : float
        Half-range of the change of the monoclinic angle, degrees.
    texture_probability : float
        Probability that a pattern is textured (else random powder, r = 1).
    march_r : tuple of float
        Range of the March-Dollase r (log-uniform) for textured patterns.
    size_nm : tuple of float
        Crystallite size range (log-uniform), nanometres.
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
        peak; PbI2 may exceed the film (degraded or PbI2-rich films), substrates are capped at
        ``substrate_fraction_max``.
    substrate_fraction_max : float
        Upper limit of the substrate fraction.
    film_absorption : tuple of float
        Range (log-uniform) of 2 mu t, the film's absorption-thickness product: sets the
        angle dependence of film (1 - exp(-2 mu t / sin theta)) and substrate
        (exp(-2 mu t / sin theta)) intensities.
    stray_peak_probability : float
        Probability of 1-3 stray single peaks at 1-10 % of the strongest peak.
    cif_fraction : float
        Fraction of each class drawn from the CIF library (when it has structures of the class).
    """

    lattice_strain: float = 0.02
    lattice_strain_uncertain: float = 0.05
    anisotropic_strain: float = 0.01
    monoclinic_beta_deg: float = 1.0
    texture_probability: float = 0.85
    march_r: tuple[float, float] = (0.15, 0.9)
    size_nm: tuple[float, float] = (20.0, 150.0)
    caglioti_u: tuple[float, float] = (0.0, 0.02)
    caglioti_v: tuple[float, float] = (-0.01, 0.0)
    caglioti_w: tuple[float, float] = (0.001, 0.01)
    eta: tuple[float, float] = (0.1, 0.8)
    kalpha2_probability: float = 0.7
    zero_shift_deg: float = 0.1
    displacement_deg: float = 0.1
    peak_counts: tuple[float, float] = (300.0, 300000.0)
    background_ratio: tuple[float, float] = (0.003, 0.3)
    hump_probability: float = 0.4
    impurity_probability: float = 0.3
    impurity_fraction: tuple[float, float] = (0.02, 1.5)
    substrate_fraction_max: float = 0.5
    film_absorption: tuple[float, float] = (0.02, 1.0)
    stray_peak_probability: float = 0.2
    cif_fraction: float = 0.1


# --------------------------------------------------------------------------------------------
# Per-structure tables (built once per process)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """A structure ready for rendering."""

    name: str
    space_group: str
    citation_key: str
    origin: str  # "prototype" or "cif"
    uncertain: bool  # lattice estimated/derived: wider variation
    system: str  # crystal system: decides which lattice variations keep the symmetry
    elements: frozenset[str]  # chemical elements (decides which impurity phases are plausible)
    abc: np.ndarray  # a, b, c (angstrom)
    angles: np.ndarray  # alpha, beta, gamma (degrees)
    hkl: np.ndarray  # [P, 3] representative Miller indices
    intensity: np.ndarray  # [P] relative integrated intensity (max 100), K-alpha1
    directions: np.ndarray  # [D, 3] candidate preferred (hkl)
    direction_weights: np.ndarray  # [D] probabilities
    cos2: np.ndarray  # [D, P, M] cos**2 to each direction per family member, NaN padded


def _crystal_system(abc: np.ndarray, angles: np.ndarray) -> str:
    a, b, c = abc
    if np.allclose(angles, 90.0, atol=1e-3):
        if np.isclose(a, b, rtol=1e-4) and np.isclose(b, c, rtol=1e-4):
            return "cubic"
        if np.isclose(a, b, rtol=1e-4):
            return "tetragonal"
        return "orthorhombic"
    if np.isclose(angles[0], 90, atol=1e-3) and np.isclose(angles[1], 90, atol=1e-3) and np.isclose(angles[2], 120, atol=1e-3):
        return "hexagonal"
    return "monoclinic_or_lower"


def _lattice_matrices(abc: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Lattice matrices [B, 3, 3] (rows a, b, c; pymatgen's convention) from [B, 3] parameters."""
    a, b, c = abc[:, 0], abc[:, 1], abc[:, 2]
    al, be, ga = (np.radians(angles[:, i]) for i in range(3))
    cos_al, cos_be, cos_ga = np.cos(al), np.cos(be), np.cos(ga)
    sin_be = np.sin(be)
    # pymatgen Lattice.from_parameters: a along a rotated x, c along z
    val = np.clip((cos_al * cos_be - cos_ga) / (np.sin(al) * sin_be), -1, 1)
    gamma_star = np.arccos(val)
    m = np.zeros((len(a), 3, 3))
    m[:, 0] = np.stack([a * sin_be, np.zeros_like(a), a * cos_be], axis=1)
    m[:, 1] = np.stack([-b * np.sin(al) * np.cos(gamma_star), b * np.sin(al) * np.sin(gamma_star), b * cos_al], axis=1)
    m[:, 2] = np.stack([np.zeros_like(a), np.zeros_like(a), c], axis=1)
    return m


def _preferred_directions(peaks: PeakList, keep: np.ndarray, max_index: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Candidate texture directions: low-index reflections weighted by intensity x d**4.

    Films grow with dense, low-energy planes parallel to the substrate (the (100) planes of
    perovskites, the layers of A3B2X9 compounds); dense planes have large d, hence the strong
    weight on d. Each candidate is the first family member reduced by its gcd.
    """
    rows, weights = [], []
    for i in np.flatnonzero(keep):
        h = np.asarray(peaks.hkls[i])
        if np.abs(h).max() > max_index or peaks.two_theta[i] > 40.0:
            continue
        g = math.gcd(*(int(v) for v in h))
        direction = tuple(int(v) for v in h // max(g, 1))
        if direction in rows:
            weights[rows.index(direction)] += peaks.intensity[i] * peaks.d_spacing[i] ** 4
            continue
        rows.append(direction)
        weights.append(peaks.intensity[i] * peaks.d_spacing[i] ** 4)
    if not rows:
        rows, weights = [(0, 0, 1)], [1.0]
    order = np.argsort(weights)[::-1][:6]
    w = np.asarray(weights)[order]
    return np.asarray(rows)[order], w / w.sum()


def _build_source(
    name: str,
    space_group: str,
    citation_key: str,
    origin: str,
    uncertain: bool,
    structure: Any,
    film_texture: tuple[tuple[int, int, int], ...] = (),
) -> _Source:
    peaks = peak_list(structure, _PEAK_RANGE, "CuKa1")
    keep = peaks.intensity >= _MIN_RELATIVE_INTENSITY
    hkl = np.array([m[0] for m, k in zip(peaks.members, keep) if k], dtype=float)
    members = [m.astype(float) for m, k in zip(peaks.members, keep) if k]
    directions, direction_weights = _preferred_directions(peaks, keep)
    if film_texture:
        # known film habits get FILM_TEXTURE_SHARE of the draws, the generic candidates the rest
        known = np.asarray(film_texture)
        others = [i for i, d in enumerate(directions) if not any(np.array_equal(d, k) for k in known)]
        directions = np.concatenate([known, directions[others]])
        direction_weights = np.concatenate(
            [np.full(len(known), FILM_TEXTURE_SHARE / len(known)), (1.0 - FILM_TEXTURE_SHARE) * direction_weights[others] / max(direction_weights[others].sum(), 1e-12)]
        )
        direction_weights = direction_weights / direction_weights.sum()
    lattice = structure.lattice
    metric = np.linalg.inv(lattice.matrix @ lattice.matrix.T)
    max_m = max(len(m) for m in members)
    padded = np.full((len(members), max_m, 3), np.nan)
    for i, m in enumerate(members):
        padded[i, : len(m)] = m
    g_dot_p = np.einsum("pmi,ij,dj->dpm", padded, metric, directions.astype(float))
    g2 = np.einsum("pmi,ij,pmj->pm", padded, metric, padded)
    p2 = np.einsum("di,ij,dj->d", directions.astype(float), metric, directions.astype(float))
    cos2 = g_dot_p**2 / (g2[None] * p2[:, None, None])
    abc = np.array(lattice.abc)
    angles = np.array(lattice.angles)
    return _Source(
        name=name, space_group=space_group, citation_key=citation_key, origin=origin, uncertain=uncertain,
        system=_crystal_system(abc, angles),
        elements=frozenset(el.symbol for el in structure.composition.elements), abc=abc, angles=angles, hkl=hkl,
        intensity=np.asarray(peaks.intensity)[keep], directions=directions,
        direction_weights=direction_weights, cos2=cos2,
    )


@functools.lru_cache(maxsize=1)
def _prototype_sources() -> dict[str, list[_Source]]:
    by_class: dict[str, list[_Source]] = {sg: [] for sg in SPACE_GROUPS}
    for name, proto in PROTOTYPES.items():
        uncertain = any(flag in proto.citation for flag in ("estimated", "derived"))
        by_class[proto.space_group].append(
            _build_source(
                name, proto.space_group, proto.citation_key, "prototype", uncertain, get_structure(name),
                FILM_TEXTURE[proto.space_group],
            )
        )
    return by_class


@functools.lru_cache(maxsize=1)
def _cif_sources() -> dict[str, list[_Source]]:
    by_class: dict[str, list[_Source]] = {sg: [] for sg in SPACE_GROUPS}
    for entry in load_cif_library():
        # spglib's conventional standard cell, symmetrised at the library's tolerance: several
        # files are in non-standard or primitive settings, and the lattice variation must see the
        # true crystal system (a cubic crystal stored in a tetragonal cell would be split)
        conventional = SpacegroupAnalyzer(entry.structure, symprec=0.1).get_conventional_standard_structure()
        by_class[entry.space_group].append(
            _build_source(entry.name, entry.space_group, entry.name, "cif", False, conventional)
        )
    return by_class


@functools.lru_cache(maxsize=1)
def _impurity_sources() -> list[_Source]:
    return [
        _build_source(name, p.space_group, p.citation_key, "impurity", False, get_structure(name))
        for name, p in IMPURITY_PHASES.items()
    ]


def structure_sources() -> dict[str, list[str]]:
    """Class -> names of the structures the simulator draws from (prototypes, then CIFs)."""
    protos, cifs = _prototype_sources(), _cif_sources()
    return {sg: [s.name for s in protos[sg]] + [s.name for s in cifs[sg]] for sg in SPACE_GROUPS}


# --------------------------------------------------------------------------------------------
# Class counts
# --------------------------------------------------------------------------------------------


def class_counts(n_per_class: int | dict[str, int] | None, task: str = "space_group") -> dict[str, int]:
    """Number of patterns per space group for a request.

    Parameters
    ----------
    n_per_class : int, dict or None
        int: that many per class of the task (for "dimensionality", split over the space groups
        of each dimensionality in the label_theo.csv proportions). dict: class -> count (classes
        of the task). None: the label_theo.csv balance times 10 (1640 patterns).
    task : {"space_group", "dimensionality"}

    Returns
    -------
    dict
        Space group -> count (>= 0).
    """
    if task not in ("space_group", "dimensionality"):
        raise ValueError(f"task must be 'space_group' or 'dimensionality', got {task!r}")
    if n_per_class is None:
        return {sg: 10 * LABEL_THEO_COUNTS[sg] for sg in SPACE_GROUPS}
    classes = SPACE_GROUPS if task == "space_group" else DIMENSIONALITIES
    if isinstance(n_per_class, dict):
        unknown = set(n_per_class) - set(classes)
        if unknown:
            raise ValueError(f"unknown classes for task {task!r}: {sorted(unknown)}; known: {classes}")
        requested = {c: n_per_class.get(c, 0) for c in classes}
    elif isinstance(n_per_class, (int, np.integer)) and not isinstance(n_per_class, bool):
        requested = {c: int(n_per_class) for c in classes}
    else:
        raise ValueError(f"n_per_class must be an int, a dict or None, got {type(n_per_class).__name__}")
    for c, n in requested.items():
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"count for class {c!r} must be a non-negative int, got {n!r}")
    if task == "space_group":
        return {sg: int(requested[sg]) for sg in SPACE_GROUPS}
    counts = {sg: 0 for sg in SPACE_GROUPS}
    for dim, n in requested.items():
        groups = [sg for sg in SPACE_GROUPS if SPACE_GROUP_TO_DIMENSIONALITY[sg] == dim]
        theo = np.array([LABEL_THEO_COUNTS[sg] for sg in groups], dtype=float)
        share = np.floor(n * theo / theo.sum()).astype(int)
        share[np.argsort(-(n * theo / theo.sum() - share))[: n - share.sum()]] += 1  # largest remainders
        for sg, k in zip(groups, share):
            counts[sg] = int(k)
    return counts


# --------------------------------------------------------------------------------------------
# Sampling and rendering
# --------------------------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size: int | None = None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _varied_lattice(src: _Source, rng: np.random.Generator, s: SimulationSettings, n: int) -> tuple[np.ndarray, np.ndarray]:
    """[n, 3] abc and [n, 3] angles varied without breaking the crystal system."""
    half = s.lattice_strain_uncertain if src.uncertain else s.lattice_strain
    scale = 1.0 + rng.uniform(-half, half, n)
    abc = src.abc[None, :] * scale[:, None]
    angles = np.repeat(src.angles[None, :], n, axis=0)
    aniso = s.anisotropic_strain
    if src.system in ("tetragonal", "hexagonal"):
        abc[:, 2] *= 1.0 + rng.uniform(-aniso, aniso, n)
    elif src.system == "orthorhombic":
        abc *= 1.0 + rng.uniform(-aniso, aniso, (n, 3))
    elif src.system == "monoclinic_or_lower":
        abc *= 1.0 + rng.uniform(-aniso, aniso, (n, 3))
        # vary only the angles that differ from 90 (the monoclinic one)
        oblique = ~np.isclose(src.angles, 90.0, atol=1e-3)
        angles[:, oblique] += rng.uniform(-s.monoclinic_beta_deg, s.monoclinic_beta_deg, (n, int(oblique.sum())))
    return abc, angles


def _bragg_two_theta(hkl: np.ndarray, abc: np.ndarray, angles: np.ndarray, wavelength: float) -> np.ndarray:
    """[n, P] Bragg angles (degrees) of ``hkl`` for n lattices; NaN beyond the limiting sphere."""
    m = _lattice_matrices(abc, angles)
    metric = np.linalg.inv(m @ np.swapaxes(m, 1, 2))
    q2 = np.einsum("pi,nij,pj->np", hkl, metric, hkl)
    s = wavelength * np.sqrt(q2) / 2.0
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(s < 1.0, s, np.nan)))


def _film_factor(two_theta: np.ndarray, absorption: np.ndarray) -> np.ndarray:
    """Relative diffracted intensity of a film of finite thickness (symmetric Bragg-Brentano).

    ``(1 - exp(-2 mu t / sin theta)) / (1 - exp(-2 mu t))`` with ``absorption = 2 mu t``: a thin
    film (small 2 mu t; metal-halide films of 0.3-1 um at Cu K-alpha have 2 mu t ~ 0.05-0.2)
    scatters relatively more at low angles, where the beam path through it is longer; a thick
    one tends to the constant of a bulk powder.
    """
    sin_theta = np.sin(np.radians(np.nan_to_num(two_theta, nan=90.0)) / 2.0)
    return -np.expm1(-absorption / sin_theta) / -np.expm1(-absorption)


def _substrate_factor(two_theta: np.ndarray, absorption: np.ndarray) -> np.ndarray:
    """Attenuation ``exp(-2 mu t / sin theta)`` of substrate reflections seen through the film."""
    sin_theta = np.sin(np.radians(np.nan_to_num(two_theta, nan=90.0)) / 2.0)
    return np.exp(-absorption / sin_theta)


def _phase_peaks(
    src: _Source, n: int, rng: np.random.Generator, s: SimulationSettings
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Positions [n, P] (degrees, K-alpha1) and textured intensities [n, P] for n samples of src."""
    abc, angles = _varied_lattice(src, rng, s, n)
    two_theta = _bragg_two_theta(src.hkl, abc, angles, _LAMBDA_KA1)
    textured = rng.random(n) < s.texture_probability
    r = np.where(textured, _log_uniform(rng, *s.march_r, n), 1.0)
    direction = rng.choice(len(src.directions), size=n, p=src.direction_weights)
    cos2 = src.cos2[direction]  # [n, P, M]
    weights = march_dollase_from_cos2(np.nan_to_num(cos2, nan=0.0), r[:, None, None])
    valid = ~np.isnan(cos2)
    texture = (weights * valid).sum(axis=2) / valid.sum(axis=2)
    intensity = src.intensity[None, :] * texture
    abc_list, angle_list = np.round(abc, 4).tolist(), np.round(angles, 3).tolist()
    r_list, hkl_list = np.round(r, 4).tolist(), src.directions[direction].tolist()
    info = [
        {
            "lattice_abc": abc_list[i],
            "lattice_angles": angle_list[i],
            "preferred_hkl": hkl_list[i] if textured[i] else None,
            "march_r": r_list[i],
        }
        for i in range(n)
    ]
    return two_theta, intensity, info


_KERNEL_HALF = 64  # grid points (2.56 deg) of padding each side: peaks just outside the grid still leak in
_WIDTH_NODES = np.linspace(GRID_START, GRID_START + GRID_STEP * (GRID_SIZE - 1), 4)  # degrees
_OVERSAMPLE = 2  # sticks live on a grid this many times finer: narrow peaks keep their shape
_FFT_SIZE = 4096  # > (GRID_SIZE + 2 * _KERNEL_HALF) * _OVERSAMPLE: tails wrap only beyond the padding
_CHUNK = 512  # patterns per FFT batch (bounds memory)


def _render(
    centers: np.ndarray,
    heights: np.ndarray,
    sample: np.ndarray,
    n_samples: int,
    node_fwhm: np.ndarray,
    eta: np.ndarray,
) -> np.ndarray:
    """Sum pseudo-Voigt peaks onto the grid, per pattern, by stick rendering plus convolution.

    Each peak (integrated intensity ``heights``) is split linearly between the two nearest
    points of a grid ``_OVERSAMPLE`` times finer (area and centroid exact), every pattern's stick
    spectrum is convolved (FFT, with the analytic transforms of the Gaussian and Lorentzian) with
    area-normalised pseudo-Voigt kernels whose FWHM is that of the pattern at each node of
    ``_WIDTH_NODES``; the results are blended linearly between the
    nodes, so the width follows the Caglioti/Scherrer angle dependence. The cost is independent
    of the number of peaks.

    Parameters
    ----------
    centers, heights, sample : numpy.ndarray [K]
        Peak position (degrees), integrated intensity and pattern index of every (pattern, peak) pair.
    n_samples : int
        Number of patterns.
    node_fwhm : numpy.ndarray [n_samples, len(_WIDTH_NODES)]
        FWHM of each pattern at the width nodes, degrees.
    eta : numpy.ndarray [n_samples]
        Lorentzian fraction of each pattern.

    Returns
    -------
    numpy.ndarray float32 [n_samples, GRID_SIZE]
        Intensity density (integrated intensity per degree).
    """
    from scipy import fft

    pad = _KERNEL_HALF * _OVERSAMPLE
    step = GRID_STEP / _OVERSAMPLE
    length = (GRID_SIZE - 1) * _OVERSAMPLE + 1 + 2 * pad
    position = (centers - GRID_START) / step + pad
    ok = (position >= 0) & (position < length - 1)
    position, heights, sample = position[ok], heights[ok], sample[ok]
    # linear split between the two nearest points of the fine grid: area and centroid exact
    lower = np.floor(position).astype(np.int64)
    frac = position - lower
    flat = sample * length + lower
    size = n_samples * length
    sticks = np.bincount(flat, weights=heights * (1.0 - frac), minlength=size)
    sticks += np.bincount(flat + 1, weights=heights * frac, minlength=size)
    sticks = sticks.reshape(n_samples, length)

    # Fourier transforms of the unit-area profiles (frequency nu in cycles per degree):
    # Gaussian exp(-(pi fwhm nu)^2 / (4 ln 2)), Lorentzian exp(-pi fwhm |nu|). Using them directly
    # makes the kernel exact (no truncation); the padding keeps wrapped-around tails negligible.
    nu = np.fft.rfftfreq(_FFT_SIZE, d=step).astype(np.float32)[None, None, :]
    gauss_factor = np.float32(1.0 / (4.0 * math.log(2.0)))
    n_nodes = len(_WIDTH_NODES)
    blend = np.stack([np.interp(GRID, _WIDTH_NODES, np.eye(n_nodes)[k]) for k in range(n_nodes)])  # [nodes, G]
    out = np.empty((n_samples, GRID_SIZE), dtype=np.float32)
    blend = blend.astype(np.float32)
    for start in range(0, n_samples, _CHUNK):
        rows = slice(start, min(start + _CHUNK, n_samples))
        f = node_fwhm[rows][:, :, None].astype(np.float32)  # [b, nodes, 1]
        e = eta[rows][:, None, None].astype(np.float32)
        a = np.float32(math.pi) * f * nu
        kernel_spectrum = e * np.exp(-a) + (1.0 - e) * np.exp(-(a * a) * gauss_factor)  # real, even kernels
        # single precision: 5x faster FFTs, 1e-7 relative error, far below the counting noise
        spectrum = fft.rfft(sticks[rows].astype(np.float32), _FFT_SIZE, axis=-1)
        convolved = fft.irfft(spectrum[:, None, :] * kernel_spectrum, _FFT_SIZE, axis=-1)
        # the kernel is centred at index 0: grid point g sits at padded index g + pad
        window = convolved[:, :, pad : pad + (GRID_SIZE - 1) * _OVERSAMPLE + 1 : _OVERSAMPLE]
        out[rows] = np.einsum("bng,ng->bg", window, blend) / step
    return out


_POISSON_EXACT_BELOW = 100.0  # counts: above this the normal approximation of Poisson is used


def _counting_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts for expected values ``expected`` (float32 out).

    Exact Poisson draws below ``_POISSON_EXACT_BELOW`` counts; above, the normal approximation
    N(lambda, lambda) (skewness 1/sqrt(lambda) < 0.1), three times cheaper, rounded and clipped at 0.
    """
    out = np.empty(expected.shape, dtype=np.float32)
    low = expected < _POISSON_EXACT_BELOW
    out[low] = rng.poisson(expected[low])
    high = ~low
    lam = expected[high].astype(np.float32)
    out[high] = np.maximum(np.rint(lam + np.sqrt(lam) * rng.standard_normal(lam.shape, dtype=np.float32)), 0.0)
    return out


def render_pattern(
    structure: str,
    *,
    lattice_scale: float = 1.0,
    preferred_hkl: tuple[int, int, int] | None = None,
    march_r: float = 1.0,
    fwhm_deg: float = 0.1,
    eta: float = 0.5,
    zero_shift_deg: float = 0.0,
) -> np.ndarray:
    """Noise-free, background-free pattern of one prototype on GRID (Cu K-alpha1), max 1.

    The same renderer as :func:`simulate_training_set` with every effect fixed by the caller,
    for tests and for simulated samples of known structure.

    Parameters
    ----------
    structure : str
        A prototype name (crystals.list_structures()).
    lattice_scale : float
        Isotropic lattice scale (1.01 = +1 % strain).
    preferred_hkl : tuple of int, optional
        March-Dollase preferred direction (None: random powder).
    march_r : float
        March parameter (> 0) used with ``preferred_hkl``.
    fwhm_deg : float
        Peak FWHM, degrees 2theta (> 0).
    eta : float
        Lorentzian fraction in [0, 1].
    zero_shift_deg : float
        Added to every peak position, degrees.

    Returns
    -------
    numpy.ndarray float64 [1376]
        Intensity on GRID scaled to a maximum of 1.
    """
    if not lattice_scale > 0 or not fwhm_deg > 0 or not 0.0 <= eta <= 1.0 or not march_r > 0:
        raise ValueError("render_pattern: lattice_scale, fwhm_deg and march_r must be > 0, eta in [0, 1]")
    proto = PROTOTYPES.get(structure) or IMPURITY_PHASES.get(structure)
    if proto is None:
        raise ValueError(f"unknown structure {structure!r}")
    src = _build_source(structure, proto.space_group, proto.citation_key, "prototype", False, get_structure(structure))
    two_theta = _bragg_two_theta(src.hkl, src.abc[None] * lattice_scale, src.angles[None], _LAMBDA_KA1)[0]
    intensity = src.intensity.copy()
    if preferred_hkl is not None:
        from crystals.profiles import march_dollase

        peaks = peak_list(get_structure(structure), _PEAK_RANGE, "CuKa1")
        members = [m for m, k in zip(peaks.members, peaks.intensity >= _MIN_RELATIVE_INTENSITY) if k]
        intensity = intensity * march_dollase(members, get_structure(structure).lattice, preferred_hkl, march_r)
    ok = np.isfinite(two_theta)
    centers = two_theta[ok] + zero_shift_deg
    n = int(ok.sum())
    pattern = _render(
        centers, intensity[ok], np.zeros(n, dtype=np.int64), 1,
        np.full((1, len(_WIDTH_NODES)), fwhm_deg), np.array([eta]),
    )[0]
    top = pattern.max()
    return pattern / top if top > 0 else pattern


def simulate_training_set(
    n_per_class: int | dict[str, int] | None,
    seed: int,
    task: str = "space_group",
    settings: SimulationSettings | None = None,
    include_cifs: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Simulate raw thin-film XRD patterns on :data:`models.grid.GRID`.

    Parameters
    ----------
    n_per_class : int, dict or None
        Patterns per class (see :func:`class_counts`); None follows label_theo.csv x 10.
    seed : int
        Seed of the only random generator used: equal seeds give identical output.
    task : {"space_group", "dimensionality"}
        Which labels ``y`` holds: indices into patterns.SPACE_GROUPS or patterns.DIMENSIONALITIES.
    settings : SimulationSettings, optional
        Ranges of the random effects; defaults to :class:`SimulationSettings`.
    include_cifs : bool
        Draw ``settings.cif_fraction`` of each class from the CIF library.

    Returns
    -------
    X : numpy.ndarray float32 [N, 1376]
        Raw intensity (counts, with background and Poisson noise) on GRID (5-60 deg, 0.04 deg).
    y : numpy.ndarray int64 [N]
        Class indices of the task.
    meta : list of dict
        Per pattern: structure, space_group, dimensionality, citation_key, origin
        ("prototype"/"cif"), lattice_abc, lattice_angles, preferred_hkl (None = random powder),
        march_r, size_nm, caglioti_uvw, eta, kalpha2, zero_shift_deg, displacement_deg,
        peak_counts, film_absorption_2mut, background, impurity, stray_peaks, seed.

    Raises
    ------
    ValueError
        For an unknown task, unknown classes or negative counts.
    """
    s = settings or SimulationSettings()
    counts = class_counts(n_per_class, task)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    protos = _prototype_sources()
    cifs = _cif_sources() if include_cifs else {sg: [] for sg in SPACE_GROUPS}
    impurities = _impurity_sources()

    # 1. assign a structure to every pattern (class order, then shuffled at the end)
    assigned: list[_Source] = []
    for sg in SPACE_GROUPS:
        n = counts[sg]
        if n == 0:
            continue
        if not protos[sg]:
            raise RuntimeError(f"no prototype structure for class {sg}")
        n_cif = int(rng.binomial(n, s.cif_fraction)) if cifs[sg] else 0
        picks = [protos[sg][i] for i in rng.integers(0, len(protos[sg]), n - n_cif)]
        picks += [cifs[sg][i] for i in rng.integers(0, len(cifs[sg]), n_cif)]
        assigned.extend(picks)
    n_total = len(assigned)
    order = rng.permutation(n_total)
    assigned = [assigned[i] for i in order]
    if n_total == 0:
        return np.zeros((0, GRID_SIZE), np.float32), np.zeros(0, np.int64), []

    # 2. per-pattern instrument and sample parameters
    size_nm = _log_uniform(rng, *s.size_nm, n_total)
    u = rng.uniform(*s.caglioti_u, n_total)
    v = rng.uniform(*s.caglioti_v, n_total)
    w = rng.uniform(*s.caglioti_w, n_total)
    eta = rng.uniform(*s.eta, n_total)
    kalpha2 = rng.random(n_total) < s.kalpha2_probability
    zero_shift = rng.uniform(-s.zero_shift_deg, s.zero_shift_deg, n_total)
    displacement = rng.uniform(-s.displacement_deg, s.displacement_deg, n_total)
    peak_counts = _log_uniform(rng, *s.peak_counts, n_total)
    background_ratio = _log_uniform(rng, *s.background_ratio, n_total)
    absorption = _log_uniform(rng, *s.film_absorption, n_total)

    # 3. peaks of the main phase, grouped by structure for vectorisation
    flat_sample, flat_center, flat_height = [], [], []
    meta: list[dict[str, Any]] = [{} for _ in range(n_total)]
    by_source: dict[int, list[int]] = {}
    for i, src in enumerate(assigned):
        by_source.setdefault(id(src), []).append(i)
    for idx in by_source.values():
        src = assigned[idx[0]]
        idx_arr = np.asarray(idx)
        two_theta, intensity, info = _phase_peaks(src, len(idx), rng, s)
        intensity = intensity * _film_factor(two_theta, absorption[idx_arr][:, None])
        for k, i in enumerate(idx):
            meta[i].update(info[k])
        flat_sample.append(np.repeat(idx_arr, two_theta.shape[1]))
        flat_center.append(two_theta.ravel())
        flat_height.append(intensity.ravel())

    # 4. impurity phases, chemically plausible for the film: substrates for all, PbI2 for Pb films
    impurity_name: list[str | None] = [None] * n_total
    impurity_fraction = np.zeros(n_total)
    by_name = {src.name: src for src in impurities}
    has_impurity = np.flatnonzero(rng.random(n_total) < s.impurity_probability)
    choice = np.empty(has_impurity.size, dtype=object)
    for k, i in enumerate(has_impurity):
        options = ["SnO2", "In2O3"] + (["PbI2", "PbI2"] if "Pb" in assigned[i].elements else [])
        choice[k] = options[int(rng.integers(0, len(options)))]
    fraction = _log_uniform(rng, *s.impurity_fraction, has_impurity.size)
    fraction = np.where(choice == "PbI2", fraction, np.minimum(fraction, s.substrate_fraction_max))
    for name, src in by_name.items():
        pick = choice == name
        sel = has_impurity[pick]
        if sel.size == 0:
            continue
        two_theta, intensity, _ = _phase_peaks(src, sel.size, rng, s)
        # PbI2 lies in the film; the substrate lies under it and is seen through it
        factor = _film_factor if name == "PbI2" else _substrate_factor
        intensity = intensity * factor(two_theta, absorption[sel][:, None])
        flat_sample.append(np.repeat(sel, two_theta.shape[1]))
        flat_center.append(two_theta.ravel())
        # negative = impurity marker: scaled to the main phase's strongest peak below
        relative = intensity / np.nanmax(intensity, axis=1, keepdims=True)
        flat_height.append(-(relative * fraction[pick][:, None]).ravel())
        for i in sel:
            impurity_name[i] = name
        impurity_fraction[sel] = fraction[pick]

    sample = np.concatenate(flat_sample)
    center = np.concatenate(flat_center)
    height = np.concatenate(flat_height)
    ok = np.isfinite(center) & (center > GRID_START - 2.5) & (center < GRID[-1] + 2.5)
    sample, center, height = sample[ok], center[ok], height[ok]

    # heights of each pattern relative to its strongest main-phase peak; impurities scaled to it
    main = height > 0
    main_max = np.zeros(n_total)
    np.maximum.at(main_max, sample[main], height[main])
    main_max = np.where(main_max > 0, main_max, 1.0)
    height = np.where(main, height / main_max[sample], -height)
    visible = height > _VISIBLE
    sample, center, height = sample[visible], center[visible], height[visible]

    # 5. stray single peaks
    stray_n = np.where(rng.random(n_total) < s.stray_peak_probability, rng.integers(1, 4, n_total), 0)
    stray_sample = np.repeat(np.arange(n_total), stray_n)
    stray_center = rng.uniform(GRID_START, GRID[-1], stray_sample.size)
    stray_height = rng.uniform(0.01, 0.10, stray_sample.size)
    sample = np.concatenate([sample, stray_sample])
    center = np.concatenate([center, stray_center])
    height = np.concatenate([height, stray_height])

    # 6. shifts, K-alpha2, widths (Caglioti + Scherrer at the width nodes, added in quadrature)
    theta = np.radians(center) / 2.0
    center = center + zero_shift[sample] + displacement[sample] * np.cos(theta)
    if kalpha2.any():
        k2 = kalpha2[sample]
        s2 = np.clip(np.sin(np.radians(center[k2]) / 2.0) * (_LAMBDA_KA2 / _LAMBDA_KA1), -1.0, 1.0)
        sample = np.concatenate([sample, sample[k2]])
        center = np.concatenate([center, np.degrees(2.0 * np.arcsin(s2))])
        height = np.concatenate([height, 0.5 * height[k2]])
    nodes = _WIDTH_NODES[None, :]
    fwhm_inst = caglioti_fwhm(nodes, u[:, None], v[:, None], w[:, None])
    fwhm_size = scherrer_fwhm(nodes, size_nm[:, None], wavelength_angstrom=_LAMBDA_KA1)
    node_fwhm = np.maximum(np.sqrt(fwhm_inst**2 + fwhm_size**2), 0.03)
    signal = _render(center, height, sample, n_total, node_fwhm, eta)
    top = signal.max(axis=1, keepdims=True)
    signal = signal / np.where(top > 0, top, 1.0) * peak_counts[:, None]

    # 7. background: level b0 (1 + A exp(-(2theta - 5) / tau) + slope x + hump)
    b0 = background_ratio * peak_counts
    decay_amp = _log_uniform(rng, 0.05, 5.0, n_total)
    decay_tau = rng.uniform(2.0, 12.0, n_total)
    slope = rng.uniform(-0.3, 0.3, n_total)
    has_hump = rng.random(n_total) < s.hump_probability
    hump_amp = np.where(has_hump, rng.uniform(0.1, 1.0, n_total), 0.0)
    hump_center = rng.uniform(20.0, 30.0, n_total)
    hump_width = rng.uniform(5.0, 12.0, n_total)
    x = (GRID - GRID_START)[None, :]
    t = x / (GRID[-1] - GRID_START)
    background = b0[:, None] * (
        1.0
        + decay_amp[:, None] * np.exp(-x / decay_tau[:, None])
        + slope[:, None] * t
        + hump_amp[:, None] * np.exp(-0.5 * ((GRID[None, :] - hump_center[:, None]) / (hump_width[:, None] / 2.355)) ** 2)
    )
    expected = np.clip(signal + background, 0.0, None)
    counts_out = _counting_noise(expected, rng)

    # 8. labels and provenance (rounded in bulk: per-value round() would cost more than rendering)
    stray_by_sample = np.bincount(stray_sample, minlength=n_total).tolist()
    classes = SPACE_GROUPS if task == "space_group" else DIMENSIONALITIES
    y = np.empty(n_total, dtype=np.int64)
    cols = {
        "size_nm": np.round(size_nm, 2).tolist(),
        "uvw": np.round(np.stack([u, v, w], axis=1), 5).tolist(),
        "eta": np.round(eta, 3).tolist(),
        "kalpha2": kalpha2.tolist(),
        "zero": np.round(zero_shift, 4).tolist(),
        "disp": np.round(displacement, 4).tolist(),
        "counts": np.round(peak_counts, 1).tolist(),
        "b0": np.round(b0, 2).tolist(),
        "decay_amp": np.round(decay_amp, 3).tolist(),
        "decay_tau": np.round(decay_tau, 2).tolist(),
        "slope": np.round(slope, 3).tolist(),
        "hump": np.round(hump_amp, 3).tolist(),
        "impurity_fraction": np.round(impurity_fraction, 3).tolist(),
        "absorption": np.round(absorption, 4).tolist(),
    }
    for i, src in enumerate(assigned):
        dim = SPACE_GROUP_TO_DIMENSIONALITY[src.space_group]
        y[i] = classes.index(src.space_group if task == "space_group" else dim)
        meta[i].update(
            {
                "structure": src.name,
                "space_group": src.space_group,
                "dimensionality": dim,
                "citation_key": src.citation_key,
                "origin": src.origin,
                "size_nm": cols["size_nm"][i],
                "caglioti_uvw": cols["uvw"][i],
                "eta": cols["eta"][i],
                "kalpha2": cols["kalpha2"][i],
                "zero_shift_deg": cols["zero"][i],
                "displacement_deg": cols["disp"][i],
                "peak_counts": cols["counts"][i],
                "film_absorption_2mut": cols["absorption"][i],
                "background": {
                    "level": cols["b0"][i],
                    "decay_amplitude": cols["decay_amp"][i],
                    "decay_deg": cols["decay_tau"][i],
                    "slope": cols["slope"][i],
                    "hump_amplitude": cols["hump"][i],
                },
                "impurity": None if impurity_name[i] is None else {"phase": impurity_name[i], "fraction": cols["impurity_fraction"][i]},
                "stray_peaks": stray_by_sample[i],
                "seed": int(seed),
            }
        )
    return counts_out, y, meta
