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
4. **Inside a peak -> fine step; else -> coarse step.** The frontier point above background means
   the scan is on a peak: keep the fine step until the signal falls back.
5. **End of range -> stop**, with the reason the class never settled.

Rules 2-5 never read ``risk``: the points measured before a stop are the same at every setting. Every
STOP says why in its ``reason`` (the run's decision stream). Steps are clipped to the range.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from agent.cam_summary import cam_on_interval, evidence_map, summarise_cam
from agent.decision import ActionKind, Decision
from agent.partial_scan import PartialScan
from agent.settling import (
    DEFAULT_RISK,
    PredictionSummary,
    confidence_for_risk,
    settling_evidence,
    why_not_settled,
)

__all__ = ["DEFAULT_COARSE_STEP", "PolicyConfig", "PredictionSummary", "above_background", "fallback_decision", "is_settled", "next_action", "unsettled_reason"]


POSITION_TOLERANCE_STEPS = 0.25
"""Two positions closer than this many fine steps are one point (already measured, end reached).

Why a quarter: candidate positions lie whole fine steps away from measured ones and are rounded to
1e-6 degrees, so a true neighbour is one step away and a repeat is ~0 away; a quarter step sits
far from both.
"""

COARSE_GAP_STEPS = 1.5
"""An interval wider than this many fine steps was crossed at the coarse step (not the fine one).

Why 1.5: fine intervals are one step (up to rounding) and a coarse step is at least two (the
default is four); the threshold lies between one and two steps so that no rounded fine interval
counts as coarse.
"""

DEFAULT_COARSE_STEP = 0.16
"""The step over background, degrees.

Peaks are measured at the fine step whatever this is (rules 2-4), so it only has to land on every
peak's flank. Chosen by `bench.loop_tuning`'s rule on the prototype films, default and weak, never
on a set the loop benchmark reports (bench/results/loop_tuning.json): 0.16 (full path as accurate
as a uniform 0.04 scan in 35 % of its time); 0.32 steps over weak narrow peaks.
"""


class PredictionLike(Protocol):
    """What the policy reads from a model prediction (`models.classifier.Prediction`)."""

    probabilities: np.ndarray
    label: str
    confidence: float
    cam: np.ndarray
    coverage: float
    classes: Sequence[str]
    out_of_distribution: bool


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds of the policy; all recorded in the start document of every adaptive run.

    Parameters
    ----------
    start, stop : float
        Scan range, degrees 2-theta (``start < stop``).
    coarse_step : float
        Step where nothing is happening, degrees.
    fine_step : float
        Step inside peaks and for back-step fills, degrees (``0 < fine_step < coarse_step``).
    risk : float
        The knob: accepted calibrated probability of a wrong answer when the scan stops early,
        0-1 (`agent.settling`; default 0.02, "stop when P(wrong) < 2 %").
    confidence : float
        Calibrated probability the label needs to settle, 0-1: ``1 - risk``. Left at its default
        (``1 - DEFAULT_RISK``) it follows `risk`; set to any other value it wins (then
        ``risk = 1 - confidence``), so ``adaptive_scan(confidence=0.9)`` keeps working.
    min_fraction : float
        Fraction of the range the frontier must have passed before the class may settle, 0-1.
    stable_span : float
        Degrees of frontier travel over which every prediction must agree for the class to settle.
    early_stop : bool
        Whether a settled class stops the scan (else the scan always runs to `stop`).
    peak_sigma : float
        A point is above background when it exceeds the local background by this many Poisson
        standard deviations (sqrt of the background counts) ...
    peak_relative : float
        ... and by at least this fraction of the background (guards against high-count
        backgrounds, where a few sigma is a tiny relative change).
    background_window : float
        Width of the window behind a point whose median counts is the local background, degrees.
    cam_fraction : float
        A coarse interval is "high-CAM" when its mean CAM is at least this fraction of the CAM
        maximum over the measured range, 0-1.
    cam_peak_sigma : float
        The weaker bar (Poisson standard deviations, no relative bar) a point of a high-CAM interval
        must clear to have the interval refined.
    backstep_window : float
        Only coarse intervals this close behind the frontier are filled because of the CAM, degrees
        (bounds the motor travel a back-step costs).
    """

    start: float = 5.0
    stop: float = 60.0
    coarse_step: float = DEFAULT_COARSE_STEP
    fine_step: float = 0.04
    risk: float = DEFAULT_RISK
    confidence: float = 1.0 - DEFAULT_RISK  # follows risk unless set to another value
    # min_fraction and stable_span guard against settling on too little evidence at any risk
    min_fraction: float = 0.35
    stable_span: float = 4.0
    early_stop: bool = True
    peak_sigma: float = 5.0
    peak_relative: float = 0.25
    background_window: float = 2.0
    cam_fraction: float = 0.8
    cam_peak_sigma: float = 3.0
    backstep_window: float = 1.0

    def __post_init__(self) -> None:
        if self.confidence == 1.0 - DEFAULT_RISK:
            object.__setattr__(self, "confidence", confidence_for_risk(self.risk))
        elif not math.isclose(self.confidence, 1.0 - self.risk):
            if not 0 < self.confidence <= 1:
                raise ValueError(f"confidence must be in (0, 1], got {self.confidence}")
            object.__setattr__(self, "risk", 1.0 - self.confidence)  # an explicit confidence wins
        if not (math.isfinite(self.start) and math.isfinite(self.stop)) or self.stop <= self.start:
            raise ValueError(f"scan range must satisfy start < stop, got {self.start}..{self.stop} deg")
        if not 0 < self.fine_step < self.coarse_step:
            raise ValueError(
                f"steps must satisfy 0 < fine_step < coarse_step, got fine_step={self.fine_step}, "
                f"coarse_step={self.coarse_step} deg"
            )
        if self.coarse_step > self.stop - self.start:
            raise ValueError(f"coarse_step {self.coarse_step} deg exceeds the range {self.start}..{self.stop} deg")
        if not 0 < self.confidence <= 1:
            raise ValueError(f"confidence must be in (0, 1], got {self.confidence}")
        if not 0 <= self.min_fraction <= 1:
            raise ValueError(f"min_fraction must be in [0, 1], got {self.min_fraction}")
        for name in ("stable_span", "peak_sigma", "peak_relative", "background_window", "backstep_window", "cam_peak_sigma"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.cam_fraction <= 1:
            raise ValueError(f"cam_fraction must be in (0, 1], got {self.cam_fraction}")

    @property
    def position_tolerance(self) -> float:
        """Degrees within which two positions are one point (:data:`POSITION_TOLERANCE_STEPS` fine steps)."""
        return POSITION_TOLERANCE_STEPS * self.fine_step

    @property
    def coarse_gap(self) -> float:
        """Degrees above which an interval was crossed at the coarse step (:data:`COARSE_GAP_STEPS` fine steps)."""
        return COARSE_GAP_STEPS * self.fine_step

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as a plain dictionary (start-document metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> PolicyConfig:
        """Rebuild from :meth:`to_dict` output, ignoring unknown keys."""
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in record.items() if key in known})


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
    exceed it by `sigma` Poisson standard deviations and by `relative` of it (defaults: the
    config's ``peak_sigma`` and ``peak_relative``).
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
    # read second_cam only now: agent.top_two computes it on first access (a second CAM costs a forward pass)
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

    def decision(kind: ActionKind, where: tuple[float, ...], reason: str) -> Decision:
        return Decision(kind, where, reason, **evidence)

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
    kind, step = (ActionKind.FINE, config.fine_step) if on_peak else (ActionKind.COARSE, config.coarse_step)
    reason = "on a peak" if on_peak else "background"
    next_position = min(scan.frontier + step, config.stop)
    return decision(kind, (round(next_position, 6),), reason)


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
