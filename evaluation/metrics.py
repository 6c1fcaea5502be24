"""Classification metrics for the evaluation protocols: accuracy, F1, recall, calibration.

Every function takes integer labels ``y_true`` (indices into the task's classes) and either
integer predictions or a probability matrix ``[N, n_classes]``; ``n_classes`` is passed
explicitly so that a class absent from a test fold still gets its row in the confusion matrix.

Calibration follows Guo et al. 2017 (On Calibration of Modern Neural Networks): the expected
calibration error (ECE) bins the top-1 confidence into equal-width bins on [0, 1] and averages
``|accuracy - confidence|`` weighted by the fraction of samples in each bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15
"""Number of equal-width confidence bins of the expected calibration error (as in the issue)."""

SELECTIVE_COVERAGES = (1.0, 0.9, 0.8, 0.5)
"""Fractions of the test set kept (most confident first) for selective accuracy."""


def _as_labels(y: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    return labels.astype(np.int64)


def _check_probabilities(probabilities: np.ndarray, n_samples: int) -> np.ndarray:
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != n_samples:
        raise ValueError(
            f"probabilities must have shape [{n_samples}, n_classes], got {probs.shape}"
        )
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("probabilities must be finite and non-negative")
    return probs


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of samples whose predicted class equals the true class.

    Returns NaN for an empty set (no samples, no accuracy).
    """
    true = _as_labels(y_true, "y_true")
    pred = _as_labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true {true.shape} and y_pred {pred.shape} differ in length")
    return float(np.mean(true == pred)) if true.size else float("nan")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as class ``j``.

    Returns
    -------
    np.ndarray
        int64 array of shape ``[n_classes, n_classes]``.
    """
    true = _as_labels(y_true, "y_true")
    pred = _as_labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true {true.shape} and y_pred {pred.shape} differ in length")
    for name, labels in (("y_true", true), ("y_pred", pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"{name} holds a class index outside [0, {n_classes})")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def per_class_recall(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix; NaN for a class with no true samples."""
    support = matrix.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def f1_scores(matrix: np.ndarray) -> tuple[float, float]:
    """Micro- and macro-averaged F1 from a confusion matrix.

    Macro F1 averages over the classes present in the truth or the predictions (the convention
    of scikit-learn with ``labels`` left at the observed ones), so a class absent from both a
    test fold and its predictions does not count as a zero.

    Returns
    -------
    (f1_micro, f1_macro) : tuple of float
        For single-label classification micro F1 equals accuracy.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum()
    if total == 0:
        return float("nan"), float("nan")
    true_pos = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    present = (support > 0) | (predicted > 0)
    denominator = support + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2.0 * true_pos / denominator, 0.0)
    f1_micro = float(true_pos.sum() / total)
    f1_macro = float(f1[present].mean())
    return f1_micro, f1_macro


@dataclass(frozen=True)
class Reliability:
    """Per-bin calibration statistics (for the reliability diagram and the ECE).

    Attributes
    ----------
    bin_edges : np.ndarray
        ``[n_bins + 1]`` confidence edges on [0, 1].
    counts : np.ndarray
        Samples per bin.
    accuracy : np.ndarray
        Fraction correct per bin (NaN where empty).
    confidence : np.ndarray
        Mean top-1 confidence per bin (NaN where empty).
    """

    bin_edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of weight * |accuracy - confidence|."""
        total = self.counts.sum()
        if total == 0:
            return float("nan")
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(self.counts[filled] / total * gaps))


def reliability(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = ECE_BINS
) -> Reliability:
    """Bin the top-1 confidence into ``n_bins`` equal-width bins (right-closed, as Guo et al.)."""
    true = _as_labels(y_true, "y_true")
    probs = _check_probabilities(probabilities, true.size)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    confidence = probs.max(axis=1) if true.size else np.zeros(0)
    correct = (probs.argmax(axis=1) == true) if true.size else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds confidences in (edges[b], edges[b+1]]; a confidence of exactly 0 goes to bin 0
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_accuracy = np.bincount(index, weights=correct.astype(float), minlength=n_bins) / counts
        bin_confidence = np.bincount(index, weights=confidence, minlength=n_bins) / counts
    return Reliability(edges, counts, bin_accuracy, bin_confidence)


def expected_calibration_error(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """Expected calibration error of the top-1 confidence (fraction, 0 = perfectly calibrated)."""
    return reliability(y_true, probabilities, n_bins).ece


def selective_accuracy(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    coverages: tuple[float, ...] = SELECTIVE_COVERAGES,
) -> dict[str, float]:
    """Accuracy on the most confident fraction of samples.

    For each coverage ``c`` the ``ceil(c * N)`` samples with the highest top-1 probability are
    kept (ties broken by a stable sort, so the result is deterministic) and their accuracy is
    returned under the key ``f"{c:.2f}"``.
    """
    true = _as_labels(y_true, "y_true")
    probs = _check_probabilities(probabilities, true.size)
    if true.size == 0:
        return {f"{c:.2f}": float("nan") for c in coverages}
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == true
    order = np.argsort(-confidence, kind="stable")
    result: dict[str, float] = {}
    for coverage in coverages:
        if not 0.0 < coverage <= 1.0:
            raise ValueError(f"coverage must be in (0, 1], got {coverage}")
        kept = max(1, int(np.ceil(coverage * true.size - 1e-9)))
        result[f"{coverage:.2f}"] = float(correct[order[:kept]].mean())
    return result


@dataclass(frozen=True)
class ClassificationReport:
    """The standard figures of one set of predictions.

    Attributes
    ----------
    accuracy, f1_micro, f1_macro : float
        Fractions.
    per_class_recall : np.ndarray
        ``[n_classes]``; NaN for a class with no true samples.
    confusion : np.ndarray
        ``[n_classes, n_classes]`` counts, rows true, columns predicted.
    """

    accuracy: float
    f1_micro: float
    f1_macro: float
    per_class_recall: np.ndarray
    confusion: np.ndarray


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> ClassificationReport:
    """Accuracy, F1 micro/macro, per-class recall and confusion matrix in one pass."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    f1_micro, f1_macro = f1_scores(matrix)
    return ClassificationReport(
        accuracy=accuracy(y_true, y_pred),
        f1_micro=f1_micro,
        f1_macro=f1_macro,
        per_class_recall=per_class_recall(matrix),
        confusion=matrix,
    )
