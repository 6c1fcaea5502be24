"""Evaluation protocols: the paper's three cases, the grouped case, step-size and partial scans.

Protocols (Oviedo et al. 2019, npj Comput. Mater. 5, 60, and an honest variant):

* **Case 1** -- simulated patterns only, stratified K-fold over them.
* **Case 2** -- train on simulated patterns, test on every measured pattern (repeated with
  different simulation and training seeds).
* **Case 3** -- train on simulated patterns plus the measured training fold, test on the
  measured test fold; stratified K-fold repeated with different seeds.
* **Grouped Case 3** -- as Case 3, but near-duplicate groups (:mod:`training.near_duplicates`) never
  straddle train and test.

The harness takes any estimator through :class:`ModelSpec`: a factory ``(task, seed) ->
FoldModel`` whose ``fit`` receives a :class:`TrainingSet` (raw gridded intensities, masks,
labels and the *source name* of every row) and whose ``predict_proba`` takes preprocessed
``[N, 2, 1376]`` inputs. Augmentation happens inside ``fit``, on the training set only, so no
augmented copy of a test pattern can reach training; :func:`check_no_leak` verifies before every
fit that no test pattern (by name and by content) and, for grouped folds, no near-duplicate
partner of one is in the training set, and raises :class:`LeakageError` otherwise.

Calibration: the temperature applied to fold ``k``'s test predictions is fitted on the test
predictions of the *other* folds of the same repeat (cross-fitting). Those come from models that
never saw them, and fold ``k``'s own test patterns play no part in fitting it, so the ECE and the
selective accuracy reported on the pooled outer test folds are on held-out data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from models import calibrate
from evaluation.folds import Fold, stratified_folds
from models.grid import GRID_SIZE
from training.measured_set import MeasuredSet, task_classes
from evaluation.metrics import (
    classification_report,
    expected_calibration_error,
    selective_accuracy,
)
from evaluation.nearest_neighbour import NearestNeighbourClassifier
from models.preprocess import preprocess

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


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(log p / T)`` (Guo et al. 2017).

    ``log p`` stands for the logits (equal up to a per-row constant, which softmax ignores);
    the fit itself is :func:`models.calibrate.fit_temperature`, the one the classifier uses.
    Returns 1.0 when there is nothing to fit.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return 1.0
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, None))
    return float(calibrate.fit_temperature(logits, labels))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row-wise."""
    z = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, None)) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class ModelPredictions:
    """Out-of-fold predictions of one model in one protocol.

    Attributes
    ----------
    probabilities : np.ndarray
        ``[R, N, C]`` raw ``predict_proba`` of the model that had each sample in its test fold
        (NaN for a sample never tested in a repeat, which does not happen with K-fold).
    calibrated : np.ndarray or None
        Same, after the cross-fitted temperature (None where no other fold exists to fit it).
    variants : dict of str to np.ndarray
        Step-size / partial-scan variants, each ``[R, N, C]``.
    temperatures : np.ndarray
        ``[R, K]`` fitted temperature of each fold (NaN where not fitted).
    fit_seconds : list of float
        Wall time of each ``fit``.
    cams : dict of int to np.ndarray
        Class index -> sum of the CAMs (for the true class) of its test patterns, first repeat.
    cam_counts : dict of int to int
        Patterns summed into ``cams``.
    """

    probabilities: np.ndarray
    calibrated: np.ndarray | None
    variants: dict[str, np.ndarray]
    temperatures: np.ndarray
    fit_seconds: list[float] = field(default_factory=list)
    cams: dict[int, np.ndarray] = field(default_factory=dict)
    cam_counts: dict[int, int] = field(default_factory=dict)


@dataclass
class ProtocolResult:
    """Everything one protocol run produced, per model."""

    protocol: str
    task: str
    classes: tuple[str, ...]
    labels: np.ndarray
    names: list[str]
    folds: list[Fold]
    models: dict[str, ModelPredictions]
    wall_seconds: float
    settings: dict[str, Any]


def _cam_sum(model: FoldModel, features: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Sum of the CAMs of the true class per class, when the model can explain itself."""
    cam = getattr(model, "cam", None)
    if cam is None:
        return {}
    maps = np.asarray(cam(features, labels), dtype=np.float64)
    if maps.shape != (labels.size, GRID_SIZE):
        raise ValueError(f"model.cam returned shape {maps.shape}, expected [{labels.size}, {GRID_SIZE}]")
    return {int(c): maps[labels == c].sum(axis=0) for c in np.unique(labels)}


def run_folds(
    protocol: str,
    task: str,
    specs: Sequence[ModelSpec],
    folds: Sequence[Fold],
    test_features: np.ndarray,
    test_labels: np.ndarray,
    names: Sequence[str],
    training_for: Callable[[Fold], TrainingSet],
    *,
    leak_check: Callable[[TrainingSet, Fold], None] | None = None,
    variants: Mapping[str, np.ndarray] | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProtocolResult:
    """Train every model on every fold and collect out-of-fold predictions.

    Parameters
    ----------
    protocol : str
        Name recorded in the result.
    task : str
        "space_group" or "dimensionality".
    specs : sequence of ModelSpec
        Models to compare; each gets a fresh instance per fold from its factory, seeded with
        the fold's repeat seed * 1000 + fold index.
    folds : sequence of Fold
        Indices into the test population (``test_features``).
    test_features, test_labels : np.ndarray
        ``[N, 2, 1376]`` preprocessed inputs and ``[N]`` classes of the population tested.
    names : sequence of str
        Names of that population (for the report).
    training_for : callable
        Builds the training set of a fold.
    leak_check : callable, optional
        Called with each training set and its fold before any model is fitted.
    variants : mapping, optional
        Extra inputs of the same population (``[N, 2, 1376]`` each) predicted by every model.
    progress : callable, optional
        Receives one line per fitted model.
    """
    start = time.perf_counter()
    classes = task_classes(task)
    n, c = test_labels.size, len(classes)
    repeats = sorted({f.repeat for f in folds})
    repeat_index = {r: i for i, r in enumerate(repeats)}
    n_folds = max(f.fold for f in folds) + 1
    variants = dict(variants or {})
    results = {
        spec.name: ModelPredictions(
            probabilities=np.full((len(repeats), n, c), np.nan),
            calibrated=None,
            variants={k: np.full((len(repeats), n, c), np.nan) for k in variants},
            temperatures=np.full((len(repeats), n_folds), np.nan),
        )
        for spec in specs
    }
    for fold in folds:
        training = training_for(fold)
        if leak_check is not None:
            leak_check(training, fold)
        r = repeat_index[fold.repeat]
        for spec in specs:
            model = spec.factory(task, fold.seed * 1000 + fold.fold)
            tic = time.perf_counter()
            model.fit(training)
            out = results[spec.name]
            out.fit_seconds.append(time.perf_counter() - tic)
            # one predict_proba call for the test fold and all its variants: fewer, larger batches
            inputs = np.concatenate([test_features[fold.test]] + [v[fold.test] for v in variants.values()])
            predicted = _checked_proba(model, inputs, c).reshape(1 + len(variants), fold.test.size, c)
            out.probabilities[r, fold.test] = predicted[0]
            for key, block in zip(variants, predicted[1:]):
                out.variants[key][r, fold.test] = block
            if r == 0:
                for cls, total in _cam_sum(model, test_features[fold.test], test_labels[fold.test]).items():
                    out.cams[cls] = out.cams.get(cls, 0.0) + total
                    out.cam_counts[cls] = out.cam_counts.get(cls, 0) + int(np.sum(test_labels[fold.test] == cls))
            if progress is not None:
                accuracy = float(np.mean(out.probabilities[r, fold.test].argmax(1) == test_labels[fold.test]))
                progress(f"{protocol} {task} repeat {fold.repeat} fold {fold.fold} {spec.name}: "
                         f"fit {out.fit_seconds[-1]:.1f} s, fold accuracy {accuracy:.3f}")
    for out in results.values():
        out.calibrated = _cross_fitted_calibration(out, folds, repeat_index, test_labels)
    return ProtocolResult(protocol, task, classes, np.asarray(test_labels), list(names), list(folds),
                          results, time.perf_counter() - start, dict(settings or {}))


def _checked_proba(model: FoldModel, features: np.ndarray, n_classes: int) -> np.ndarray:
    probabilities = np.asarray(model.predict_proba(features), dtype=np.float64)
    if probabilities.shape != (features.shape[0], n_classes):
        raise ValueError(
            f"predict_proba returned shape {probabilities.shape}, expected {(features.shape[0], n_classes)}"
        )
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("predict_proba returned non-finite probabilities")
    return probabilities


def _cross_fitted_calibration(
    out: ModelPredictions, folds: Sequence[Fold], repeat_index: Mapping[int, int], labels: np.ndarray
) -> np.ndarray | None:
    """Temperature-scale each fold's test predictions with T fitted on the other folds' ones."""
    calibrated = np.full_like(out.probabilities, np.nan)
    by_repeat: dict[int, list[Fold]] = {}
    for fold in folds:
        by_repeat.setdefault(repeat_index[fold.repeat], []).append(fold)
    for r, repeat_folds in by_repeat.items():
        if len(repeat_folds) < 2:
            return None  # nothing held out to fit on (Case 2)
        for fold in repeat_folds:
            others = np.concatenate([f.test for f in repeat_folds if f is not fold])
            temperature = fit_temperature(out.probabilities[r, others], labels[others])
            out.temperatures[r, fold.fold] = temperature
            calibrated[r, fold.test] = apply_temperature(out.probabilities[r, fold.test], temperature)
    return calibrated


# --- the protocols -------------------------------------------------------------------------


def _simulated_features(simulated: SimulatedData) -> np.ndarray:
    return preprocess(simulated.values, np.ones_like(simulated.values, dtype=bool))


def run_case1(
    task: str,
    specs: Sequence[ModelSpec],
    simulated: SimulatedData,
    *,
    n_splits: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> ProtocolResult:
    """Case 1: stratified K-fold over the simulated patterns alone (one repeat, as the paper)."""
    specs = [s for s in specs if not s.needs_measured]
    folds = stratified_folds(simulated.labels, n_splits, 1, seed)
    features = _simulated_features(simulated)

    def training_for(fold: Fold) -> TrainingSet:
        return build_training_set(task, simulated, None, None, simulated_rows=fold.train)

    names = [f"{SIMULATED_PREFIX}{simulated.seed}:{i}" for i in range(simulated.labels.size)]
    return run_folds("case1", task, specs, folds, features, simulated.labels, names, training_for,
                     settings={"n_splits": n_splits, "seed": seed, "n_simulated": int(simulated.labels.size)},
                     progress=progress)


def run_case2(
    task: str,
    specs: Sequence[ModelSpec],
    measured: MeasuredSet,
    source: SimulatedSource,
    *,
    n_repeats: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> ProtocolResult:
    """Case 2: train on simulated patterns only, test on every measured pattern.

    Repeat ``r`` draws its simulated set with seed ``seed + r`` and seeds the models likewise.
    No temperature is fitted (no held-out measured data exists in this protocol).
    """
    specs = [s for s in specs if not s.needs_measured]
    everything = np.arange(len(measured), dtype=np.int64)
    folds = [Fold(r, 0, seed + r, np.zeros(0, dtype=np.int64), everything) for r in range(n_repeats)]

    def training_for(fold: Fold) -> TrainingSet:
        return build_training_set(task, source(task, fold.seed), None, None)

    def leak_check(training: TrainingSet, fold: Fold) -> None:
        check_no_leak(training, measured, fold.test, grouped=True)

    return run_folds("case2", task, specs, folds, measured.features, measured.labels, measured.names,
                     training_for, leak_check=leak_check,
                     settings={"n_repeats": n_repeats, "seed": seed}, progress=progress)


def run_case3(
    task: str,
    specs: Sequence[ModelSpec],
    measured: MeasuredSet,
    source: SimulatedSource,
    *,
    grouped: bool,
    n_splits: int = 5,
    n_repeats: int = 5,
    seed: int = 0,
    simulated_seed: int | None = None,
    variants: Mapping[str, np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProtocolResult:
    """Case 3 (random folds) or grouped Case 3: simulated + measured training fold.

    Parameters
    ----------
    grouped : bool
        Keep near-duplicate groups on one side of every split.
    simulated_seed : int, optional
        Seed of the simulated set shared by all folds (default ``seed``). The simulated set
        holds no measured pattern, so sharing it across folds leaks nothing.
    variants : mapping, optional
        Coarsened / truncated inputs of the measured patterns (see
        :func:`evaluation.scan_variants.variant_features`), predicted by every fold model.
    """
    groups = measured.groups if grouped else None
    folds = stratified_folds(measured.labels, n_splits, n_repeats, seed, groups=groups)
    simulated = source(task, seed if simulated_seed is None else simulated_seed)

    def training_for(fold: Fold) -> TrainingSet:
        return build_training_set(task, simulated, measured, fold.train)

    def leak_check(training: TrainingSet, fold: Fold) -> None:
        check_no_leak(training, measured, fold.test, grouped=grouped)

    name = "case3_grouped" if grouped else "case3"
    return run_folds(name, task, specs, folds, measured.features, measured.labels, measured.names,
                     training_for, leak_check=leak_check, variants=variants,
                     settings={"n_splits": n_splits, "n_repeats": n_repeats, "seed": seed,
                               "grouped": grouped, "n_simulated": int(simulated.labels.size),
                               "n_groups": int(np.unique(measured.groups).size)},
                     progress=progress)


# --- summaries -----------------------------------------------------------------------------


def _nan_to_none(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def summarize_model(result: ProtocolResult, model: str) -> dict[str, Any]:
    """JSON-ready figures of one model in one protocol.

    Accuracy and F1 are computed per repeat over all of that repeat's out-of-fold predictions,
    then averaged (mean and population std over repeats). Per-class recall and the confusion
    matrix pool every repeat. ECE (15 bins) and selective accuracy pool every repeat: ``ece``
    on the model's own probabilities (ours calibrates inside training on held-out training
    patterns), ``ece_crossfit`` after a temperature fitted on the other outer folds.
    """
    out = result.models[model]
    labels = result.labels
    n_classes = len(result.classes)
    per_repeat = []
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    for r in range(out.probabilities.shape[0]):
        predicted = out.probabilities[r].argmax(axis=1)
        report = classification_report(labels, predicted, n_classes)
        per_repeat.append(report)
        confusion += report.confusion
    recall = classification_report(
        np.tile(labels, out.probabilities.shape[0]),
        out.probabilities.reshape(-1, n_classes).argmax(axis=1), n_classes,
    ).per_class_recall
    accuracies = np.array([p.accuracy for p in per_repeat])
    summary: dict[str, Any] = {
        "accuracy_mean": float(accuracies.mean()),
        "accuracy_std": float(accuracies.std()),
        "accuracy_per_repeat": accuracies.tolist(),
        "f1_micro": float(np.mean([p.f1_micro for p in per_repeat])),
        "f1_macro": float(np.mean([p.f1_macro for p in per_repeat])),
        "f1_macro_std": float(np.std([p.f1_macro for p in per_repeat])),
        "per_class_recall": {cls: _nan_to_none(v) for cls, v in zip(result.classes, recall)},
        "confusion_matrix": confusion.tolist(),
        "fit_seconds_mean": float(np.mean(out.fit_seconds)) if out.fit_seconds else None,
        "n_fits": len(out.fit_seconds),
    }
    pooled_labels = np.tile(labels, out.probabilities.shape[0])
    raw = out.probabilities.reshape(-1, n_classes)
    # the model's own probabilities: for our classifier, temperature-scaled inside training on
    # the ensemble members' held-out training patterns (an inner split of the training fold)
    summary["ece"] = expected_calibration_error(pooled_labels, raw)
    summary["ece_per_repeat"] = [expected_calibration_error(labels, out.probabilities[r])
                                 for r in range(out.probabilities.shape[0])]
    summary["selective_accuracy"] = selective_accuracy(pooled_labels, raw)
    if out.calibrated is not None:
        # a second, independent held-out calibration: T fitted on the other outer folds
        calibrated = out.calibrated.reshape(-1, n_classes)
        summary["ece_crossfit"] = expected_calibration_error(pooled_labels, calibrated)
        summary["selective_accuracy_crossfit"] = selective_accuracy(pooled_labels, calibrated)
        summary["crossfit_temperature_mean"] = float(np.nanmean(out.temperatures))
    if out.variants:
        summary["variants"] = {}
        for key, probabilities in out.variants.items():
            accs = np.array([np.mean(probabilities[r].argmax(1) == labels) for r in range(probabilities.shape[0])])
            summary["variants"][key] = {"accuracy_mean": float(accs.mean()), "accuracy_std": float(accs.std())}
    return summary


def summarize(result: ProtocolResult) -> dict[str, Any]:
    """JSON-ready summary of a protocol: settings, wall time and every model's figures."""
    return {
        "protocol": result.protocol,
        "task": result.task,
        "classes": list(result.classes),
        "n_test_patterns": int(result.labels.size),
        "settings": result.settings,
        "wall_seconds": result.wall_seconds,
        "models": {name: summarize_model(result, name) for name in result.models},
    }
