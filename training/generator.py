"""On-the-fly simulated thin-film training patterns: a fresh batch per optimiser step.

The training loop asks for a new batch at every step, so no simulated pattern is seen twice
in a run (every draw comes from its own child seed of ``seed``) and the network cannot memorise
individual patterns, only what the classes share (the idea of Schopmans et al. 2023, training on
synthetic crystals simulated on the fly)::

    from training.generator import FilmGenerator

    generator = FilmGenerator(task="space_group", seed=0, device=None)   # CUDA when present
    values, labels = generator.sample(128)
    # values: torch.float32 [128, 1376], raw counts (background + Poisson noise) on
    #         models.grid.GRID (5-60 deg 2theta, 0.04 deg), on generator.device
    # labels: torch.int64 [128], indices into models.classifier.task_classes(task)

Equal ``seed`` gives equal batches in the same order; draw ``k`` depends only on ``(seed, k)``.
Labels are drawn uniformly over the task's classes (for "dimensionality", each dimensionality's
share is split evenly over its space groups). Each film's main phase is drawn from the class's
part of a :class:`training.structure_pool.StructurePool` (cited prototypes, substituted prototypes
and pyxtal random crystals, whose generated slots are replaced as films are drawn; CIF-library
structures for ``settings.cif_fraction`` of the films), and rendered with every thin-film effect
of :mod:`training.film_renderer` in one batched torch pass.

Cost: building the default pool takes 15-40 s (reflections of ~200 structures, once per process
for the cited and CIF structures; ``structures_per_class=1, include_cifs=False`` builds in a few
seconds, for tests); a batch then costs about 0.33 ms of CPU time per film (3,000 films per
CPU-second on one thread), and one generator per worker process uses more cores (see
``xrd-agent bench simulator``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from patterns import DIMENSIONALITIES, SPACE_GROUP_TO_DIMENSIONALITY, SPACE_GROUPS
from training.film_renderer import FilmBatch, render_films
from training.film_settings import SimulationSettings
from training.structure_pool import StructurePool

__all__ = ["FilmGenerator"]


def _select_device(device: str | torch.device | None) -> torch.device:
    """The given device, else CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class FilmGenerator:
    """Endless stream of new simulated thin-film patterns with their class labels.

    Parameters
    ----------
    task : {"space_group", "dimensionality"}
        Which labels are returned.
    seed : int
        Seed of the stream: draw ``k`` is a function of ``(seed, k)`` and of the batch sizes of
        the draws before it (which decide when pool structures are replaced).
    device : str or torch.device, optional
        Where the rendering runs and the returned tensors live (default CUDA when available).
    settings : SimulationSettings, optional
        Ranges of the random effects.
    structures_per_class : int
        Generated structures held in the pool per class.
    refresh_every : int
        One generated pool structure is replaced after every this many films (0: never).
    include_cifs : bool
        Whether CIF-library structures are drawn (``settings.cif_fraction`` of the films).
    num_threads : int or None
        torch threads while rendering on the CPU (restored after each call); None leaves the
        process setting alone. Default 1: the renderer is many short tensor operations, and on
        the shared 2-core machine one thread drew 1,300-1,500 films/s where two drew 130-460
        (load average 7); use one generator per worker process to use more cores.

    Raises
    ------
    ValueError
        For an unknown task, a seed that is not a non-negative int or a negative count.
    """

    def __init__(
        self, task: str = "space_group", seed: int = 0, device: str | torch.device | None = None, *,
        settings: SimulationSettings | None = None, structures_per_class: int = 16, refresh_every: int = 2048,
        include_cifs: bool = True, num_threads: int | None = 1,
    ) -> None:
        if task not in ("space_group", "dimensionality"):
            raise ValueError(f"task must be 'space_group' or 'dimensionality', got {task!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if structures_per_class < 0 or refresh_every < 0:
            raise ValueError("structures_per_class and refresh_every must be >= 0")
        self.task = task
        self.seed = int(seed)
        self.device = _select_device(device)
        self.settings = settings or SimulationSettings()
        self.classes: tuple[str, ...] = SPACE_GROUPS if task == "space_group" else DIMENSIONALITIES
        self.refresh_every = int(refresh_every)
        self.num_threads = num_threads
        self.pool = StructurePool(self.seed, self.device, structures_per_class,
                                  self.settings.random_crystal_fraction, include_cifs)
        self.draws = 0
        """Number of batches drawn so far (the next draw's index)."""
        self.films = 0
        """Number of films drawn so far."""

    def with_seed(self, seed: int) -> "FilmGenerator":
        """A generator of the same task, device and settings with its own stream ``seed``,
        starting from this one's current structure pool (no pool build: use it for one stream
        per ensemble member or worker). Its films and later pool replacements depend on
        ``seed`` and on this generator's pool at the time of the call."""
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        other = copy.copy(self)
        other.seed, other.draws, other.films = int(seed), 0, 0
        other.pool = self.pool.copy_with_seed(int(seed))
        return other

    def _draw_seed(self, draw: int) -> int:
        """Seed of draw ``draw``: a child of ``self.seed`` (distinct draws, independent streams)."""
        return int(np.random.SeedSequence([self.seed, 0, draw]).generate_state(1, dtype=np.uint32)[0])

    def _space_groups(self, labels: np.ndarray, rng: np.random.Generator) -> list[str]:
        """Space group of each film: the label itself, or one of the dimensionality's groups."""
        if self.task == "space_group":
            return [SPACE_GROUPS[i] for i in labels]
        groups = {d: [sg for sg in SPACE_GROUPS if SPACE_GROUP_TO_DIMENSIONALITY[sg] == d] for d in DIMENSIONALITIES}
        return [groups[DIMENSIONALITIES[i]][int(rng.integers(len(groups[DIMENSIONALITIES[i]])))] for i in labels]

    def _impurities(self, slots: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """Impurity phases: substrates (SnO2, In2O3) for any film, PbI2 also for lead films."""
        s, pool = self.settings, self.pool
        chosen = np.flatnonzero(rng.random(slots.size) < s.impurity_probability)
        names = []
        for i in chosen:
            options = ["SnO2", "In2O3"] + (["PbI2", "PbI2"] if pool.entry(int(slots[i])).contains_lead else [])
            names.append(options[int(rng.integers(len(options)))])
        fraction = np.exp(rng.uniform(np.log(s.impurity_fraction[0]), np.log(s.impurity_fraction[1]), chosen.size))
        substrate = np.array([n != "PbI2" for n in names], dtype=bool)
        fraction = np.where(substrate, np.minimum(fraction, s.substrate_fraction_max), fraction)
        index = torch.as_tensor([pool.impurity_slots[n] for n in names], dtype=torch.int64)
        return index, torch.as_tensor(chosen, dtype=torch.int64), torch.as_tensor(fraction), torch.as_tensor(substrate)

    def sample(self, batch_size: int, *, return_meta: bool = False) -> Any:
        """Draw ``batch_size`` new patterns.

        Parameters
        ----------
        batch_size : int
            Number of patterns (>= 1).
        return_meta : bool
            Also return per-pattern provenance: structure, origin, citation_key, space_group,
            dimensionality, march_r, size_nm, peak_counts, impurity ({"phase", "fraction"} or None).

        Returns
        -------
        values : torch.Tensor float32 [batch_size, 1376]
            Raw counts on models.grid.GRID, on ``self.device``.
        labels : torch.Tensor int64 [batch_size]
            Class indices into ``self.classes``.
        meta : list of dict
            Only with ``return_meta``.

        Raises
        ------
        ValueError
            If ``batch_size`` is not a positive int.
        """
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        n = int(batch_size)
        draw_seed = self._draw_seed(self.draws)
        rng = np.random.default_rng(draw_seed)
        labels = rng.integers(0, len(self.classes), n)
        previous = torch.get_num_threads()
        switch = self.num_threads is not None and self.device.type == "cpu" and self.num_threads != previous
        if switch:
            torch.set_num_threads(self.num_threads)
        try:
            values, meta = self.render(self._space_groups(labels, rng), rng, torch.Generator().manual_seed(draw_seed), return_meta)
        finally:
            if switch:
                torch.set_num_threads(previous)
        self.draws += 1
        self._advance(n)
        out_labels = torch.as_tensor(labels, dtype=torch.int64, device=self.device)
        return (values, out_labels, meta) if return_meta else (values, out_labels)

    def render(self, groups: list[str], rng: np.random.Generator, gen: torch.Generator,
               return_meta: bool = False) -> tuple[torch.Tensor, list[dict[str, Any]] | None]:
        """Films of the given space groups (one per entry), with structures, impurities and every
        random effect drawn from ``rng`` and ``gen``; does not advance the stream.

        Returns
        -------
        values : torch.Tensor float32 [len(groups), 1376]
            Raw counts on models.grid.GRID, on ``self.device``.
        meta : list of dict or None
            Per film provenance (with ``return_meta``).
        """
        pool = self.pool
        slots = self.draw_slots(groups, rng)
        impurity = self._impurities(slots, rng)
        params = FilmBatch(len(groups), gen, self.settings)
        values = render_films(pool.table.tensors(), torch.as_tensor(slots), *impurity, params, gen)
        return values, (self._meta(slots, groups, params, impurity) if return_meta else None)

    def draw_slots(self, groups: list[str], rng: np.random.Generator) -> np.ndarray:
        """Pool slot of each film's main phase: a CIF structure of its group for
        ``settings.cif_fraction`` of the films (where the library has one), else a prototype or
        generated structure; int64 [len(groups)]."""
        pool = self.pool
        use_cif = rng.random(len(groups)) < self.settings.cif_fraction
        choices = [pool.cif_slots[sg] if use_cif[i] and pool.cif_slots[sg] else pool.main_slots[sg] for i, sg in enumerate(groups)]
        return np.array([c[int(rng.integers(len(c)))] for c in choices], dtype=np.int64)

    def _advance(self, n: int) -> None:
        """Count ``n`` films and replace pool structures every ``refresh_every`` films."""
        before = self.films
        self.films += n
        if self.refresh_every:
            for _ in range(self.films // self.refresh_every - before // self.refresh_every):
                self.pool.refresh_one()

    def _meta(self, slots: np.ndarray, groups: list[str], p: FilmBatch, impurity: tuple[torch.Tensor, ...]) -> list[dict[str, Any]]:
        phases = {int(j): (self.pool.entry(int(i)).name, round(float(f), 3)) for i, j, f in zip(*impurity[:3])}
        out = []
        for i, (slot, sg) in enumerate(zip(slots, groups)):
            entry = self.pool.entry(int(slot))
            out.append({
                "structure": entry.name, "origin": entry.origin, "citation_key": entry.citation_key,
                "space_group": sg, "dimensionality": SPACE_GROUP_TO_DIMENSIONALITY[sg],
                "march_r": round(float(p.march_r[i]), 4), "size_nm": round(float(p.size_nm[i]), 2),
                "peak_counts": round(float(p.peak_counts[i]), 1),
                "impurity": None if i not in phases else {"phase": phases[i][0], "fraction": phases[i][1]},
            })
        return out
