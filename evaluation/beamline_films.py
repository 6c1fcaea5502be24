"""Thin films measured by the simulated beamline, on the model grid: the evaluation sets' renderer.

The evaluation sets (:mod:`evaluation.unseen_materials`, :mod:`evaluation.out_of_distribution`)
must look like what the beamline records, so they are rendered with the beamline's own physics
rather than with the training-data generator: the sample is
:func:`sim_devices.samples.simulate_thin_film` (pymatgen XRDCalculator peaks, March-Dollase
texture along the film normal, Caglioti + Scherrer pseudo-Voigt profiles, Cu K-alpha2, background
with the glass-substrate hump), and every point of :data:`models.grid.GRID` is one step
measurement of :func:`sim_devices.physics.expected_counts` (acceptance = the 0.04 deg grid step,
dwell = the count level) with Poisson counting noise, as the ``PointDetector`` draws it.

The training generator (``training/``) is a different renderer (vectorised, randomised effects),
so an evaluation film is never a pattern the generator can reproduce exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from models.grid import GRID, GRID_STEP
from sim_devices.physics import expected_counts
from sim_devices.samples import Sample, ThinFilm, simulate_thin_film

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["TEXTURE_MARCH_R", "COUNT_LEVELS_S", "FilmCondition", "film_conditions", "film_sample", "measure_film"]

#: Named texture strengths -> March-Dollase r along the film normal (1 = random powder; r < 1
#: enhances the planes parallel to the substrate; Dollase 1986, J. Appl. Crystallogr. 19, 267).
TEXTURE_MARCH_R: dict[str, float] = {"powder": 1.0, "moderate": 0.6, "strong": 0.3}
#: Named count levels -> dwell per point, seconds (the default film gives ~3 background and
#: ~100-300 peak counts per point at 0.05 s, 60 and several thousand at 1 s).
COUNT_LEVELS_S: dict[str, float] = {"low": 0.05, "high": 1.0}


@dataclass(frozen=True)
class FilmCondition:
    """One way of measuring a film.

    Attributes
    ----------
    texture : str
        Key of :data:`TEXTURE_MARCH_R`.
    count_level : str
        Key of :data:`COUNT_LEVELS_S`.
    """

    texture: str
    count_level: str

    @property
    def march_r(self) -> float:
        """March-Dollase r of the texture."""
        return TEXTURE_MARCH_R[self.texture]

    @property
    def dwell_s(self) -> float:
        """Counting time per grid point, seconds."""
        return COUNT_LEVELS_S[self.count_level]


def film_conditions(textures: tuple[str, ...], count_levels: tuple[str, ...]) -> list[FilmCondition]:
    """Every (texture, count level) pair, textures outer; ValueError naming an unknown key."""
    for kind, keys, known in (("texture", textures, TEXTURE_MARCH_R), ("count level", count_levels, COUNT_LEVELS_S)):
        if not keys:
            raise ValueError(f"give at least one {kind}; known: {sorted(known)}")
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise ValueError(f"unknown {kind} {unknown}; known: {sorted(known)}")
    return [FilmCondition(t, c) for t in textures for c in count_levels]


def film_sample(
    structure: Structure,
    name: str,
    march_r: float,
    preferred_hkl: tuple[int, int, int] | None,
    film: ThinFilm | None = None,
) -> Sample:
    """The simulated sample of a film of ``structure`` (rendered once, measured at any count level).

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The phase (Cu K-alpha, angstrom lattice).
    name : str
        Sample name (provenance only).
    march_r : float
        March-Dollase r (1 = random powder).
    preferred_hkl : tuple of int or None
        Planes parallel to the substrate, in the structure's own cell; None = random powder.
    film : ThinFilm, optional
        Instrument and film parameters other than texture; default the beamline's ``ThinFilm()``.

    Returns
    -------
    sim_devices.samples.Sample
    """
    base = film or ThinFilm()
    textured = preferred_hkl is not None and march_r != 1.0
    film = replace(base, preferred_hkl=preferred_hkl if textured else None, march_r=march_r if textured else 1.0)
    return simulate_thin_film(structure, film, name=name)


def measure_film(sample: Sample, dwell_s: float, rng: np.random.Generator) -> np.ndarray:
    """Counts of a uniform 0.04-degree step scan of ``sample`` over the model grid.

    Parameters
    ----------
    sample : sim_devices.samples.Sample
        E.g. from :func:`film_sample`.
    dwell_s : float
        Counting time per point, seconds (> 0).
    rng : numpy.random.Generator
        Source of the Poisson counting noise (the only randomness).

    Returns
    -------
    numpy.ndarray
        float32 [1376] counts on :data:`models.grid.GRID` (every point measured).
    """
    return rng.poisson(expected_counts(GRID, GRID_STEP, dwell_s, sample)).astype(np.float32)
