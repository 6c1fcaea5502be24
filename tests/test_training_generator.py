"""FilmGenerator: the per-step stream of new simulated thin films (training.generator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.grid import GRID_SIZE
from patterns import DIMENSIONALITIES, SPACE_GROUPS
from training.film_settings import SimulationSettings
from training.generator import FilmGenerator

# a fast pool for tests: one generated structure per class, no pyxtal (tested on its own), no CIFs
SMALL = {"structures_per_class": 1, "include_cifs": False, "refresh_every": 40,
         "settings": SimulationSettings(random_crystal_fraction=0.0)}


@pytest.fixture(scope="module")
def two_draws() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    generator = FilmGenerator("space_group", seed=11, device="cpu", **SMALL)
    return generator.sample(48), generator.sample(48)


def test_shapes_dtypes_and_labels(two_draws):
    (values, labels), _ = two_draws
    assert values.shape == (48, GRID_SIZE) and values.dtype == torch.float32
    assert labels.shape == (48,) and labels.dtype == torch.int64
    assert values.device.type == "cpu"
    assert torch.isfinite(values).all() and (values >= 0).all()
    assert int(labels.min()) >= 0 and int(labels.max()) < len(SPACE_GROUPS)
    # raw counts: integers from the counting noise, not normalised
    assert torch.equal(values, values.round()) and float(values.max()) > 10.0


def test_two_draws_never_repeat(two_draws):
    (first, _), (second, _) = two_draws
    rows = torch.cat([first, second]).numpy()
    assert np.unique(rows, axis=0).shape[0] == rows.shape[0]
    # not merely different noise on the same film: the noise-free shapes differ too
    normalised = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    similarity = normalised @ normalised.T
    np.fill_diagonal(similarity, 0.0)
    assert similarity.max() < 0.9999


def test_same_seed_same_batches_and_draw_index(two_draws):
    (first, first_labels), (second, second_labels) = two_draws
    again = FilmGenerator("space_group", seed=11, device="cpu", **SMALL)
    values, labels = again.sample(48)
    assert torch.equal(values, first) and torch.equal(labels, first_labels)
    values, labels = again.sample(48)
    assert torch.equal(values, second) and torch.equal(labels, second_labels)
    assert again.draws == 2 and again.pool.replaced == 2  # 96 films, one new structure per 40
    other, _ = FilmGenerator("space_group", seed=12, device="cpu", **SMALL).sample(48)
    assert not torch.equal(other, first)


def test_labels_follow_the_structures(two_draws):
    generator = FilmGenerator("space_group", seed=5, device="cpu", **SMALL)
    _, labels, meta = generator.sample(40, return_meta=True)
    assert [SPACE_GROUPS[i] for i in labels.tolist()] == [m["space_group"] for m in meta]
    origins = {m["origin"] for m in meta}
    assert origins <= {"prototype", "substituted", "pyxtal"}
    assert {e.origin for e in generator.pool.table.entries} >= {"impurity", "prototype", "substituted"}


def test_dimensionality_task_and_meta():
    values, labels, meta = FilmGenerator("dimensionality", seed=3, device="cpu", **SMALL).sample(30, return_meta=True)
    assert values.shape == (30, GRID_SIZE) and len(meta) == 30
    assert int(labels.max()) < len(DIMENSIONALITIES)
    for label, record in zip(labels.tolist(), meta):
        assert DIMENSIONALITIES[label] == record["dimensionality"]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="task"):
        FilmGenerator("colour")
    with pytest.raises(ValueError, match="seed"):
        FilmGenerator(seed=-1)
    with pytest.raises(ValueError, match="structures_per_class"):
        FilmGenerator(seed=0, structures_per_class=-1)
    with pytest.raises(ValueError, match="batch_size"):
        FilmGenerator(seed=0, device="cpu", **SMALL).sample(0)


def test_with_seed_shares_the_pool_not_the_stream(two_draws):
    base = FilmGenerator("space_group", seed=11, device="cpu", **SMALL)
    member = base.with_seed(12)
    assert member.pool.table.entries == base.pool.table.entries and member.pool is not base.pool
    values, _ = member.sample(48)
    again, _ = base.with_seed(12).sample(48)
    assert torch.equal(values, again)  # reproducible from (pool, seed)
    (first, _), _ = two_draws
    assert not torch.equal(values, first)  # another stream than seed 11's
    assert base.draws == 0  # the parent's stream is untouched
