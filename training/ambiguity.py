"""How many simulated films carry no symmetry information: their visible peaks are the orders of
one reflection row.

A strongly textured film often shows a single family of orders, e.g. (100), (200), (300) of a
cubic perovskite grown with (100) planes parallel to the substrate. Such a pattern fixes one
d-spacing and nothing else: a double perovskite with (100) texture (whose odd h00 are absent,
so (200), (400), (600) of a doubled cell fall at the same angles), or a layered compound with
(001) texture and a matching layer spacing, gives the same peaks. Telling these films apart is
recalling which materials have which spacing, not recognising symmetry, so their share bounds
what a symmetry classifier can reach on the simulated data (issue 9 asks for it to be measured).

Criterion: the main phase's peaks within the model grid (5-60 deg) whose height is at least
``threshold`` of the strongest (before profiles, K-alpha2, impurities and noise) all sit at
integer multiples of the smallest visible scattering vector q = 2 sin(theta) / lambda, within
``tolerance`` (relative). A film with one visible peak counts too.
"""

from __future__ import annotations

import numpy as np
import torch

from models.grid import GRID_START, GRID_STOP
from patterns import SPACE_GROUPS
from training.film_renderer import LAMBDA_KA1, FilmBatch, phase_peaks
from training.generator import FilmGenerator

__all__ = ["is_one_row", "one_row_fraction"]


def is_one_row(two_theta: np.ndarray, height: np.ndarray, threshold: float = 0.01, tolerance: float = 0.005) -> bool:
    """Whether the peaks of one film above ``threshold`` (of the strongest) are orders of one row.

    Parameters
    ----------
    two_theta, height : numpy.ndarray [K]
        Peak positions (degrees, Cu K-alpha1) and heights of the film's main phase.
    threshold : float
        Relative height below which a peak is not counted as visible.
    tolerance : float
        Relative tolerance on q_i / q_min being an integer.
    """
    inside = (two_theta >= GRID_START) & (two_theta <= GRID_STOP) & np.isfinite(two_theta)
    if not inside.any() or height[inside].max() <= 0:
        return True
    visible = inside & (height >= threshold * height[inside].max())
    q = np.sin(np.radians(two_theta[visible]) / 2.0)  # proportional to 2 sin(theta) / lambda
    ratio = q / q.min()
    return bool(np.all(np.abs(ratio - np.round(ratio)) <= tolerance * ratio))


def one_row_fraction(generator: FilmGenerator, films_per_class: int, seed: int = 0,
                     threshold: float = 0.01, tolerance: float = 0.005) -> dict[str, float]:
    """Share of new films of each class (and "all") whose visible peaks are one row's orders.

    Films are drawn as :meth:`FilmGenerator.render` draws them (same structures, texture and
    lattice variation), from ``seed``; the generator's stream is not advanced.

    Returns
    -------
    dict
        Space group -> fraction in [0, 1], plus "all" (classes weighted equally).
    """
    if films_per_class < 1:
        raise ValueError(f"films_per_class must be >= 1, got {films_per_class}")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    groups = [sg for sg in SPACE_GROUPS for _ in range(films_per_class)]
    slots = torch.as_tensor(generator.draw_slots(groups, rng))
    n = len(groups)
    params = FilmBatch(n, gen, generator.settings)
    table = generator.pool.table.tensors()
    phase, two_theta, height = phase_peaks(table, slots.to(table["hkl"].device), torch.arange(n), params,
                                           torch.zeros(n, dtype=torch.bool, device=table["hkl"].device), gen)
    phase, two_theta, height = phase.cpu().numpy(), two_theta.double().cpu().numpy(), height.double().cpu().numpy()
    bounds = np.searchsorted(phase, np.arange(n + 1))
    flags = np.array([is_one_row(two_theta[bounds[i]:bounds[i + 1]], height[bounds[i]:bounds[i + 1]], threshold, tolerance)
                      for i in range(n)])
    out = {sg: float(flags[i * films_per_class:(i + 1) * films_per_class].mean()) for i, sg in enumerate(SPACE_GROUPS)}
    out["all"] = float(flags.mean())
    return out
