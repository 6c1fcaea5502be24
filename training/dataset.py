"""Training data assembly: measured and simulated patterns on the grid, with hold-out folds.

:func:`prepare_training_data` serves :func:`training.fit.train_classifier` (hold-out folds dealt per
pattern, stratified); the retrain flow assembles its rows from labelled scans and measured
near-duplicate groups and deals the folds per group (:func:`grouped_holdout_folds`); both end in
:func:`stack_training_data`, the one place a :class:`TrainingData` is put together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.grid import GRID_SIZE, to_grid
from patterns.datasets import task_classes
from training.config import TrainConfig


@dataclass(frozen=True)
class TrainingData:
    """Gridded raw training patterns.

    Attributes
    ----------
    values : np.ndarray
        float32 [N, 1376] raw intensity on the grid, 0 where unmeasured.
    masks : np.ndarray
        bool [N, 1376].
    labels : np.ndarray
        int64 [N] class indices.
    is_measured : np.ndarray
        bool [N]: measured (True) or simulated.
    holdout_fold : np.ndarray
        int64 [N]: the member that never trains on this row (-1: every member may).
    """

    values: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    is_measured: np.ndarray
    holdout_fold: np.ndarray

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        for name in ("values", "masks"):
            if getattr(self, name).shape != (n, GRID_SIZE):
                raise ValueError(f"{name} must have shape [{n}, {GRID_SIZE}], got {getattr(self, name).shape}")
        if self.is_measured.shape != (n,) or self.holdout_fold.shape != (n,):
            raise ValueError("is_measured and holdout_fold must have one entry per pattern")

    def content_hash(self) -> str:
        """sha256 of the values, masks and labels (the training-data hash in model files)."""
        digest = hashlib.sha256()
        for array in (self.values, self.masks, self.labels, self.is_measured):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def _as_label_indices(labels: Sequence[Any] | np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    array = np.asarray(labels)
    if array.dtype.kind in "iu":
        out = array.astype(np.int64)
        if out.size and (out.min() < 0 or out.max() >= len(classes)):
            raise ValueError(f"label indices must be within [0, {len(classes)})")
        return out
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(x) for x in array if str(x) not in lookup})
    if unknown:
        raise ValueError(f"unknown labels {unknown}; expected {list(classes)}")
    return np.array([lookup[str(x)] for x in array], dtype=np.int64)


def _grid_inputs(patterns_or_arrays: Any) -> tuple[np.ndarray, np.ndarray, list[Any] | None]:
    """(values, masks, patterns or None) from a list of Patterns or a (values, masks) pair."""
    if isinstance(patterns_or_arrays, tuple) and len(patterns_or_arrays) == 2:
        values = np.asarray(patterns_or_arrays[0], dtype=np.float32)
        masks = np.asarray(patterns_or_arrays[1], dtype=bool)
        if values.ndim != 2 or values.shape != masks.shape or values.shape[1] != GRID_SIZE:
            raise ValueError(f"expected values and masks of shape [N, {GRID_SIZE}], got {values.shape} and {masks.shape}")
        return np.where(masks, values, 0).astype(np.float32), masks, None
    patterns = list(patterns_or_arrays)
    if not patterns:
        return np.zeros((0, GRID_SIZE), np.float32), np.zeros((0, GRID_SIZE), bool), []
    gridded = [to_grid(p.two_theta, p.intensity) for p in patterns]
    return np.stack([v for v, _ in gridded]), np.stack([m for _, m in gridded]), patterns


def assign_holdout_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Hold-out fold per pattern, stratified: each class's patterns are dealt round-robin in random order.

    Patterns are dealt individually, not by near-duplicate group: a group can be a third of a class,
    and a member that never saw it would be a worse member, not a fairer one. The price is that a
    held-out pattern may have a near-duplicate in its member's training data, so the temperature
    fitted here errs towards over-confidence; the evaluation harness re-fits it on grouped folds.
    """
    folds = np.full(labels.size, -1, dtype=np.int64)
    if n_folds < 2 or labels.size == 0:
        return folds
    rng = np.random.default_rng(seed)
    start = 0
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        folds[rows] = (start + np.arange(rows.size)) % n_folds
        start = (start + rows.size) % n_folds  # spread the singletons of small classes over folds
    return folds


def prepare_training_data(
    patterns_or_arrays: Any,
    labels: Sequence[Any] | np.ndarray | None = None,
    *,
    task: str,
    config: TrainConfig,
    simulated: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainingData:
    """Grid measured patterns, add simulated ones, and assign hold-out folds.

    Parameters
    ----------
    patterns_or_arrays : list of Pattern or (values, masks)
        Measured patterns, or their raw gridded values float32 [N, 1376] and masks bool [N, 1376].
        May be empty when ``simulated`` is given.
    labels : sequence, optional
        Class names or indices; from ``pattern.metadata["label"]`` when None (Patterns only).
    task : str
        "space_group" or "dimensionality".
    config : TrainConfig
        Supplies n_members (number of hold-out folds), n_simulated_per_class and the seed.
    simulated : (X, y), optional
        Raw simulated patterns float32 [M, 1376] on the full grid and their labels.
    """
    classes = task_classes(task)
    values, masks, patterns = _grid_inputs(patterns_or_arrays)
    if labels is None:
        if patterns is None:
            raise ValueError("labels are required with (values, masks) input")
        labels = [p.metadata.get("label") for p in patterns]
    y = _as_label_indices(labels, classes)
    if y.shape[0] != values.shape[0]:
        raise ValueError(f"{values.shape[0]} patterns but {y.shape[0]} labels")
    if simulated is None and config.n_simulated_per_class > 0:
        from training.simulate import simulate_training_set

        sim_x, sim_y, _ = simulate_training_set(config.n_simulated_per_class, seed=config.seed, task=task)
        simulated = (sim_x, sim_y)
    if simulated is not None:
        sim_x = np.asarray(simulated[0], dtype=np.float32)
        sim_y = _as_label_indices(simulated[1], classes)
        if sim_x.ndim != 2 or sim_x.shape[1] != GRID_SIZE or sim_x.shape[0] != sim_y.shape[0]:
            raise ValueError(f"simulated patterns must be [M, {GRID_SIZE}] with M labels, got {sim_x.shape} and {sim_y.shape}")
    else:
        sim_x, sim_y = np.zeros((0, GRID_SIZE), np.float32), np.zeros(0, np.int64)
    n_measured = values.shape[0]
    measured_folds = (
        assign_holdout_folds(y, config.n_members, config.seed)
        if n_measured and config.calibrate
        else np.full(n_measured, -1, dtype=np.int64)
    )
    if n_measured == 0 and config.calibrate and config.n_members >= 2:
        # simulated only: hold simulated rows out instead, so the temperature is still fitted
        sim_folds = np.random.default_rng(config.seed).integers(0, config.n_members, sim_y.size)
    else:
        sim_folds = np.full(sim_y.size, -1, dtype=np.int64)
    return stack_training_data((values, masks, y, measured_folds), (sim_x, sim_y, sim_folds))

def grouped_holdout_folds(groups: np.ndarray, n_simulated: int, n_folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold-out folds dealt per near-duplicate group (measured rows) and at random (simulated rows).

    Scans of one sample and near-duplicate measured patterns share a group, so a member never
    trains on a copy of a pattern it holds out (the retrain flow's rule, stricter than
    :func:`assign_holdout_folds`, because labelled scans come in repeats of one sample).

    Parameters
    ----------
    groups : np.ndarray
        int64 [N] group id of each measured row, ids ``0..G-1``.
    n_simulated : int
        Simulated rows after them.
    n_folds : int
        Members; fewer than 2 holds nothing out (-1 everywhere).
    seed : int
        Seeds the deal.

    Returns
    -------
    measured_folds, simulated_folds : np.ndarray
        int64 [N] and [n_simulated].
    """
    if n_folds < 2:
        return np.full(groups.size, -1, np.int64), np.full(n_simulated, -1, np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(int(groups.max()) + 1)
    return (order[groups] % n_folds).astype(np.int64), rng.integers(0, n_folds, n_simulated).astype(np.int64)


def stack_training_data(
    measured: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    simulated: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> TrainingData:
    """Measured rows then simulated rows (fully measured) as one :class:`TrainingData`.

    Parameters
    ----------
    measured : (values, masks, labels, holdout_fold)
        float32 [N, 1376], bool [N, 1376], int64 [N], int64 [N].
    simulated : (values, labels, holdout_fold)
        float32 [M, 1376], int64 [M], int64 [M].
    """
    values, masks, labels, folds = measured
    sim_values, sim_labels, sim_folds = simulated
    return TrainingData(
        values=np.concatenate([values, sim_values]).astype(np.float32),
        masks=np.concatenate([masks, np.ones(sim_values.shape, dtype=bool)]),
        labels=np.concatenate([labels, sim_labels]).astype(np.int64),
        is_measured=np.concatenate([np.ones(labels.size, bool), np.zeros(sim_labels.size, bool)]),
        holdout_fold=np.concatenate([folds, sim_folds]).astype(np.int64),
    )
