"""The embedding memory: nearest-neighbour vote, adding a labelled scan, k-th-neighbour novelty."""

import numpy as np
import pytest

from models.memory import EmbeddingMemory, unit_rows


def _clusters(rng: np.random.Generator, n_per: int, centres: np.ndarray, spread: float) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(len(centres)), n_per)
    return centres[labels] + spread * rng.standard_normal((labels.size, centres.shape[1])), labels


def test_vote_follows_the_nearest_class() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8) * 5 + 1
    x, y = _clusters(rng, 20, centres, 0.3)
    memory = EmbeddingMemory(n_classes=3).fit(x, y)
    queries, truth = _clusters(rng, 5, centres, 0.3)
    proba = memory.predict_proba(queries)
    assert proba.shape == (15, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == truth).all()
    assert proba.min() > 0


def test_a_labelled_scan_is_recognised_after_add() -> None:
    rng = np.random.default_rng(1)
    centres = np.eye(2, 8) * 5 + 1
    x, y = _clusters(rng, 10, centres, 0.3)
    memory = EmbeddingMemory(n_classes=3, n_neighbours=1).fit(x, y)
    new_sample = np.zeros((1, 8))
    new_sample[0, 5] = 4.0
    assert memory.predict_proba(new_sample).argmax() != 2
    memory.add(new_sample, np.array([2]))
    assert memory.predict_proba(new_sample * 1.01).argmax() == 2


def test_novelty_separates_far_patterns_and_threshold_keeps_the_quantile() -> None:
    rng = np.random.default_rng(2)
    centres = np.eye(3, 16) * 5 + 1
    x, y = _clusters(rng, 50, centres, 0.3)
    memory = EmbeddingMemory(n_classes=3).fit(x[::2], y[::2], reference=None)
    threshold = memory.fit_threshold(x[1::2], quantile=0.9)
    assert np.mean(memory.novelty(x[1::2]) <= threshold) >= 0.9
    far = np.zeros((4, 16))
    far[:, 10:14] = np.eye(4) * 5
    assert memory.is_out_of_distribution(far).all()
    assert (memory.novelty(far) > memory.novelty(x[1::2]).max()).all()


def test_bad_input_is_refused() -> None:
    with pytest.raises(RuntimeError, match="empty"):
        EmbeddingMemory(3).predict_proba(np.ones((1, 4)))
    memory = EmbeddingMemory(3)
    with pytest.raises(ValueError, match="labels"):
        memory.fit(np.ones((2, 4)), np.array([0, 3]))
    with pytest.raises(ValueError, match="NaN"):
        unit_rows(np.array([[np.nan, 1.0]]))
    memory.fit(np.eye(4)[:3], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="dimensions"):
        memory.add(np.ones((1, 5)), np.array([0]))


def test_a_copy_learns_without_changing_the_original() -> None:
    rng = np.random.default_rng(1)
    memory = EmbeddingMemory(3).fit(rng.normal(size=(12, 8)), np.arange(12) % 3, reference=rng.normal(size=(20, 8)))
    before = (memory.embeddings_.copy(), memory.labels_.copy(), memory.reference_.copy())
    grown = memory.copy().add(rng.normal(size=(2, 8)), np.array([0, 1]))
    assert grown.embeddings_.shape[0] == 14 and grown.reference_.shape[0] == memory.reference_.shape[0] + 2
    for kept, now in zip(before, (memory.embeddings_, memory.labels_, memory.reference_)):
        assert np.array_equal(kept, now)
