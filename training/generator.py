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
share is split over its space groups in the label_theo.csv proportions, see
:func:`training.simulate.class_counts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from patterns import DIMENSIONALITIES, SPACE_GROUPS

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
        Seed of the stream: draw ``k`` is a function of ``(seed, k)`` only.
    device : str or torch.device, optional
        Where the returned tensors live (default CUDA when available, else CPU).

    Raises
    ------
    ValueError
        For an unknown task or a seed that is not a non-negative int.
    """

    def __init__(self, task: str = "space_group", seed: int = 0, device: str | torch.device | None = None) -> None:
        if task not in ("space_group", "dimensionality"):
            raise ValueError(f"task must be 'space_group' or 'dimensionality', got {task!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.task = task
        self.seed = int(seed)
        self.device = _select_device(device)
        self.classes: tuple[str, ...] = SPACE_GROUPS if task == "space_group" else DIMENSIONALITIES
        self.draws = 0
        """Number of batches drawn so far (the next draw's index)."""

    def _draw_seed(self, draw: int) -> int:
        """Seed of draw ``draw``: a child of ``self.seed`` (distinct draws, independent streams)."""
        return int(np.random.SeedSequence([self.seed, draw]).generate_state(1, dtype=np.uint32)[0])

    def sample(self, batch_size: int, *, return_meta: bool = False) -> Any:
        """Draw ``batch_size`` new patterns.

        Parameters
        ----------
        batch_size : int
            Number of patterns (>= 1).
        return_meta : bool
            Also return the per-pattern provenance (structure, lattice, texture, ...).

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
        from training.simulate import simulate_training_set  # heavy (pymatgen): on first use only

        draw_seed = self._draw_seed(self.draws)
        self.draws += 1
        rng = np.random.default_rng(draw_seed)
        per_class = np.bincount(rng.integers(0, len(self.classes), int(batch_size)), minlength=len(self.classes))
        counts = {c: int(n) for c, n in zip(self.classes, per_class)}
        x, y, meta = simulate_training_set(counts, seed=draw_seed, task=self.task)
        values = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.device)
        return (values, labels, meta) if return_meta else (values, labels)
