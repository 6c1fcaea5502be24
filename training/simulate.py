"""Fixed-size simulated training sets (``simulate_training_set``) and single noise-free patterns
(``render_pattern``), on the physics of the on-the-fly generator.

The 164 simulated ICSD patterns of Oviedo et al. (2019) are not public, so training patterns are
simulated from structures: the cited metal-halide prototypes of :mod:`crystals.prototypes`, the
spglib-filtered CIF library of :mod:`crystals.cif_library` (``settings.cif_fraction`` of each
class) and, when ``structures_per_class > 0``, generated structures (substituted prototypes and
pyxtal random crystals, :mod:`training.structure_generator`). Every film effect (lattice
variation, March-Dollase texture, size / strain / instrument broadening, K-alpha2, shifts,
film absorption, impurity phases, background, counting noise) is that of
:mod:`training.film_renderer`: one implementation of the physics serves this module and
:class:`training.generator.FilmGenerator`, which draws new films for every training step.

Intensities are raw counts (not normalised): preprocessing belongs to :mod:`models.preprocess`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from crystals.prototypes import IMPURITY_PHASES, PROTOTYPES, get_structure
from models.grid import GRID_SIZE
from patterns import DIMENSIONALITIES, SPACE_GROUP_TO_DIMENSIONALITY, SPACE_GROUPS
from training.film_renderer import WIDTH_NODES, FilmBatch, phase_peaks, render_profiles
from training.film_settings import SimulationSettings
from training.generator import FilmGenerator
from training.peak_table import PeakTable
from training.structure_pool import fixed_entries, structure_entry

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
_CHUNK = 1024  # films rendered per batch (bounds memory)


def structure_sources() -> dict[str, list[str]]:
    """Class -> names of the fixed structures the simulator draws from (prototypes, then CIFs)."""
    entries = [e for e in fixed_entries(True) if e.origin in ("prototype", "cif")]
    return {sg: [e.name for e in entries if e.space_group == sg] for sg in SPACE_GROUPS}


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

    Raises
    ------
    ValueError
        For an unknown task or class, or a count that is not a non-negative int.
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

    The renderer of :func:`simulate_training_set` with every effect fixed by the caller (bulk
    absorption, no extra Debye-Waller factor, one width at every angle), for tests and for
    simulated samples of known structure.

    Parameters
    ----------
    structure : str
        A prototype or impurity-phase name (crystals.list_structures()).
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

    Raises
    ------
    ValueError
        For an unknown structure or a parameter out of range.
    """
    if not lattice_scale > 0 or not fwhm_deg > 0 or not 0.0 <= eta <= 1.0 or not march_r > 0:
        raise ValueError("render_pattern: lattice_scale, fwhm_deg and march_r must be > 0, eta in [0, 1]")
    proto = PROTOTYPES.get(structure) or IMPURITY_PHASES.get(structure)
    if proto is None:
        raise ValueError(f"unknown structure {structure!r}")
    habits = (tuple(preferred_hkl),) if preferred_hkl is not None else ()
    table = PeakTable([structure_entry(get_structure(structure), structure, proto.space_group, "prototype", habits)],
                      torch.device("cpu")).tensors()
    gen = torch.Generator().manual_seed(0)
    p = FilmBatch(1, gen, SimulationSettings())
    p.scale, p.aniso, p.oblique = torch.tensor([float(lattice_scale)], dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    p.march_r = torch.tensor([float(march_r) if preferred_hkl is not None else 1.0], dtype=torch.float64)
    p.direction_u = torch.zeros(1, dtype=torch.float64)  # the first candidate direction: the preferred one
    p.b_extra, p.absorption = torch.zeros(1, dtype=torch.float64), torch.tensor([50.0], dtype=torch.float64)  # bulk: no angle factor
    one = torch.zeros(1, dtype=torch.int64)
    phase, center, height = phase_peaks(table, one, one, p, torch.zeros(1, dtype=torch.bool), gen)
    widths = torch.full((1, len(WIDTH_NODES)), float(fwhm_deg), dtype=torch.float64)
    pattern = render_profiles(center + zero_shift_deg, height, phase, 1, widths, torch.tensor([float(eta)]))[0].double().numpy()
    top = pattern.max()
    return pattern / top if top > 0 else pattern


def simulate_training_set(
    n_per_class: int | dict[str, int] | None,
    seed: int,
    task: str = "space_group",
    settings: SimulationSettings | None = None,
    include_cifs: bool = True,
    structures_per_class: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Simulate raw thin-film XRD patterns on :data:`models.grid.GRID`.

    Parameters
    ----------
    n_per_class : int, dict or None
        Patterns per class (see :func:`class_counts`); None follows label_theo.csv x 10.
    seed : int
        Seed of every random draw: equal seeds give identical output.
    task : {"space_group", "dimensionality"}
        Which labels ``y`` holds: indices into patterns.SPACE_GROUPS or patterns.DIMENSIONALITIES.
    settings : SimulationSettings, optional
        Ranges of the random effects; defaults to :class:`SimulationSettings`.
    include_cifs : bool
        Draw ``settings.cif_fraction`` of each class from the CIF library.
    structures_per_class : int
        Generated structures (substituted prototypes, pyxtal random crystals) added to each
        class beside the cited prototypes; 0 (default) keeps the fixed, cited structure set.

    Returns
    -------
    X : numpy.ndarray float32 [N, 1376]
        Raw intensity (counts, with background and Poisson noise) on GRID (5-60 deg, 0.04 deg).
    y : numpy.ndarray int64 [N]
        Class indices of the task.
    meta : list of dict
        Per pattern: structure, origin ("prototype"/"cif"/"substituted"/"pyxtal"), citation_key,
        space_group, dimensionality, march_r, size_nm, peak_counts, impurity, seed.

    Raises
    ------
    ValueError
        For an unknown task, unknown classes, negative counts or a seed that is not an int.
    """
    counts = class_counts(n_per_class, task)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    groups = [sg for sg in SPACE_GROUPS for _ in range(counts[sg])]
    groups = [groups[i] for i in rng.permutation(len(groups))]
    if not groups:
        return np.zeros((0, GRID_SIZE), np.float32), np.zeros(0, np.int64), []
    generator = FilmGenerator(task, int(seed), "cpu", settings=settings, structures_per_class=structures_per_class,
                              refresh_every=0, include_cifs=include_cifs)
    gen = torch.Generator().manual_seed(int(seed))
    values, meta = [], []
    for start in range(0, len(groups), _CHUNK):
        chunk, info = generator.render(groups[start : start + _CHUNK], rng, gen, return_meta=True)
        values.append(chunk.numpy())
        meta.extend({**m, "seed": int(seed)} for m in info)
    classes = SPACE_GROUPS if task == "space_group" else DIMENSIONALITIES
    y = np.array([classes.index(sg if task == "space_group" else SPACE_GROUP_TO_DIMENSIONALITY[sg]) for sg in groups], dtype=np.int64)
    return np.concatenate(values).astype(np.float32), y, meta
