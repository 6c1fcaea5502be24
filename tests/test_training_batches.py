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


def test_a_trained_model_ships_its_memory_and_flags_what_it_does_not_know(tmp_path) -> None:
    from dataclasses import replace

    from models.classifier import Classifier
    from models.memory import EmbeddingMemory
    from models.preprocess import preprocess
    from training.fit import fit_members, assemble_classifier
    from training.memory_fit import fit_memory

    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, GRID_SIZE)
    labels = np.repeat(np.arange(7), 3)
    centres = 0.1 + 0.1 * labels + 0.01 * rng.standard_normal(labels.size)
    values = (1000 * np.exp(-0.5 * ((grid[None] - centres[:, None]) / 0.003) ** 2) + 20).astype(np.float32)
    data = TrainingData(values=values, masks=np.ones(values.shape, bool), labels=labels, is_measured=np.ones(21, bool),
                        holdout_fold=np.full(21, -1, np.int64))
    config = TrainConfig(n_members=1, steps=2, calibrate=False)
    clf = assemble_classifier(fit_members(data, [0], task="space_group", config=config), data, task="space_group", config=config)
    assert clf.memory is None  # the fixed-set recipe answers with the network alone
    films = FilmGenerator("space_group", seed=5, device="cpu", structures_per_class=0, include_cifs=False)
    with_memory = fit_memory(clf, data, seed=0, films=films)
    assert isinstance(with_memory.memory, EmbeddingMemory) and np.isfinite(with_memory.memory.threshold_)
    assert with_memory.version != clf.version
    loaded = Classifier.load(with_memory.save(tmp_path / "m"))
    assert loaded.version == with_memory.version
    features = preprocess(values, np.ones(values.shape, bool))
    np.testing.assert_allclose(loaded.predict_proba(features), with_memory.predict_proba(features), atol=1e-6)
    # a scan is recognised once it is labelled: its own label then leads the memory's vote
    prediction = loaded.predict(np.linspace(5, 60, GRID_SIZE), values[0])
    assert prediction.probabilities.shape == (7,) and np.isfinite(prediction.novelty)
    remembered = loaded.remember(np.linspace(5, 60, GRID_SIZE), values[0], "Pm-3m")
    assert remembered.memory.embeddings_.shape[0] == 22
    assert remembered.predict(np.linspace(5, 60, GRID_SIZE), values[0]).probabilities[6] > prediction.probabilities[6]
    with pytest.raises(ValueError, match="not one of"):
        loaded.remember(np.linspace(5, 60, GRID_SIZE), values[0], "Fd-3m")


def test_film_fraction_splits_the_simulated_share_between_fixed_rows_and_films() -> None:
    # rows 0-1 measured, rows 2-8 fixed simulated (every value = the row index); films are not constant
    data = _data([0, 1, 0, 1, 2, 3, 4, 5, 6], [True] * 2 + [False] * 7)
    films = FilmGenerator("space_group", seed=3, device="cpu", structures_per_class=0, include_cifs=False)
    for fraction, n_films in ((0.5, 10), (0.0, 0), (1.0, 20)):
        config = TrainConfig(batch_size=40, measured_fraction=0.5, film_generator=True, film_fraction=fraction)
        batch = BatchSource(data, "space_group", config, torch.Generator().manual_seed(4), films=films).draw()
        first = batch.values[:, 0]
        rendered = ~(batch.values == batch.values[:, :1]).all(dim=1)
        assert int(rendered.sum()) == n_films, fraction
        assert int(((first >= 2) & ~rendered).sum()) == 20 - n_films  # the fixed simulated rows
        assert int((first < 2).sum()) == 20  # the measured share is untouched
    with pytest.raises(ValueError, match="film_fraction"):
        TrainConfig(film_fraction=1.5)
