r"""The sample library of the simulated diffractometer.

A `Sample` is a tabulated diffracted rate density :math:`s(x)` (counts s\ :sup:`-1`
deg\ :sup:`-1` at 2theta = x), which `sim_devices.physics.expected_counts` integrates over
the detector window. Three sources:

(a) **Measured AUTO-XRD patterns replayed** (names ``"auto-xrd/<file stem>"``, label = the
    space group of the folder). The file's counts :math:`c_j` at angles :math:`x_j` are taken
    as 1 s counts with an acceptance equal to the file's local step :math:`\delta_j`, so
    :math:`s(x_j) = c_j / (\delta_j \cdot 1\,\mathrm{s})`; replaying at that acceptance and
    1 s dwell reproduces the file's counts on average, with fresh Poisson noise drawn by the
    detector. Outside the file's 2theta range the density is held at the edge value (the
    background continues; ``params["measured_range_deg"]`` says what is real).

(b) **Structures simulated as thin films** (names = `crystals.list_structures` names such as
    ``"CsPbBr3"``, plus the `VARIANTS`, plus ``"cif:<path under data/cifs>"`` for the CIF
    library), label = the structure's space group (spglib's, for a CIF): the thin-film physics
    of `sim_devices.thin_film` (peaks, texture, broadening, background, impurity phase).

(c) **A file the user brings** (a path instead of a library name, `sample_from_file`): a measured
    pattern file (``.xy``, ``.xrdml`` and every format `patterns.read_pattern` reads) is replayed
    as in (a); a ``.cif`` is simulated as an untextured thin film as in (b). So a scan can be
    rehearsed on last beamtime's data before the next one.

Samples are built on first use and cached (`get_sample`), so a 1376-point scan costs one
table look-up per point.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from patterns import FOLDER_TO_SPACE_GROUP, SPACE_GROUP_TO_DIMENSIONALITY, Pattern, auto_xrd_dir, read_xy
from patterns.datasets import MEASURED_SAMPLE_PREFIX
from sim_devices.physics import cumulative_integral
from sim_devices.thin_film import SIMULATION_GRID_DEG, ThinFilm, background, render_film

if TYPE_CHECKING:  # pymatgen is imported lazily: `import sim_devices` stays light
    from pymatgen.core import Structure

#: Prefix of the names of replayed measured samples.
MEASURED_PREFIX = MEASURED_SAMPLE_PREFIX  # one home: patterns.datasets
#: Prefix of samples simulated from the repository's CIF library (``data/cifs``).
CIF_PREFIX = "cif:"
#: Counting time the measured files are assumed to have per point, seconds.
MEASURED_REFERENCE_DWELL_S: float = 1.0


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
        ``"cif:<path under data/cifs>"`` (label from spglib; None outside the 7 classes), or the
        path of a pattern file or CIF (`sample_from_file`).

    Returns
    -------
    Sample

    Raises
    ------
    ValueError
        If `name` is not in the library (the message lists a few known names), or a file that
        cannot be read (the reader's message).
    FileNotFoundError
        A path (a name with a directory or a file suffix) that does not exist.
    """
    if _looks_like_a_file(name):
        return sample_from_file(name)
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


def _looks_like_a_file(name: str) -> bool:
    """A path rather than a library name: it exists, or has a directory part or a pattern/CIF suffix."""
    from patterns.readers import SUFFIXES

    path = Path(name)
    if name.startswith((MEASURED_PREFIX, CIF_PREFIX)) or name in VARIANTS:
        return False
    return path.is_file() or path.suffix.lower() in (*SUFFIXES, ".cif") or len(path.parts) > 1


def sample_from_file(path: str | Path) -> Sample:
    """The sample of a file the user brings (module docstring, source (c)).

    Parameters
    ----------
    path : str or Path
        A pattern file `patterns.read_pattern` reads (2theta converted to Cu K-alpha1 as it
        says; intensities taken as counts per second) or a ``.cif``.

    Returns
    -------
    Sample
        Named by the path; ``label`` is spglib's class for a CIF inside the seven classes, else
        None (a measured file carries no label); ``params["source"]`` is the path.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    IsADirectoryError
        If `path` is a directory.
    ValueError
        A file the readers refuse, a file whose header names another radiation than the one its
        angles would be replayed as (`patterns.radiation.header_radiation_mismatch`; the message
        says how to convert it), or a CIF pymatgen cannot read (the message names the file).
    """
    from patterns import read_pattern
    from patterns.radiation import header_radiation_mismatch

    file = Path(path).expanduser()
    if file.is_dir():
        raise IsADirectoryError(f"sample file {file} is a directory; give one pattern or CIF file in it")
    if not file.is_file():
        raise FileNotFoundError(f"sample file {file} does not exist")
    if file.suffix.lower() != ".cif":
        pattern = read_pattern(file)
        anode = header_radiation_mismatch(pattern.metadata)
        if anode is not None:  # replayed as read, every peak would sit at the wrong angle, silently
            raise ValueError(
                f"sample file {file}: its header names {anode} K-alpha, but nothing the reader trusts states the "
                f"wavelength, so its angles would be replayed as {pattern.metadata['wavelength_A']:.7g} A "
                f"(Cu K-alpha1) and every peak would sit at the wrong angle. Convert it once (into the current "
                f"folder) and replay the copy: python -c \"from patterns import read_pattern, write_xy; "
                f"write_xy(read_pattern('{file}', anode='{anode}'), '{file.stem}-cu.xy')\"")
        return replay_measured(pattern.with_metadata(source=str(file)), str(file))
    from crystals.cif_library import classify_structure
    from pymatgen.core import Structure

    try:
        structure = Structure.from_file(file)
    except Exception as exc:  # pymatgen raises many types for a bad CIF
        raise ValueError(f"{file}: cannot read the CIF ({type(exc).__name__}: {exc})") from exc
    return simulate_thin_film(structure, name=str(file), label=classify_structure(structure))


def _json_ready(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
