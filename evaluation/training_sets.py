"""What a model may learn from in one fold, and the check that no test pattern leaks into it.

:class:`TrainingSet` carries raw gridded intensities, masks, labels and the *source name* of every
row (``"measured:<name>"`` or ``"simulated:<index>"``); :func:`check_no_leak` verifies before every
fit that no test pattern (by name and by content) and, for grouped folds, no near-duplicate
partner of one is in it. :class:`ModelSpec` is how the protocols (:mod:`evaluation.protocols`)
take any estimator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from models.grid import GRID_SIZE
from models.preprocess import preprocess
from patterns.datasets import task_classes
from training.measured_set import MeasuredSet

MEASURED_PREFIX = "measured:"
SIMULATED_PREFIX = "simulated:"


class LeakageError(RuntimeError):
    """A test pattern (or, for grouped folds, a near-duplicate of one) is in the training set."""


@dataclass(frozen=True)
class TrainingSet:
    """What a model may learn from in one fold.

    Attributes
    ----------
    task : str
        "space_group" or "dimensionality".
    classes : tuple of str
        Class names; ``labels`` index into them.
    values : np.ndarray
        float32 ``[N, 1376]`` raw intensity on :data:`models.grid.GRID` (0 where unmeasured).
    masks : np.ndarray
        bool ``[N, 1376]``, True where measured (all True for simulated patterns).
    labels : np.ndarray
        int64 ``[N]``.
    sources : tuple of str
        Where each row comes from: ``"simulated:<seed>:<index>"`` or ``"measured:<name>"``.
        Recorded so that tests and :func:`check_no_leak` can prove what a model trained on.
    """

    task: str
    classes: tuple[str, ...]
    values: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.sources)
        if self.values.shape != (n, GRID_SIZE) or self.masks.shape != (n, GRID_SIZE):
            raise ValueError(
                f"values {self.values.shape} and masks {self.masks.shape} must be [{n}, {GRID_SIZE}]"
            )
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape [{n}], got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.sources)

    @cached_property
    def features(self) -> np.ndarray:
        """Preprocessed ``[N, 2, 1376]`` (computed once)."""
        return preprocess(self.values, self.masks)

    @property
    def is_measured(self) -> np.ndarray:
        """bool ``[N]``: the row is a measured pattern (not simulated)."""
        return np.array([s.startswith(MEASURED_PREFIX) for s in self.sources], dtype=bool)

    def measured_names(self) -> set[str]:
        """Names of the measured patterns in the set."""
        return {s[len(MEASURED_PREFIX):] for s in self.sources if s.startswith(MEASURED_PREFIX)}


class FoldModel(Protocol):
    """What the harness needs of a model: fit on a training set, then class probabilities."""

    def fit(self, training: TrainingSet) -> Any: ...

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


ModelFactory = Callable[[str, int], FoldModel]
"""``(task, seed) -> FoldModel``: a fresh, unfitted model."""


@dataclass(frozen=True)
class ModelSpec:
    """A named model of the comparison.

    Attributes
    ----------
    name : str
        Key in the results ("ours", "acnn", "nn", ...).
    factory : ModelFactory
        Builds a fresh model per fold.
    description : str
        One line for the report.
    needs_measured : bool
        Skip this model in protocols without measured training data (Case 1, Case 2).
    settings : dict
        JSON-ready training settings, recorded in reports.
    """

    name: str
    factory: ModelFactory
    description: str = ""
    needs_measured: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulatedData:
    """Simulated training patterns of one task: raw intensities on the full grid."""

    values: np.ndarray
    labels: np.ndarray
    seed: int

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != GRID_SIZE:
            raise ValueError(f"simulated values must be [M, {GRID_SIZE}], got {self.values.shape}")
        if self.labels.shape != (self.values.shape[0],):
            raise ValueError("simulated labels and values differ in length")


SimulatedSource = Callable[[str, int], SimulatedData]
"""``(task, seed) -> SimulatedData``."""


def simulated_source(n_per_class: int | Mapping[str, int]) -> SimulatedSource:
    """A :data:`SimulatedSource` over :func:`training.simulate.simulate_training_set`, memoised."""
    cache: dict[tuple[str, int], SimulatedData] = {}

    def source(task: str, seed: int) -> SimulatedData:
        if (task, seed) not in cache:
            from training.simulate import simulate_training_set  # heavy (pymatgen): only when used

            values, labels, _ = simulate_training_set(n_per_class, seed=seed, task=task)
            cache[(task, seed)] = SimulatedData(
                np.asarray(values, dtype=np.float32), np.asarray(labels, dtype=np.int64), seed
            )
        return cache[(task, seed)]

    return source


def build_training_set(
    task: str,
    simulated: SimulatedData | None,
    measured: MeasuredSet | None,
    measured_rows: np.ndarray | None,
    simulated_rows: np.ndarray | None = None,
) -> TrainingSet:
    """Stack the chosen simulated rows and measured rows into one :class:`TrainingSet`."""
    classes = task_classes(task)
    values, masks, labels, sources = [], [], [], []
    if simulated is not None:
        rows = np.arange(simulated.labels.size) if simulated_rows is None else np.asarray(simulated_rows)
        values.append(simulated.values[rows])
        masks.append(np.ones((rows.size, GRID_SIZE), dtype=bool))
        labels.append(simulated.labels[rows])
        sources += [f"{SIMULATED_PREFIX}{simulated.seed}:{i}" for i in rows]
    if measured is not None and measured_rows is not None and len(measured_rows):
        if measured.task != task:
            raise ValueError(f"measured set is for {measured.task!r}, not {task!r}")
        rows = np.asarray(measured_rows)
        values.append(measured.values[rows])
        masks.append(measured.masks[rows])
        labels.append(measured.labels[rows])
        sources += [f"{MEASURED_PREFIX}{measured.names[i]}" for i in rows]
    if not sources:
        raise ValueError("empty training set")
    return TrainingSet(task, classes, np.concatenate(values).astype(np.float32),
                       np.concatenate(masks), np.concatenate(labels).astype(np.int64), tuple(sources))


def _row_digest(values: np.ndarray, mask: np.ndarray) -> str:
    return hashlib.sha1(np.where(mask, values, 0).astype(np.float32).tobytes() + mask.tobytes()).hexdigest()


def check_no_leak(
    training: TrainingSet, measured: MeasuredSet, test_rows: np.ndarray, grouped: bool
) -> None:
    """Raise :class:`LeakageError` if the training set holds a test pattern.

    Checked by name (the ``sources``) and by content (the gridded intensities and mask of
    every training row against those of every test pattern), and, when ``grouped``, also every
    near-duplicate partner of a test pattern by name.
    """
    test_rows = np.asarray(test_rows)
    forbidden = {measured.names[i] for i in test_rows}
    if grouped:
        test_groups = set(measured.groups[test_rows].tolist())
        forbidden |= {n for n, g in zip(measured.names, measured.groups) if g in test_groups}
    leaked = sorted(forbidden & training.measured_names())
    if leaked:
        raise LeakageError(f"{len(leaked)} test pattern(s) or partner(s) in training: {leaked[:5]}")
    test_digests = {_row_digest(measured.values[i], measured.masks[i]): measured.names[i] for i in test_rows}
    for row in range(len(training)):
        digest = _row_digest(training.values[row], training.masks[row])
        if digest in test_digests:
            raise LeakageError(
                f"training row {training.sources[row]!r} has the content of test pattern "
                f"{test_digests[digest]!r}"
            )
