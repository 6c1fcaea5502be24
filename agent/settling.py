"""When the agent may stop: the one knob (``risk``) and the settling rule, pure functions.

**The knob.** ``risk`` is the calibrated probability of a wrong answer the scientist accepts
when the scan stops early: ``risk=0.02`` means "stop only when the model's calibrated probability
of being wrong is below 2 %". It maps to the internal threshold ``confidence = 1 - risk`` (the
calibrated probability the current label needs, :func:`confidence_for_risk`). The other
settling thresholds (``min_fraction``, ``stable_span``) do not move with it: they guard against
stopping on too little evidence at any risk, and the peak and CAM rules that choose where to
measure never read it, so the points measured before a stop are the same at every ``risk`` (one
full-path scan gives the stop of every setting: :func:`first_settled`). An explicit
``confidence`` may replace the knob (`agent.policy.PolicyConfig`).

**Settling is earned.** A class is settled, and the scan stops, only when all of these hold
(:func:`why_not_settled` returns the first that fails, in this order, as the reason recorded in
the decision stream):

1. the frontier has passed ``min_fraction`` of the range;
2. :func:`models.basis.assess_basis` gives the partial scan a basis for an answer (no refusal:
   enough points, a signal, at least 20 % of the model's range covered);
3. the prediction is not flagged out of distribution
   (:attr:`models.prediction.Prediction.out_of_distribution`): a pattern the model does not know
   is scanned to the end, never stopped on a guess;
4. the calibrated confidence is at least ``1 - risk``;
5. every prediction over the last ``stable_span`` degrees of frontier travel gave the same label
   (and the predictions reach that far back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.basis import assess_basis

DEFAULT_RISK = 0.02
"""Default accepted probability of a wrong early answer (2 %)."""


def confidence_for_risk(risk: float) -> float:
    """The calibrated confidence a label needs to settle at accepted probability of error `risk`.

    Parameters
    ----------
    risk : float
        Accepted probability of a wrong answer, 0 <= risk < 1 (0: settle only on certainty,
        i.e. in practice scan to the end).

    Returns
    -------
    float
        ``1 - risk``.

    Raises
    ------
    ValueError
        If `risk` is outside [0, 1).
    """
    if not 0 <= risk < 1:
        raise ValueError(f"risk must be a probability in [0, 1), got {risk}")
    return 1.0 - float(risk)


@dataclass(frozen=True)
class PredictionSummary:
    """One earlier prediction (the policy's only memory).

    Parameters
    ----------
    label : str
        Predicted class.
    confidence : float
        Its calibrated probability, 0-1.
    frontier : float
        The scan's frontier when it was made, degrees.
    """

    label: str
    confidence: float
    frontier: float


@dataclass(frozen=True)
class SettlingEvidence:
    """What the settling rule reads at one decision.

    Parameters
    ----------
    frontier : float
        The furthest position measured, degrees.
    fraction : float
        Fraction of the scan range the frontier has passed, 0-1.
    basis_refusal : str or None
        :attr:`models.basis.Basis.refusal` of the partial scan (None: there is a basis).
    label : str
        Predicted class.
    confidence : float
        Its calibrated probability, 0-1.
    out_of_distribution : bool
        The model's "I don't know" flag.
    """

    frontier: float
    fraction: float
    basis_refusal: str | None
    label: str
    confidence: float
    out_of_distribution: bool


def settling_evidence(two_theta: np.ndarray, counts: np.ndarray, prediction, start: float, stop: float) -> SettlingEvidence:
    """The evidence of a partial scan and its prediction (the policy and the benchmark both use this).

    Parameters
    ----------
    two_theta, counts : np.ndarray
        float[N] measured angles (degrees, sorted) and counts, N >= 1.
    prediction : Prediction-like
        ``label``, ``confidence``, ``out_of_distribution``.
    start, stop : float
        The scan range, degrees.
    """
    frontier = float(two_theta[-1])
    fraction = min(max((frontier - start) / (stop - start), 0.0), 1.0)
    return SettlingEvidence(
        frontier=frontier, fraction=float(fraction), basis_refusal=assess_basis(two_theta, counts).refusal,
        label=str(prediction.label), confidence=float(prediction.confidence),
        out_of_distribution=bool(getattr(prediction, "out_of_distribution", False)),
    )


def why_not_settled(evidence: SettlingEvidence, history: Sequence[PredictionSummary], *, confidence: float,
                    min_fraction: float, stable_span: float) -> str | None:
    """None when the class is settled, else the first rule of the module docstring that fails.

    Parameters
    ----------
    evidence : SettlingEvidence
        The current decision's evidence.
    history : sequence of PredictionSummary
        Earlier predictions of the run, oldest first (the current one not included).
    confidence : float
        Calibrated probability the label needs, 0-1 (:func:`confidence_for_risk` of the knob).
    min_fraction : float
        Fraction of the range the frontier must have passed, 0-1.
    stable_span : float
        Degrees of frontier travel over which every prediction must agree.
    """
    if evidence.fraction < min_fraction:
        return f"only {evidence.fraction:.0%} of the range measured (min_fraction {min_fraction:.0%})"
    if evidence.basis_refusal is not None:
        return f"no basis for an answer ({evidence.basis_refusal.split(':')[0]})"
    if evidence.out_of_distribution:
        return "out of distribution: the model does not know this pattern"
    if evidence.confidence < confidence:
        return f"P(wrong) {1 - evidence.confidence:.3f} above risk {1 - confidence:.3g}"
    since = evidence.frontier - stable_span
    if not history or history[0].frontier > since + 1e-9:
        return f"predictions do not yet span {stable_span:g} deg"
    for earlier in reversed(history):
        if earlier.frontier < since - 1e-9:
            break
        if earlier.label != evidence.label:
            return f"label changed within the last {stable_span:g} deg ({earlier.label} -> {evidence.label})"
    return None


def first_settled(trail: Sequence[SettlingEvidence], *, confidence: float, min_fraction: float,
                  stable_span: float) -> int | None:
    """Index of the first decision of a full-path scan at which the class settles at `risk` (None: never).

    Because the rules that choose positions never read ``risk``, a scan run with
    ``early_stop=False`` passes through every decision a scan with early stopping would make, in
    the same order; the first settled one is where that scan stops.

    Parameters
    ----------
    trail : sequence of SettlingEvidence
        The evidence of every decision that had a prediction, in order.
    confidence, min_fraction, stable_span
        As for :func:`why_not_settled`.
    """
    history: list[PredictionSummary] = []
    for index, evidence in enumerate(trail):
        if why_not_settled(evidence, history, confidence=confidence, min_fraction=min_fraction, stable_span=stable_span) is None:
            return index
        history.append(PredictionSummary(evidence.label, evidence.confidence, evidence.frontier))
    return None
