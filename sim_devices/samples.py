r"""The sample library of the simulated diffractometer.

A `Sample` is a tabulated diffracted rate density :math:`s(x)` (counts s\ :sup:`-1`
deg\ :sup:`-1` at 2theta = x), which `sim_devices.physics.expected_counts` integrates over
the detector window. Two sources:

(a) **Measured AUTO-XRD patterns replayed** (names ``"auto-xrd/<file stem>"``, label = the
    space group of the folder). The file's counts :math:`c_j` at angles :math:`x_j` are taken
    as 1 s counts with an acceptance equal to the file's local step :math:`\delta_j`, so
    :math:`s(x_j) = c_j / (\delta_j \cdot 1\,\mathrm{s})`; replaying at that acceptance and
    1 s dwell reproduces the file's counts on average, with fresh Poisson noise drawn by the
    detector. Outside the file's 2theta range the density is held at the edge value (the
    background continues; ``params["measured_range_deg"]`` says what is real).

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

Samples are built on first use and cached (`get_sample`), so a 1376-point scan costs one
table look-up per point.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from patterns import FOLDER_TO_SPACE_GROUP, SPACE_GROUP_TO_DIMENSIONALITY, Pattern, auto_xrd_dir, read_xy
from patterns.datasets import MEASURED_SAMPLE_PREFIX
from sim_devices.physics import cumulative_integral

if TYPE_CHECKING:  # pymatgen is imported lazily: `import sim_devices` stays light
    from pymatgen.core import Structure

#: Prefix of the names of replayed measured samples.
MEASURED_PREFIX = MEASURED_SAMPLE_PREFIX  # one home: patterns.datasets
#: Prefix of samples simulated from the repository's CIF library (``data/cifs``).
CIF_PREFIX = "cif:"
#: Grid of simulated samples, degrees 2theta (0.002 deg step, 0-95 deg).
SIMULATION_GRID_DEG: np.ndarray = np.round(np.arange(0.0, 95.0 + 1e-9, 0.002), 6)
SIMULATION_GRID_DEG.setflags(write=False)
#: Peaks are taken from this 2theta range so tails of peaks just outside 0-95 deg are included.
PEAK_RANGE_DEG: tuple[float, float] = (1.0, 110.0)
#: Counting time the measured files are assumed to have per point, seconds.
MEASURED_REFERENCE_DWELL_S: float = 1.0
#: Half-width, in FWHM, of the window each simulated peak is rendered in.
RENDER_REACH_FWHM: float = 60.0


@dataclass(frozen=True)
class Sample:
    """A sample as the detector sees it: a tabulated rate density.

    Parameters
    ----------
    name : str
        Library name (``"CsPbBr3"``, ``"auto-xrd/MASnI3_2-Theta_Omega"``, ...).
    label : str or None
        Space group of the (main) phase, one of `patterns.SPACE_GROUPS` where known.
    kind : str
        ``"measured"`` (replayed file) or ``"simulated"`` (structure + thin-film model).
    grid_deg : numpy.ndarray
        Strictly increasing 2theta grid, degrees.
    rate_density : numpy.ndarray
        Rate density at `grid_deg`, counts/s/deg, finite, >= 0.
    params : dict
        JSON-serialisable provenance: source file or structure, thin-film parameters.

    Attributes
    ----------
    cumulative_rate : numpy.ndarray
        Running integral of `rate_density` over `grid_deg`, counts/s (computed).
    """

    name: str
    label: str | None
    kind: str
    grid_deg: np.ndarray
    rate_density: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    cumulative_rate: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Pattern's validation covers grid order, finiteness and non-negativity
        checked = Pattern(self.grid_deg, self.rate_density, {"source": f"sample {self.name!r}"})
        object.__setattr__(self, "grid_deg", checked.two_theta)
        object.__setattr__(self, "rate_density", checked.intensity)
        cumulative = cumulative_integral(checked.two_theta, checked.intensity)
        cumulative.setflags(write=False)
        object.__setattr__(self, "cumulative_rate", cumulative)
        json.dumps(self.params)  # fail early if provenance cannot be recorded

    @property
    def dimensionality(self) -> str | None:
        """0D/2D/3D for a known space group, else None."""
        return SPACE_GROUP_TO_DIMENSIONALITY.get(self.label or "")

    def rate(self, two_theta: ArrayLike) -> np.ndarray:
        """Rate density at `two_theta` (degrees), counts/s/deg (edge value outside the grid)."""
        return np.interp(np.asarray(two_theta, dtype=float), self.grid_deg, self.rate_density)

    def describe(self) -> str:
        """One JSON string of name, label, kind and params (recorded in run descriptors)."""
        return json.dumps(
            {"name": self.name, "label": self.label, "kind": self.kind, **self.params}, sort_keys=True
        )


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


#: Named thin-film variants in the library: name -> (structure, film parameters).
VARIANTS: dict[str, tuple[str, ThinFilm]] = {
    # CsPbBr3 films grow with {100} planes on the substrate
    "CsPbBr3-textured": ("CsPbBr3", ThinFilm(preferred_hkl=(1, 0, 0), march_r=0.5)),
    # MAPbI3 films: the (110) tetragonal reflection dominates
    "MAPbI3-textured": ("MAPbI3", ThinFilm(preferred_hkl=(1, 1, 0), march_r=0.6)),
    # narrow peaks (large grains, sharp instrument): the case where a coarse step misses peaks
    "CsPbBr3-sharp": ("CsPbBr3", ThinFilm(crystallite_size_nm=1000.0, caglioti_uvw=(0.001, -0.0005, 0.001))),
    "CsPbBr3-strained": ("CsPbBr3", ThinFilm(strain=0.005)),
    # PbI2 (12.7 deg) appears when MAPbI3 films degrade or are made Pb-rich
    "MAPbI3+PbI2": ("MAPbI3", ThinFilm(impurity="PbI2", impurity_fraction=0.2)),
    # Cs3Bi2Br9 is the usual secondary phase of Cs2AgBiBr6 films
    "Cs2AgBiBr6+Cs3Bi2Br9": ("Cs2AgBiBr6", ThinFilm(impurity="Cs3Bi2Br9", impurity_fraction=0.15)),
}


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


def simulate_thin_film(
    structure: str | Structure,
    film: ThinFilm | None = None,
    *,
    name: str | None = None,
    label: str | None = None,
    grid_deg: np.ndarray | None = None,
) -> Sample:
    """Simulate a thin-film sample from a structure (module docstring, source (b)).

    Parameters
    ----------
    structure : str or pymatgen.core.Structure
        A `crystals.list_structures` name, or a structure (then give `name`).
    film : ThinFilm, optional
        Thin-film parameters; default `ThinFilm()` (untextured, unstrained, 200 nm grains).
    name : str, optional
        Sample name; default the structure name.
    label : str, optional
        Space group; default from `crystals.list_structures` (None for a bare structure).
    grid_deg : numpy.ndarray, optional
        Tabulation grid, degrees; default `SIMULATION_GRID_DEG`.

    Returns
    -------
    Sample
        ``kind="simulated"``; ``params`` records the structure and every film parameter.

    Raises
    ------
    ValueError
        Unknown structure name, or a structure given without a name.
    """
    from crystals.prototypes import get_structure, list_structures

    film = film or ThinFilm()
    if isinstance(structure, str):
        structure_name = structure
        label = label or list_structures().get(structure_name)
        structure = get_structure(structure_name)
    elif name is None:
        raise ValueError("simulate_thin_film: give a name for a structure passed as an object")
    else:
        structure_name = structure.composition.reduced_formula
    grid = SIMULATION_GRID_DEG if grid_deg is None else np.asarray(grid_deg, dtype=float)
    density = background(grid, film) + render_film(grid, structure, film)
    if film.impurity is not None and film.impurity_fraction > 0:
        impurity_film = ThinFilm(**{**asdict(film), "impurity": None, "impurity_fraction": 0.0,
                                    "peak_area": film.peak_area * film.impurity_fraction})
        impurity_structure = get_structure(film.impurity)
        density = density + render_film(grid, impurity_structure, impurity_film, textured=False)
    params = {"source": "simulated", "structure": structure_name, "film": _json_ready(asdict(film))}
    return Sample(name or structure_name, label, "simulated", grid, density, params)


def replay_measured(pattern: Pattern, name: str | None = None) -> Sample:
    """Turn a measured pattern into a sample (module docstring, source (a)).

    Parameters
    ----------
    pattern : Pattern
        Measured counts per point; its ``label`` becomes the sample label.
    name : str, optional
        Default ``"auto-xrd/<pattern name>"``.

    Returns
    -------
    Sample
        ``kind="measured"``; rate density = counts / (local step x 1 s).
    """
    step = np.gradient(pattern.two_theta)
    density = pattern.intensity / (step * MEASURED_REFERENCE_DWELL_S)
    params = {
        "source": str(pattern.metadata.get("source", "")),
        "measured_range_deg": [float(pattern.two_theta[0]), float(pattern.two_theta[-1])],
        "reference_dwell_s": MEASURED_REFERENCE_DWELL_S,
    }
    return Sample(name or f"{MEASURED_PREFIX}{pattern.name}", pattern.label, "measured",
                  pattern.two_theta, density, params)


# ------------------------------------------------------------------------------- the library


@functools.cache
def _measured_index() -> dict[str, tuple[Path, str]]:
    """Sample name -> (file, space group) for the repository copy of the AUTO-XRD files."""
    root = auto_xrd_dir() / "Experimental"
    index: dict[str, tuple[Path, str]] = {}
    for folder, space_group in FOLDER_TO_SPACE_GROUP.items():
        for file in sorted((root / folder).glob("*.xy")):
            index[f"{MEASURED_PREFIX}{file.stem}"] = (file, space_group)
    return index


@functools.cache
def _structure_labels() -> dict[str, str]:
    from crystals.prototypes import list_structures

    return dict(list_structures())


def sample_library(include_cifs: bool = False) -> dict[str, str | None]:
    """Every sample name -> its label (space group), without building any sample.

    Parameters
    ----------
    include_cifs : bool
        Also list the CIF library (``"cif:<path>"``, `crystals.cif_library`); this parses and
        classifies every CIF (a few seconds), so it is off by default. `get_sample` accepts
        ``"cif:"`` names either way.

    Returns
    -------
    dict
        Simulated structures first (`crystals.list_structures` order), then `VARIANTS`, then
        the 88 measured replays (``"auto-xrd/<file stem>"``), then the CIFs if asked for.
    """
    labels: dict[str, str | None] = dict(_structure_labels())
    for variant, (structure, _) in VARIANTS.items():
        labels[variant] = labels.get(structure)
    labels.update({name: space_group for name, (_, space_group) in _measured_index().items()})
    if include_cifs:
        labels.update(_cif_labels())
    return labels


def list_samples(include_cifs: bool = False) -> list[str]:
    """All sample names of the library (see `sample_library`)."""
    return list(sample_library(include_cifs))


@functools.cache
def _cif_labels() -> dict[str, str]:
    from crystals.cif_library import load_cif_library

    return {entry.name: entry.space_group for entry in load_cif_library()}


def _cif_sample(name: str) -> Sample | None:
    """A ``"cif:<path relative to data/cifs>"`` sample, or None if there is no such file."""
    from crystals.cif_library import classify_structure, default_cif_root
    from pymatgen.core import Structure

    root = default_cif_root().resolve()
    path = (root / name[len(CIF_PREFIX):]).resolve()
    if root not in path.parents or path.suffix.lower() != ".cif" or not path.is_file():
        return None
    try:
        structure = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for a bad CIF
        raise ValueError(f"{path}: cannot read the CIF ({type(exc).__name__}: {exc})") from exc
    return simulate_thin_film(structure, name=name, label=classify_structure(structure))


@functools.lru_cache(maxsize=256)
def get_sample(name: str) -> Sample:
    """Build (once, then cached) the library sample called `name`.

    Parameters
    ----------
    name : str
        A structure name (e.g. ``"CsPbBr3"``), a `VARIANTS` name, ``"auto-xrd/<file stem>"``,
        or ``"cif:<path under data/cifs>"`` (label from spglib; None outside the 7 classes).

    Returns
    -------
    Sample

    Raises
    ------
    ValueError
        If `name` is not in the library (the message lists a few known names).
    """
    if name.startswith(MEASURED_PREFIX):
        entry = _measured_index().get(name)
        if entry is not None:
            file, space_group = entry
            return replay_measured(read_xy(file).with_metadata(label=space_group), name)
    elif name.startswith(CIF_PREFIX):
        sample = _cif_sample(name)
        if sample is not None:
            return sample
    elif name in VARIANTS:
        structure, film = VARIANTS[name]
        return simulate_thin_film(structure, film, name=name)
    elif name in _structure_labels():
        return simulate_thin_film(name)
    examples = ", ".join([*list(_structure_labels())[:5], *VARIANTS, "auto-xrd/<file stem>", "cif:<path>"])
    raise ValueError(f"unknown sample {name!r}; known include: {examples} (see sim_devices.list_samples())")


def _json_ready(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
