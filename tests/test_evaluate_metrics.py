"""Metrics, folds and the 1-NN baseline, on small hand-checked inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from evaluation.folds import stratified_folds
from evaluation.metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    f1_scores,
    per_class_recall,
    reliability,
    selective_accuracy,
)
from evaluation.nearest_neighbour import NearestNeighbourClassifier
from training.near_duplicates import correlation_on_common_range, group_sizes, near_duplicate_groups


def test_confusion_recall_and_f1_match_hand_counts_and_sklearn() -> None:
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    matrix = confusion_matrix(y_true, y_pred, 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    recall = per_class_recall(matrix)
    assert recall[:3] == pytest.approx([0.5, 2 / 3, 1.0])
    assert np.isnan(recall[3])  # class 3 absent: no recall, not zero
    micro, macro = f1_scores(matrix)
    assert micro == pytest.approx(accuracy(y_true, y_pred)) == pytest.approx(4 / 6)
    assert macro == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_confusion_matrix_rejects_out_of_range_labels() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_ece_is_zero_when_confidence_equals_accuracy_and_known_otherwise() -> None:
    # 10 samples at confidence 0.8, 8 correct: perfectly calibrated
    probs = np.tile([0.8, 0.2], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.0, abs=1e-12)
    # all correct at confidence 0.6: gap 0.4
    assert expected_calibration_error(np.zeros(5, dtype=int), np.tile([0.6, 0.4], (5, 1))) == pytest.approx(0.4)
    rel = reliability(labels, probs, n_bins=15)
    assert rel.counts.sum() == 10 and rel.bin_edges.size == 16


def test_selective_accuracy_keeps_the_most_confident() -> None:
    probs = np.array([[0.99, 0.01], [0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 1])  # the two least confident are wrong
    result = selective_accuracy(labels, probs, (1.0, 0.5))
    assert result == {"1.00": 0.5, "0.50": 1.0}


def test_stratified_folds_cover_each_sample_once_per_repeat_and_keep_groups_together() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0] * 30 + [1] * 12 + [2] * 1)  # class 2 has fewer members than folds
    groups = np.repeat(np.arange(22), 2)[: labels.size]
    for grouping in (None, groups):
        folds = stratified_folds(labels, 5, 3, seed=7, groups=grouping)
        assert len(folds) == 15
        for repeat in range(3):
            tested = np.concatenate([f.test for f in folds if f.repeat == repeat])
            assert np.array_equal(np.sort(tested), np.arange(labels.size))
        for fold in folds:
            assert not set(fold.train) & set(fold.test)
            if grouping is not None:
                assert not set(grouping[fold.train]) & set(grouping[fold.test])
    # different repeats shuffle differently
    folds = stratified_folds(labels, 5, 2, seed=7)
    assert not all(np.array_equal(a.test, b.test) for a, b in zip(folds[:5], folds[5:]))
    del rng


def test_correlation_uses_only_the_common_measured_range() -> None:
    grid = np.linspace(0, 1, 200)
    a = np.sin(20 * grid)
    b = a.copy()
    b[:100] = 1e3 * np.cos(50 * grid[:100])  # garbage where b "was not measured"
    masks = np.ones((2, 200), dtype=bool)
    masks[1, :100] = False
    corr = correlation_on_common_range(np.stack([a, b]), masks, min_overlap=10, min_overlap_fraction=0.0)
    assert corr[0, 1] == pytest.approx(1.0)
    # a short pattern is not compared with a long one when the fraction rule applies
    corr = correlation_on_common_range(np.stack([a, b]), masks, min_overlap=10, min_overlap_fraction=0.6)
    assert np.isnan(corr[0, 1])


def test_near_duplicate_groups_are_connected_components_with_links() -> None:
    corr = np.full((5, 5), 0.1)
    corr[0, 1] = corr[1, 0] = 0.97
    corr[1, 2] = corr[2, 1] = 0.96  # 0-1-2 chained although 0-2 is low
    corr[3, 4] = corr[4, 3] = 0.95  # not strictly above the threshold
    groups = near_duplicate_groups(corr, 0.95)
    assert groups.tolist() == [0, 0, 0, 1, 2]
    assert near_duplicate_groups(corr, 0.95, links=[(3, 4)]).tolist() == [0, 0, 0, 1, 1]
    assert group_sizes(groups) == [3, 1, 1]


def _two_channel(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.stack([x, mask.astype(np.float32)], axis=1)


def test_nearest_neighbour_picks_the_most_correlated_on_partial_input() -> None:
    grid = np.arange(300)
    peaks = np.array([[50, 120], [50, 200], [90, 250]])
    train = np.stack([np.exp(-0.5 * ((grid[:, None] - p) / 3) ** 2).sum(1) for p in peaks])
    masks = np.ones_like(train, dtype=bool)
    nn = NearestNeighbourClassifier(n_classes=3).fit(_two_channel(train, masks), np.array([0, 1, 2]))
    query = train[1].copy()
    query_mask = np.zeros(300, dtype=bool)
    query_mask[150:] = True  # only the part that tells 1 from 0 is measured
    query[~query_mask] = 0
    probabilities = nn.predict_proba(_two_channel(query[None], query_mask[None]))
    assert probabilities.tolist() == [[0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match=r"\[N, 2, G\]"):
        nn.predict_proba(train)
