"""Temperature scaling (Guo et al. 2017): one scalar that makes held-out probabilities honest.

The ensemble's averaged logits are divided by a temperature T > 0 fitted to minimise the negative
log-likelihood of held-out labels. T > 1 softens over-confident predictions; the ranking of the
classes, hence the accuracy, is unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

MIN_TEMPERATURE: float = 0.05
MAX_TEMPERATURE: float = 20.0


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of ``labels`` under softmax(logits / temperature)."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(labels)), np.asarray(labels)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the NLL of held-out ``labels``.

    Parameters
    ----------
    logits : np.ndarray
        float [N, n_classes], held-out (never trained on) logits.
    labels : np.ndarray
        int [N] true class indices.

    Returns
    -------
    float
        The fitted temperature, within [MIN_TEMPERATURE, MAX_TEMPERATURE]; 1.0 when N == 0.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits [N, K] and labels [N] required, got {logits.shape} and {labels.shape}")
    if logits.shape[0] == 0:
        return 1.0
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError("a label is outside the logits' classes")
    result = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))),
        bounds=(np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)),
        method="bounded",
    )
    return float(np.exp(result.x))
