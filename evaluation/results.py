"""The out-of-fold predictions of a protocol run, and their JSON summary (what the benchmarks write)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluation.folds import Fold
from evaluation.metrics import classification_report, expected_calibration_error, selective_accuracy


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
    curve : dict of int to list of int
        Optimiser step -> [correct, tested] of the network at that step over every test fold
        (models with ``checkpoint_probabilities``: the learning curve).
    """

    probabilities: np.ndarray
    calibrated: np.ndarray | None
    variants: dict[str, np.ndarray]
    temperatures: np.ndarray
    fit_seconds: list[float] = field(default_factory=list)
    cams: dict[int, np.ndarray] = field(default_factory=dict)
    cam_counts: dict[int, int] = field(default_factory=dict)
    curve: dict[int, list[int]] = field(default_factory=dict)


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
    if out.curve:
        summary["learning_curve"] = [{"steps": step, "accuracy": correct / tested, "n": tested}
                                     for step, (correct, tested) in sorted(out.curve.items())]
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
