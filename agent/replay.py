"""The closed loop without a RunEngine: the policy driven point by point, as the plan and the callback drive it.

`replay` does what `plans.adaptive.adaptive_scan` and `agent.callback` do together -- measure the
positions of the last decision, classify the partial scan, decide, until STOP -- with "measure" a
plain function of the position: reading simulated devices directly (the loop benchmark: same
device calls, same Poisson draws and the same clock as the plan), or reading a pattern recorded at
every grid point (`replay_recording`: the policy's positions lie on the 0.04-degree model grid
when the scan starts on it). Used to check, pattern by pattern, that the agent never stops early
on a pattern it does not know, and to scan many samples without the RunEngine's document overhead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agent.callback import MIN_POINTS_FOR_PREDICTION
from agent.decision import ActionKind, Decision
from agent.partial_scan import PartialScan, points_in_model_range
from agent.policy import PolicyConfig, next_action
from agent.settling import PredictionSummary, SettlingEvidence, settling_evidence
from models.grid import GRID, GRID_STEP

Measure = Callable[..., float]
"""Counts measured at a position, degrees 2-theta: ``measure(x)`` for the run's dwell, and
``measure(x, exposure)`` for a point the policy counts shorter (`Decision.dwell_fraction`, a
fraction of the run's dwell), its counts rescaled to the run's dwell (`patterns.exposure`)."""


@dataclass(frozen=True)
class Replay:
    """One replayed scan.

    Attributes
    ----------
    decisions : list of Decision
        Every decision, in order; the last is a STOP.
    trail : list of SettlingEvidence
        The settling evidence of every decision that had a prediction, in order.
    trail_points : list of int
        Points measured at each entry of `trail`.
    scan : PartialScan
        The points measured.
    decision_ms : list of float
        Wall time of each decision that ran the model (classify + policy), milliseconds.
    """

    decisions: list[Decision]
    trail: list[SettlingEvidence]
    trail_points: list[int]
    scan: PartialScan
    decision_ms: list[float]

    @property
    def stopped_early(self) -> bool:
        """Whether the scan stopped on a settled class (not at the end of the range)."""
        return self.decisions[-1].reason.startswith("settled")


def replay(measure: Measure, classifier, config: PolicyConfig) -> Replay:
    """Run the closed loop with `measure` as the instrument.

    Parameters
    ----------
    measure : callable
        ``measure(two_theta) -> counts``, called once per position the policy names, in order;
        ``measure(two_theta, exposure)`` where the decision counts shorter (`Measure`).
    classifier : Classifier-like
        ``predict(two_theta, counts)``.
    config : PolicyConfig
        The policy's thresholds and range.

    Returns
    -------
    Replay
    """
    scan = PartialScan(config.start, config.stop)
    decisions: list[Decision] = []
    trail: list[SettlingEvidence] = []
    trail_points: list[int] = []
    decision_ms: list[float] = []
    history: list[PredictionSummary] = []
    positions: tuple[float, ...] = ()
    exposure = 1.0
    while True:
        for x in positions:
            scan.add(x, float(measure(x) if exposure == 1.0 else measure(x, exposure)))
        began = time.perf_counter()
        prediction = None
        two_theta, counts = scan.sorted()
        if points_in_model_range(two_theta, GRID) >= MIN_POINTS_FOR_PREDICTION:  # as the agent: only the model's range
            prediction = classifier.predict(two_theta, counts)
            trail.append(settling_evidence(two_theta, counts, prediction, config.start, config.stop))
            trail_points.append(scan.n_points)
        decision = next_action(scan, prediction, history, config, GRID)
        decisions.append(decision)
        if prediction is not None:
            history.append(PredictionSummary(str(prediction.label), float(prediction.confidence), scan.frontier))
            decision_ms.append(1e3 * (time.perf_counter() - began))
        if decision.action is ActionKind.STOP:
            return Replay(decisions, trail, trail_points, scan, decision_ms)
        positions, exposure = decision.positions, decision.dwell_fraction


def replay_recording(values: np.ndarray, mask: np.ndarray, classifier, config: PolicyConfig) -> Replay:
    """Replay the closed loop over one pattern recorded on the model grid.

    Parameters
    ----------
    values : np.ndarray
        float[1376] counts at :data:`models.grid.GRID`.
    mask : np.ndarray
        bool[1376], True where `values` were measured; the scan range is narrowed to the measured
        span.
    classifier : Classifier-like
        ``predict(two_theta, counts)``.
    config : PolicyConfig
        The policy's thresholds; its range, narrowed, must start on the grid. Every point is read
        as recorded (a recording cannot be recounted shorter: ``background_dwell`` is set to 1).

    Returns
    -------
    Replay

    Raises
    ------
    ValueError
        A start off the grid, or a position the recording does not cover.
    """
    measured = np.flatnonzero(mask)
    start, stop = max(config.start, float(GRID[measured[0]])), min(config.stop, float(GRID[measured[-1]]))
    if abs((start - GRID[0]) / GRID_STEP - round((start - GRID[0]) / GRID_STEP)) > 1e-6:
        raise ValueError(f"replay: start {start} deg is not on the 0.04-degree model grid")

    def read(x: float) -> float:
        index = int(round((x - GRID[0]) / GRID_STEP))
        if not (0 <= index < GRID.size and mask[index]):
            raise ValueError(f"replay: the recording has no point at {x} deg")
        return float(values[index])

    return replay(read, classifier, PolicyConfig.from_dict({**config.to_dict(), "start": start, "stop": stop,
                                                            "background_dwell": 1.0}))
