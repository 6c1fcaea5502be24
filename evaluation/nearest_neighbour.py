"""The 1-nearest-neighbour baseline: a pattern takes the class of its most correlated training pattern.

A network that does not beat this baseline is memorising, not learning: on the measured
metal-halide set, near-duplicate films make 1-NN as good as the published a-CNN under random
folds. Inputs are the preprocessed two-channel arrays ``[N, 2, G]`` of
:func:`models.preprocess.preprocess` (channel 0 the processed intensity, channel 1 the measured
mask), so the baseline sees exactly what the networks see, and a partial scan is compared with
each training pattern only on the grid points the scan measured.
"""

from __future__ import annotations

import numpy as np

from evaluation.training_sets import FoldModel, ModelSpec, TrainingSet
from patterns.datasets import task_classes
from training.near_duplicates import cross_correlation_on_common_range

MIN_COMMON_POINTS = 10
"""Fewest common measured grid points for a correlation to count (else the pair is skipped)."""


def _split_channels(features: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features)
    if x.ndim != 3 or x.shape[1] != 2:
        raise ValueError(f"{name} must have shape [N, 2, G] (intensity, mask), got {x.shape}")
    return x[:, 0, :].astype(np.float64), x[:, 1, :] > 0.5


class NearestNeighbourClassifier:
    """1-NN on the Pearson correlation over the common measured range (scikit-learn style).

    Parameters
    ----------
    n_classes : int
        Number of classes of the task (columns of :meth:`predict_proba`).
    batch_size : int
        Queries compared per matrix product (bounds memory: ``batch * N_train`` floats).

    Attributes
    ----------
    train_features_, train_masks_ : np.ndarray
        The stored training patterns, ``[N_train, G]``.
    train_labels_ : np.ndarray
        Their classes.
    """

    def __init__(self, n_classes: int, batch_size: int = 256) -> None:
        self.n_classes = n_classes
        self.batch_size = batch_size

    def fit(self, features: np.ndarray, labels: np.ndarray) -> NearestNeighbourClassifier:
        """Store the training patterns ``[N, 2, G]`` and their integer classes ``[N]``."""
        x, m = _split_channels(features, "features")
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape [{x.shape[0]}], got {y.shape}")
        if x.shape[0] == 0:
            raise ValueError("cannot fit a nearest-neighbour classifier on no patterns")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"labels must lie in [0, {self.n_classes})")
        self.train_features_ = x
        self.train_masks_ = m
        self.train_labels_ = y
        return self

    def nearest(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of and correlation with the most correlated training pattern of each query.

        A query with no comparable training pattern (no overlap of at least
        :data:`MIN_COMMON_POINTS` points, or flat) gets index -1 and correlation NaN.
        """
        if not hasattr(self, "train_labels_"):
            raise RuntimeError("NearestNeighbourClassifier is not fitted: call fit() first")
        x, m = _split_channels(features, "features")
        if x.shape[1] != self.train_features_.shape[1]:
            raise ValueError(
                f"grid of {x.shape[1]} points differs from the training grid of "
                f"{self.train_features_.shape[1]}"
            )
        index = np.full(x.shape[0], -1, dtype=np.int64)
        best = np.full(x.shape[0], np.nan)
        for start in range(0, x.shape[0], self.batch_size):
            stop = start + self.batch_size
            corr = cross_correlation_on_common_range(
                x[start:stop], m[start:stop], self.train_features_, self.train_masks_,
                MIN_COMMON_POINTS,
            )
            comparable = np.isfinite(corr).any(axis=1)
            filled = np.where(np.isfinite(corr), corr, -np.inf)
            arg = filled.argmax(axis=1)
            index[start:stop] = np.where(comparable, arg, -1)
            best[start:stop] = np.where(comparable, filled[np.arange(arg.size), arg], np.nan)
        return index, best

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """One-hot probabilities of the nearest neighbour's class, ``[N, n_classes]``.

        A query with no comparable training pattern gets the training class frequencies (the
        best guess without evidence) rather than an arbitrary class.
        """
        index, _ = self.nearest(features)
        probabilities = np.zeros((index.size, self.n_classes))
        found = index >= 0
        probabilities[np.flatnonzero(found), self.train_labels_[index[found]]] = 1.0
        if not found.all():
            prior = np.bincount(self.train_labels_, minlength=self.n_classes) / self.train_labels_.size
            probabilities[~found] = prior
        return probabilities

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class index of the nearest training pattern of each query, ``[N]``."""
        return self.predict_proba(features).argmax(axis=1)


class NearestNeighbourModel:
    """The 1-NN baseline behind the :class:`FoldModel` interface.

    Parameters
    ----------
    n_classes : int
        Classes of the task.
    measured_only : bool
        Use only the measured rows of the training set (else every row, simulated included).
    """

    def __init__(self, n_classes: int, measured_only: bool = False) -> None:
        self.n_classes = n_classes
        self.measured_only = measured_only

    def fit(self, training: TrainingSet) -> NearestNeighbourModel:
        rows = training.is_measured if self.measured_only else np.ones(len(training), dtype=bool)
        if not rows.any():
            raise ValueError("1-NN on measured patterns only, but the training set has none")
        self.classifier_ = NearestNeighbourClassifier(self.n_classes).fit(
            training.features[rows], training.labels[rows]
        )
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.classifier_.predict_proba(features)


def nearest_neighbour_spec(measured_only: bool = True) -> ModelSpec:
    """The 1-NN baseline as a :class:`ModelSpec`.

    ``measured_only=True`` gives "nn": correlation to the measured training patterns (the
    baseline of the data README, and the stronger one here: simulated neighbours mislead it);
    it is skipped where no measured pattern is in training (Case 1, Case 2). ``False`` gives
    "nn_with_simulated": correlation to every training pattern.
    """

    def factory(task: str, seed: int) -> FoldModel:
        return NearestNeighbourModel(len(task_classes(task)), measured_only)

    if measured_only:
        return ModelSpec("nn", factory, "1-NN, correlation to the measured training patterns", True)
    return ModelSpec("nn_with_simulated", factory,
                     "1-NN, correlation to every training pattern (simulated + measured)")
