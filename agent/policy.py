"""The decision: a pure function of the partial scan, the latest prediction and the configuration.

`next_action` never touches a device, a socket or a model; the same inputs give the same `Decision`, so
every rule below is tested without a RunEngine (tests/test_agent_policy.py).

The rules, in the order they are checked after each point:

1. **Settled -> stop.** With ``early_stop`` on, the scan stops once the class is settled
   (`agent.settling`): past ``min_fraction`` of the range, a basis for an answer
   (`models.basis`), not out of distribution, calibrated probability of being wrong at most
   ``risk`` (the one knob; ``confidence = 1 - risk``), and the same label over the last
   ``stable_span`` degrees. A pattern the model does not know therefore runs to the end of the
   range, at the coarse step with fine fills over peaks.
2. **Peak crossed at the coarse step -> back-step.** If the last interval behind the frontier was
   crossed at the coarse step and either of its end points stands above the local background
   (``peak_sigma`` Poisson standard deviations and ``peak_relative`` of the background), the agent
   goes back and measures that interval at the fine step. Positions already measured are never
   proposed again.
3. **Weak feature where the evidence lies, crossed at the coarse step -> back-step.** A coarse
   interval within ``backstep_window`` degrees behind the frontier that ends on a point standing
   above background by the weaker bar of ``cam_peak_sigma``, and whose mean *evidence map* is at
   least ``cam_fraction`` of the map's maximum over the measured range, is filled at the fine step.
   The evidence map is where the class activation maps of the two most probable classes disagree
   (``|CAM1 - CAM2|``, when the prediction carries the second class's map, ``second_cam``:
   `agent.top_two`), else the top class's CAM: the model says the evidence that separates its two
   candidates lies there, so a feature too weak for rule 2 is worth measuring well there (and
   nowhere else -- a CAM alone, without any signal, would send the scan back over flat background).
4. **Inside a peak -> fine step; else -> coarse step,** counted for ``background_dwell`` of the
   run's dwell (`Decision.dwell_fraction`): a step over background only has to find the next
   peak's flank, and every peak and fill is counted for the full dwell. The peak tests read counts
   rescaled to the run's dwell (`above_background`).
5. **End of range -> stop**, with the reason the class never settled.

Rules 2-5 never read ``risk``: the points measured before a stop are the same at every setting. Every
STOP says why in its ``reason`` (the run's decision stream). Steps are clipped to the range.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from agent.cam_summary import cam_on_interval, evidence_map, summarise_cam
from agent.decision import ActionKind, Decision
from agent.partial_scan import PartialScan
from agent.policy_config import DEFAULT_BACKGROUND_DWELL, DEFAULT_COARSE_STEP, PolicyConfig
from agent.settling import PredictionSummary, settling_evidence, why_not_settled

__all__ = ["DEFAULT_BACKGROUND_DWELL", "DEFAULT_COARSE_STEP", "PolicyConfig", "PredictionSummary", "above_background", "fallback_decision", "is_settled", "next_action", "unsettled_reason"]


class PredictionLike(Protocol):
    """What the policy reads from a model prediction (`models.classifier.Prediction`)."""

    probabilities: np.ndarray
    label: str
    confidence: float
    cam: np.ndarray
    coverage: float
    classes: Sequence[str]
    out_of_distribution: bool


def unsettled_reason(scan: PartialScan, prediction: PredictionLike | None, history: Sequence[PredictionSummary],
                     config: PolicyConfig) -> str | None:
    """None when the class is settled (rule 1), else why not (`agent.settling.why_not_settled`).

    Parameters
    ----------
    scan : PartialScan
        The points measured so far.
    prediction : PredictionLike or None
        The prediction on `scan` (None when the model was not run).
    history : sequence of PredictionSummary
        Earlier predictions of this run, oldest first (the current one not included).
    config : PolicyConfig
        Thresholds.
    """
    if prediction is None or scan.n_points == 0:
        return "no prediction yet"
    positions, counts = scan.sorted()
    evidence = settling_evidence(positions, counts, prediction, config.start, config.stop)
    return why_not_settled(evidence, history, confidence=config.confidence, min_fraction=config.min_fraction,
                           stable_span=config.stable_span)


def is_settled(scan: PartialScan, prediction: PredictionLike | None, history: Sequence[PredictionSummary],
               config: PolicyConfig) -> bool:
    """Whether the class is settled (rule 1 of the module docstring; arguments as `unsettled_reason`)."""
    return unsettled_reason(scan, prediction, history, config) is None


def above_background(positions: np.ndarray, counts: np.ndarray, index: int, config: PolicyConfig,
                     sigma: float | None = None, relative: float | None = None) -> bool:
    """Whether the point at `index` of a sorted scan stands above its local background.

    The background is the median of the points in the ``background_window`` degrees before it (the
    point itself excluded), so a rising flank does not raise its own reference. The point must
    exceed it by `sigma` Poisson standard deviations of a full-dwell count and by `relative` of it
    (defaults: the config's ``peak_sigma`` and ``peak_relative``). Counts are on the run's dwell
    (`patterns.exposure`), so the bar is on the count rate: a point counted for a fraction of the
    dwell must show the same rescaled excess as a full count, so a peak the full-dwell scan would
    refine is still refined. Its noisier count clears the bar by chance more often, which costs
    one fill at the fine step; a bar scaled to its own noise missed weak peaks instead (measured:
    `bench.loop_tuning`, README).
    """
    sigma = config.peak_sigma if sigma is None else sigma
    relative = config.peak_relative if relative is None else relative
    x = positions[index]
    lo = int(np.searchsorted(positions, x - config.background_window))
    window = counts[lo:index]
    if window.size < 3:
        return False
    background = float(statistics.median(window.tolist()))  # the same median, ~10x faster than np.median on a few dozen points
    excess = counts[index] - background
    return bool(excess > sigma * math.sqrt(max(background, 1.0)) and excess > relative * background)


def _fill_positions(lo: float, hi: float, scan: PartialScan, config: PolicyConfig) -> tuple[float, ...]:
    """Fine-step positions strictly inside (lo, hi) that were not measured yet, ascending."""
    tolerance = config.position_tolerance
    n = int(math.floor((hi - lo) / config.fine_step + 1e-9))
    candidates = (lo + config.fine_step * k for k in range(1, n + 1))
    return tuple(
        round(x, 6) for x in candidates if x < hi - tolerance and not scan.has_point_near(x, tolerance)
    )


def _evidence(scan: PartialScan, prediction: PredictionLike | None) -> dict[str, Any]:
    """The fields of a `Decision` that say what it was based on."""
    evidence: dict[str, Any] = {"n_points": scan.n_points, "position": scan.last_position}
    if prediction is not None:
        evidence.update(
            label=str(prediction.label),
            confidence=float(prediction.confidence),
            probabilities=tuple(float(p) for p in np.asarray(prediction.probabilities).ravel()),
            classes=tuple(str(c) for c in prediction.classes),
            coverage=float(prediction.coverage),
        )
    return evidence


def _cam_backstep(scan: PartialScan, prediction: PredictionLike, grid: np.ndarray, front: int,
                  config: PolicyConfig) -> tuple[float, ...]:
    """Rule 3's fill: the newest coarse interval within ``backstep_window`` that ends on a weak
    feature and lies where the evidence map is high (the map is built only when such an interval exists)."""
    positions, counts = scan.sorted()
    lo_index = int(np.searchsorted(positions, scan.frontier - config.backstep_window))
    weak = [k for k in range(front, max(lo_index, 1) - 1, -1)
            if positions[k] - positions[k - 1] > config.coarse_gap
            and any(above_background(positions, counts, j, config, sigma=config.cam_peak_sigma, relative=0.0)
                    for j in (k - 1, k))]
    if not weak:
        return ()
    # read second_cam only now: for a network without one-pass maps agent.top_two computes it on first access (a forward pass)
    where = evidence_map(np.asarray(prediction.cam, dtype=np.float64), getattr(prediction, "second_cam", None))
    top = float(np.max(where))
    if top <= 0:
        return ()
    for k in weak:
        lo, hi = positions[k - 1], positions[k]
        if cam_on_interval(where, grid, lo, hi) >= config.cam_fraction * top:
            fill = _fill_positions(lo, hi, scan, config)
            if fill:
                return fill
    return ()


def next_action(
    scan: PartialScan,
    prediction: PredictionLike | None,
    history: Sequence[PredictionSummary],
    config: PolicyConfig,
    grid: np.ndarray | None = None,
) -> Decision:
    """Choose the next action after the latest point (rules in the module docstring).

    Parameters
    ----------
    scan : PartialScan
        The points measured so far (at least one).
    prediction : PredictionLike or None
        The model's prediction on `scan`; None when no model was run (then only the peak rules
        and the range decide).
    history : sequence of PredictionSummary
        Earlier predictions of this run, oldest first.
    config : PolicyConfig
        Thresholds.
    grid : np.ndarray, optional
        Angles of ``prediction.cam``, degrees (the model grid); needed for the CAM rules.

    Returns
    -------
    Decision
        The action and positions; evidence fields (probabilities, CAM summary) are filled from
        `prediction`, latency and model version are left for the caller.
    """
    evidence = _evidence(scan, prediction)
    if scan.n_points == 0:
        return Decision(ActionKind.COARSE, (config.start,), "first point", **evidence)

    positions, counts = scan.sorted()
    # the CAM is 0 where the grid's mask says unmeasured (masked once, in the model): used as is
    cam = None if prediction is None or grid is None else np.asarray(prediction.cam, dtype=np.float64)
    if cam is not None:
        evidence["cam"] = summarise_cam(cam, grid)

    def decision(kind: ActionKind, where: tuple[float, ...], reason: str, dwell_fraction: float = 1.0) -> Decision:
        return Decision(kind, where, reason, dwell_fraction=dwell_fraction, **evidence)

    if config.early_stop and is_settled(scan, prediction, history, config):
        return decision(ActionKind.STOP, (), (
            f"settled: {prediction.label} at confidence {prediction.confidence:.3f} (P(wrong) "
            f"{1 - prediction.confidence:.3f} <= risk {1 - config.confidence:.3g}), stable over {config.stable_span:g} deg, "
            "in distribution"))

    coarse_gap = config.coarse_gap
    front = int(np.searchsorted(positions, scan.frontier))  # index of the frontier point

    # Rule 2: the last interval was crossed at the coarse step and one of its ends is on a peak.
    if front >= 1 and positions[front] - positions[front - 1] > coarse_gap:
        if above_background(positions, counts, front, config) or above_background(positions, counts, front - 1, config):
            fill = _fill_positions(positions[front - 1], positions[front], scan, config)
            if fill:
                return decision(ActionKind.BACKSTEP, fill, "peak crossed at coarse step")

    # Rule 3: a weak feature just behind the frontier where the top-two evidence map is high.
    if cam is not None:
        fill = _cam_backstep(scan, prediction, grid, front, config)
        if fill:
            return decision(ActionKind.BACKSTEP, fill, "weak feature where the top two classes' CAMs disagree"
                            if getattr(prediction, "second_cam", None) is not None else "weak feature in a high-CAM region")

    # Rules 4 and 5: step forward, fine inside a peak, until the end of the range.
    remaining = config.stop - scan.frontier
    if remaining <= config.position_tolerance:
        why = (unsettled_reason(scan, prediction, history, config) if config.early_stop
               else "early_stop off")
        return decision(ActionKind.STOP, (), f"range complete; never settled: {why}")
    on_peak = front >= 1 and above_background(positions, counts, front, config)
    next_position = (round(min(scan.frontier + (config.fine_step if on_peak else config.coarse_step), config.stop), 6),)
    if on_peak:
        return decision(ActionKind.FINE, next_position, "on a peak")
    return decision(ActionKind.COARSE, next_position, "background", config.background_dwell)


def fallback_decision(scan: PartialScan, config: PolicyConfig, reason: str) -> Decision:
    """The plan's decision when the agent cannot answer: a fine step forward (or stop at the end).

    Fine steps are the safe choice: they measure everything a uniform fine scan would, so a lost
    agent costs time, never data.
    """
    if scan.n_points == 0:
        return Decision(ActionKind.FINE, (config.start,), reason, fallback=True)
    if config.stop - scan.frontier <= config.position_tolerance:
        return Decision(ActionKind.STOP, (), f"{reason}; range complete", n_points=scan.n_points,
                        position=scan.last_position, fallback=True)
    next_position = round(min(scan.frontier + config.fine_step, config.stop), 6)
    return Decision(ActionKind.FINE, (next_position,), reason, n_points=scan.n_points,
                    position=scan.last_position, fallback=True)
