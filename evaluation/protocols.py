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

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from evaluation.folds import Fold, stratified_folds
from evaluation.nearest_neighbour import NearestNeighbourModel, nearest_neighbour_spec
from evaluation.results import ModelPredictions, ProtocolResult, summarize, summarize_model
from evaluation.training_sets import (
    MEASURED_PREFIX,
    SIMULATED_PREFIX,
    FoldModel,
    LeakageError,
    ModelSpec,
    SimulatedData,
    SimulatedSource,
    TrainingSet,
    build_training_set,
    check_no_leak,
    simulated_source,
)
from models import calibrate
from models.grid import GRID_SIZE
from models.preprocess import preprocess
from patterns.datasets import task_classes
from training.measured_set import MeasuredSet

__all__ = [  # the harness's whole surface, also what moved to training_sets / results / nearest_neighbour
    "MEASURED_PREFIX", "SIMULATED_PREFIX", "FoldModel", "LeakageError", "ModelPredictions", "ModelSpec",
    "NearestNeighbourModel", "ProtocolResult", "SimulatedData", "SimulatedSource", "TrainingSet",
    "apply_temperature", "build_training_set", "check_no_leak", "fit_probability_temperature",
    "nearest_neighbour_spec", "run_case1", "run_case2", "run_case3", "run_folds", "simulated_source",
    "summarize", "summarize_model",
]


def fit_probability_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
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


def _cam_sum(model: FoldModel, features: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Sum of the CAMs of the true class per class, when the model can explain itself."""
    cam = getattr(model, "cam", None)
    if cam is None:
        return {}
    maps = np.asarray(cam(features, labels), dtype=np.float64)
    if maps.shape != (labels.size, GRID_SIZE):
        raise ValueError(f"model.cam returned shape {maps.shape}, expected [{labels.size}, {GRID_SIZE}]")
    return {int(c): maps[labels == c].sum(axis=0) for c in np.unique(labels)}


def _empty_predictions(n_repeats: int, n: int, c: int, n_folds: int, variants: Mapping[str, np.ndarray]) -> ModelPredictions:
    """NaN-filled out-of-fold arrays of one model: [repeats, N, classes] per input, [repeats, folds] temperatures."""
    return ModelPredictions(
        probabilities=np.full((n_repeats, n, c), np.nan),
        calibrated=None,
        variants={k: np.full((n_repeats, n, c), np.nan) for k in variants},
        temperatures=np.full((n_repeats, n_folds), np.nan),
    )


def _add_curve(out: ModelPredictions, model: FoldModel, features: np.ndarray, labels: np.ndarray) -> None:
    """Add a test fold's correct/tested counts at each training checkpoint the model kept."""
    curve = getattr(model, "checkpoint_probabilities", None)
    if curve is None:
        return
    for step, probabilities in curve(features).items():
        counts = out.curve.setdefault(int(step), [0, 0])
        counts[0] += int(np.sum(probabilities.argmax(1) == labels))
        counts[1] += int(labels.size)


def _add_class_cams(out: ModelPredictions, model: FoldModel, features: np.ndarray, labels: np.ndarray) -> None:
    """Add a test fold's per-class CAM sums and counts (first repeat only: the class-average CAM)."""
    for cls, total in _cam_sum(model, features, labels).items():
        out.cams[cls] = out.cams.get(cls, 0.0) + total
        out.cam_counts[cls] = out.cam_counts.get(cls, 0) + int(np.sum(labels == cls))


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
    results = {spec.name: _empty_predictions(len(repeats), n, c, n_folds, variants) for spec in specs}
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
                _add_class_cams(out, model, test_features[fold.test], test_labels[fold.test])
            _add_curve(out, model, test_features[fold.test], test_labels[fold.test])
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
            temperature = fit_probability_temperature(out.probabilities[r, others], labels[others])
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
