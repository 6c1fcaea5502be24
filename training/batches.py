"""What one optimiser step trains on: measured rows, fixed simulated rows, or new simulated films.

Every step draws ``config.batch_size`` raw patterns:

* ``measured_fraction`` of them from the measured rows of the training data when it has any
  (class-balanced when ``config.balance_measured``: each class equally often, then a row of it);
* the rest from the fixed simulated rows when the training data hold some (class-balanced, as the
  protocols' simulated sets are), else new films from :class:`training.generator.FilmGenerator`
  when ``config.film_generator`` (no film is drawn twice in a run), else from the measured rows;
  with fixed rows AND a film stream passed, ``config.film_fraction`` of that share are new films
  and the rest fixed rows (the cited prototypes' simulated films teach what measured films of
  these materials look like; the generated films teach the symmetry around them).

The batch is raw counts on the grid; augmentation and preprocessing follow in :mod:`training.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.config import TrainConfig
from training.dataset import TrainingData
from training.generator import FilmGenerator

NO_HOLDOUT: int = -1
"""Hold-out fold of rows every member may train on (simulated rows and films)."""


@dataclass(frozen=True)
class Batch:
    """One step's raw training patterns.

    Attributes
    ----------
    values : torch.Tensor
        float32 [B, 1376] raw counts on the grid (0 where unmeasured).
    masks : torch.Tensor
        bool [B, 1376] measured masks.
    labels : torch.Tensor
        int64 [B] class indices.
    holdout_fold : torch.Tensor
        int64 [B] the member that must not train on the row (:data:`NO_HOLDOUT`: none).
    """

    values: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    holdout_fold: torch.Tensor


def _class_balanced(rows: np.ndarray, labels: np.ndarray, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` rows: a uniformly drawn class, then a uniformly drawn row of it."""
    classes = np.unique(labels[rows])
    by_class = [torch.from_numpy(rows[labels[rows] == c]) for c in classes]
    chosen = torch.randint(len(by_class), (n,), generator=generator)
    picks = torch.empty(n, dtype=torch.int64)
    for c, members in enumerate(by_class):
        where = torch.nonzero(chosen == c).flatten()
        if where.numel():
            picks[where] = members[torch.randint(members.numel(), (where.numel(),), generator=generator)]
    return picks


class BatchSource:
    """Draws each step's :class:`Batch` (see the module docstring for the mix).

    Parameters
    ----------
    data : TrainingData
        Measured rows and fixed simulated rows (either may be empty).
    task : str
        The task (labels of generated films).
    config : TrainConfig
        batch_size, measured_fraction, balance_measured, film_generator and seed.
    generator : torch.Generator
        Source of the row draws.
    stream : int
        Which film stream (members trained in separate processes draw different films).
    films : FilmGenerator, optional
        The film stream to draw from; by default one is built (seed ``config.seed * 1000 + stream``)
        when the data hold no simulated rows and ``config.film_generator`` is set. With simulated
        rows, a stream passed here supplies ``config.film_fraction`` of the simulated share.

    Raises
    ------
    ValueError
        When there is nothing to train on (no rows and no film generator).
    """

    def __init__(self, data: TrainingData, task: str, config: TrainConfig, generator: torch.Generator, stream: int = 0,
                 films: FilmGenerator | None = None) -> None:
        self.data, self.generator = data, generator
        self.balance = config.balance_measured
        self.measured = np.flatnonzero(data.is_measured)
        self.simulated = np.flatnonzero(~data.is_measured)
        self.films = None
        if self.simulated.size == 0 and config.film_generator:
            self.films = films or FilmGenerator(task=task, seed=config.seed * 1000 + stream, device="cpu")
        elif films is not None and self.simulated.size and config.film_fraction > 0:
            self.films = films  # with fixed rows: the mix of config.film_fraction
        if self.measured.size == 0 and self.simulated.size == 0 and self.films is None:
            raise ValueError("no training patterns: pass measured or simulated patterns, or set film_generator")
        has_other = self.simulated.size > 0 or self.films is not None
        if self.measured.size == 0:
            self.n_measured = 0
        else:
            self.n_measured = int(round(config.batch_size * config.measured_fraction)) if has_other else config.batch_size
        self.n_other = config.batch_size - self.n_measured
        self.n_films = 0 if self.films is None else self.n_other
        if self.films is not None and self.simulated.size:  # films beside fixed rows: their share of the rest
            self.n_films = int(round(self.n_other * config.film_fraction))
        self.n_fixed = self.n_other - self.n_films
        self.values = torch.from_numpy(data.values)
        self.masks = torch.from_numpy(data.masks)
        self.labels = torch.from_numpy(data.labels)
        self.folds = torch.from_numpy(data.holdout_fold)

    def _measured_rows(self) -> torch.Tensor:
        if self.balance:
            return _class_balanced(self.measured, self.data.labels, self.n_measured, self.generator)
        return torch.from_numpy(self.measured)[torch.randint(self.measured.size, (self.n_measured,), generator=self.generator)]

    def draw(self) -> Batch:
        """The next step's batch, ``config.batch_size`` patterns."""
        rows = [self._measured_rows()] if self.n_measured else []
        if self.n_fixed:
            rows.append(_class_balanced(self.simulated, self.data.labels, self.n_fixed, self.generator))
        index = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)
        batch = Batch(self.values[index], self.masks[index], self.labels[index], self.folds[index])
        if self.n_films:
            films, labels = self.films.sample(self.n_films)
            batch = Batch(
                torch.cat([batch.values, films.float().cpu()]),
                torch.cat([batch.masks, torch.ones(films.shape, dtype=torch.bool)]),
                torch.cat([batch.labels, labels.cpu()]),
                torch.cat([batch.holdout_fold, torch.full((self.n_films,), NO_HOLDOUT, dtype=torch.int64)]),
            )
        return batch
