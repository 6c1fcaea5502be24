"""Each step's batch: measured share, class balance, hold-out folds, new films from the generator."""

import numpy as np
import pytest
import torch

from models.grid import GRID_SIZE
from training.batches import NO_HOLDOUT, BatchSource
from training.config import TrainConfig
from training.dataset import TrainingData
from training.generator import FilmGenerator


def _data(labels: list[int], measured: list[bool]) -> TrainingData:
    n = len(labels)
    values = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, GRID_SIZE), np.float32)
    return TrainingData(values=values, masks=np.ones((n, GRID_SIZE), bool), labels=np.array(labels, np.int64),
                        is_measured=np.array(measured), holdout_fold=np.where(measured, np.arange(n) % 3, -1).astype(np.int64))


def test_measured_rows_are_class_balanced_when_asked() -> None:
    labels = [0] * 18 + [1, 2]  # one class dominates, as Pm-3m does in the measured set
    data = _data(labels, [True] * 20)
    counts = {}
    for balance in (False, True):
        config = TrainConfig(batch_size=600, balance_measured=balance)
        batch = BatchSource(data, "space_group", config, torch.Generator().manual_seed(0)).draw()
        counts[balance] = np.bincount(batch.labels.numpy(), minlength=3) / 600
        # the row and its label travel together: row i holds the value i
        np.testing.assert_array_equal(batch.labels.numpy(), data.labels[batch.values[:, 0].long().numpy()])
    assert counts[False][0] > 0.8
    assert np.all(np.abs(counts[True] - 1 / 3) < 0.08)


def test_measured_share_and_simulated_rows_never_held_out() -> None:
    data = _data([0, 1, 2, 0, 1, 2, 3, 4, 5, 6], [True] * 3 + [False] * 7)
    config = TrainConfig(batch_size=100, measured_fraction=0.3)
    batch = BatchSource(data, "space_group", config, torch.Generator().manual_seed(1)).draw()
    rows = batch.values[:, 0].long().numpy()
    assert (rows < 3).sum() == 30
    assert (batch.holdout_fold.numpy()[rows >= 3] == NO_HOLDOUT).all()


def test_nothing_to_train_on_is_refused() -> None:
    empty = TrainingData(values=np.zeros((0, GRID_SIZE), np.float32), masks=np.zeros((0, GRID_SIZE), bool),
                         labels=np.zeros(0, np.int64), is_measured=np.zeros(0, bool), holdout_fold=np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="no training patterns"):
        BatchSource(empty, "space_group", TrainConfig(), torch.Generator())


def test_films_fill_the_simulated_share_and_are_new_every_step() -> None:
    data = _data([0, 1, 2, 3], [True] * 4)
    films = FilmGenerator("space_group", seed=3, device="cpu", structures_per_class=0, include_cifs=False)
    config = TrainConfig(batch_size=8, measured_fraction=0.5, film_generator=True)
    source = BatchSource(data, "space_group", config, torch.Generator().manual_seed(2), films=films)
    first, second = source.draw(), source.draw()
    for batch in (first, second):
        assert batch.values.shape == (8, GRID_SIZE) and batch.masks.all()
        assert (batch.holdout_fold[4:] == NO_HOLDOUT).all()
        assert batch.values[4:].sum(dim=1).min() > 0  # rendered films, not the measured rows
    assert not torch.equal(first.values[4:], second.values[4:])
