"""Run a classifier over a gridded evaluation set: predicted class names and top-class confidence.

Shared by the unseen-materials and out-of-distribution scores so both read a classifier the same
way: raw counts on :data:`models.grid.GRID` -> :func:`models.preprocess.preprocess` ->
``classifier.predict_proba`` (the :class:`models.classifier.Classifier` API; any object with
``predict_proba(features[N, 2, 1376]) -> [N, K]`` and a ``classes`` tuple works).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.preprocess import preprocess

__all__ = ["SetPredictions", "predict_set"]

_BATCH = 256  # patterns per preprocessing call: bounds memory, no effect on results


@dataclass(frozen=True)
class SetPredictions:
    """Predictions for N patterns.

    Attributes
    ----------
    probabilities : numpy.ndarray
        float64 [N, K], rows sum to 1, columns in ``classes`` order.
    classes : tuple of str
        The classifier's class names.
    predicted : numpy.ndarray
        object [N], predicted class names.
    confidence : numpy.ndarray
        float64 [N], the top-class probability.
    """

    probabilities: np.ndarray
    classes: tuple[str, ...]
    predicted: np.ndarray
    confidence: np.ndarray


def predict_set(classifier: Any, values: np.ndarray, masks: np.ndarray) -> SetPredictions:
    """Classify gridded raw patterns.

    Parameters
    ----------
    classifier : models.classifier.Classifier or compatible
        Needs ``classes`` and ``predict_proba(features)``.
    values : numpy.ndarray
        [N, 1376] raw intensities (counts) on the model grid.
    masks : numpy.ndarray
        bool [N, 1376], True where measured.

    Returns
    -------
    SetPredictions

    Raises
    ------
    ValueError
        If the shapes disagree, a row has no measured point, or the classifier returns a wrong shape.
    """
    values = np.asarray(values, dtype=np.float32)
    masks = np.asarray(masks, dtype=bool)
    if values.ndim != 2 or values.shape != masks.shape:
        raise ValueError(f"values {values.shape} and masks {masks.shape} must both be [N, 1376]")
    if values.shape[0] and not masks.any(axis=1).all():
        raise ValueError("every pattern needs at least one measured grid point")
    classes = tuple(classifier.classes)
    chunks = [
        np.asarray(classifier.predict_proba(preprocess(values[i : i + _BATCH], masks[i : i + _BATCH])), dtype=np.float64)
        for i in range(0, values.shape[0], _BATCH)
    ]
    probabilities = np.concatenate(chunks) if chunks else np.zeros((0, len(classes)))
    if probabilities.shape != (values.shape[0], len(classes)):
        raise ValueError(f"classifier returned probabilities of shape {probabilities.shape}, expected "
                         f"{(values.shape[0], len(classes))}")
    best = probabilities.argmax(axis=1) if probabilities.size else np.zeros(0, dtype=int)
    predicted = np.asarray([classes[i] for i in best], dtype=object)
    return SetPredictions(probabilities, classes, predicted, probabilities.max(axis=1) if probabilities.size else np.zeros(0))
