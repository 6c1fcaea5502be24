"""The pure policy: every rule on hand-made partial scans, no RunEngine, no model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.decision import ActionKind, Decision
from agent.partial_scan import PartialScan, PartialScanBuilder
from agent.policy import (
    PolicyConfig,
    PredictionSummary,
    above_background,
    next_action,
    fallback_decision,
    is_settled,
    summarise_cam,
    unsettled_reason,
)
from models.grid import GRID

CLASSES = ("Fm-3m", "I4/mcm", "P2_1/a", "P-3m1", "P6_3/mmc", "Pc", "Pm-3m")


def prediction(label: str = "Pm-3m", confidence: float = 0.95, cam: np.ndarray | None = None, novel: bool = False):
    """A real `models.classifier.Prediction` with the given label and confidence."""
    from models.classifier import Prediction

    probabilities = np.full(len(CLASSES), (1 - confidence) / (len(CLASSES) - 1))
    probabilities[CLASSES.index(label)] = confidence
    return Prediction(
        probabilities=probabilities,
        label=label,
        confidence=confidence,
        cam=np.zeros(GRID.size) if cam is None else cam,
        coverage=0.5,
        classes=CLASSES,
        out_of_distribution=novel,
    )


def flat_scan(start: float, stop: float, frontier: float, step: float = 0.16, level: float = 100.0) -> PartialScan:
    scan = PartialScan(start, stop)
    for x in np.arange(start, frontier + 1e-9, step):
        scan.add(round(float(x), 6), level)
    return scan


CONFIG = PolicyConfig(start=5.0, stop=60.0)


class TopTwo:
    """A prediction that also carries the second class's CAM (as `agent.top_two` makes them)."""

    def __init__(self, base, second_cam: np.ndarray) -> None:
        self.base, self.second_cam = base, second_cam

    def __getattr__(self, name: str):
        return getattr(self.base, name)


def test_first_decision_without_points_measures_the_start() -> None:
    decision = next_action(PartialScan(5.0, 60.0), None, [], CONFIG, GRID)
    assert decision.action is ActionKind.COARSE and decision.positions == (5.0,)


def test_flat_background_steps_coarse() -> None:
    scan = flat_scan(5.0, 60.0, 7.0)
    decision = next_action(scan, None, [], CONFIG, GRID)
    assert decision.action is ActionKind.COARSE
    assert decision.positions == (pytest.approx(scan.frontier + CONFIG.coarse_step),)


def test_peak_crossed_at_coarse_step_backsteps_at_fine_step_without_remeasuring() -> None:
    scan = flat_scan(5.0, 60.0, 7.0)
    previous = scan.frontier
    scan.add(previous + 0.16, 2000.0)  # a peak
    decision = next_action(scan, None, [], CONFIG, GRID)
    assert decision.action is ActionKind.BACKSTEP
    assert decision.positions == pytest.approx((previous + 0.04, previous + 0.08, previous + 0.12))
    assert not any(scan.has_point_near(x, 0.01) for x in decision.positions)
    # fill it: the interval is fine now, the frontier is on the peak -> a fine step forward
    for x in decision.positions:
        scan.add(x, 1500.0)
    decision = next_action(scan, None, [], CONFIG, GRID)
    assert decision.action is ActionKind.FINE
    assert decision.positions == (pytest.approx(previous + 0.16 + 0.04),)


def test_a_small_bump_is_not_a_peak() -> None:
    scan = flat_scan(5.0, 60.0, 7.0, level=10000.0)
    scan.add(scan.frontier + 0.16, 10000.0 + 3 * math.sqrt(10000.0))  # 3 sigma, 3 %: noise
    positions, counts = scan.sorted()
    assert not above_background(positions, counts, positions.size - 1, CONFIG)
    assert next_action(scan, None, [], CONFIG, GRID).action is ActionKind.COARSE


def test_coarse_steps_over_background_are_counted_shorter_and_peaks_for_the_full_dwell() -> None:
    config = PolicyConfig(start=5.0, stop=60.0, background_dwell=0.25)
    scan = flat_scan(5.0, 60.0, 7.0)
    coarse = next_action(scan, None, [], config, GRID)
    assert coarse.action is ActionKind.COARSE and coarse.dwell_fraction == 0.25
    assert next_action(PartialScan(5.0, 60.0), None, [], config, GRID).dwell_fraction == 1.0  # the first point
    scan.add(scan.frontier + 0.16, 2000.0)  # a peak (counts on the run's dwell), found by a short count
    fill = next_action(scan, None, [], config, GRID)
    assert fill.action is ActionKind.BACKSTEP and fill.dwell_fraction == 1.0
    assert Decision.from_dict(coarse.to_dict()).dwell_fraction == 0.25  # over the wire too
    with pytest.raises(ValueError, match="background_dwell"):
        PolicyConfig(background_dwell=0.0)


def test_settled_needs_confidence_agreement_over_the_span_and_range() -> None:
    config = PolicyConfig(start=5.0, stop=60.0, risk=0.1, min_fraction=0.35, stable_span=2.0)
    assert config.confidence == pytest.approx(0.9)  # the knob: P(wrong) <= 10 %
    far = flat_scan(5.0, 60.0, 30.0)  # 45 % of the range
    near = flat_scan(5.0, 60.0, 20.0)  # 27 % of the range
    for scan in (far, near):
        scan.add(12.02, 400.0)  # a peak: a constant signal has no basis for an answer (models.basis)

    def agreeing(scan: PartialScan, label: str = "Pm-3m", confidence: float = 0.5) -> list[PredictionSummary]:
        # one prediction every 0.16 deg over the last 3 deg, confident or not: only the current one must be
        return [PredictionSummary(label, confidence, x) for x in np.arange(scan.frontier - 3.0, scan.frontier, 0.16)]

    history = agreeing(far)
    assert is_settled(far, prediction("Pm-3m", 0.95), history, config)
    assert next_action(far, prediction("Pm-3m", 0.95), history, config, GRID).action is ActionKind.STOP
    # too little of the range
    assert not is_settled(near, prediction("Pm-3m", 0.95), agreeing(near), config)
    # not confident now
    assert not is_settled(far, prediction("Pm-3m", 0.85), history, config)
    # another label within the span unsettles it; outside the span it does not matter
    inside = [*history[:-3], PredictionSummary("I4/mcm", 0.9, far.frontier - 0.5), *history[-2:]]
    assert not is_settled(far, prediction("Pm-3m", 0.95), inside, config)
    outside = [PredictionSummary("I4/mcm", 0.9, far.frontier - 2.9), *history[1:]]
    assert is_settled(far, prediction("Pm-3m", 0.95), outside, config)
    # a history that does not reach back over the span
    assert not is_settled(far, prediction("Pm-3m", 0.95), history[-5:], config)
    assert not is_settled(far, prediction("Pm-3m", 0.95), [], config)
    # out of distribution: a confident, stable answer about an unknown pattern never settles
    assert not is_settled(far, prediction("Pm-3m", 0.95, novel=True), history, config)
    assert next_action(far, prediction("Pm-3m", 0.95, novel=True), history, config, GRID).action is not ActionKind.STOP
    assert unsettled_reason(far, prediction("Pm-3m", 0.95, novel=True), history, config).startswith("out of distribution")
    # no basis (a constant signal): never settles, however confident
    flat = flat_scan(5.0, 60.0, 30.0)
    assert unsettled_reason(flat, prediction("Pm-3m", 0.99), agreeing(flat), config).startswith("no basis")
    # the knob: the same answer settles at a 10 % risk, not at 2 %
    assert "above risk 0.02" in unsettled_reason(far, prediction("Pm-3m", 0.95), history, PolicyConfig(stable_span=2.0))
    stop = next_action(far, prediction("Pm-3m", 0.95), history, config, GRID)
    assert stop.reason.startswith("settled: Pm-3m") and "risk 0.1" in stop.reason
    # no early stop: never stops before the end
    no_stop = PolicyConfig(start=5.0, stop=60.0, early_stop=False, stable_span=2.0)
    assert next_action(far, prediction("Pm-3m", 0.99), history, no_stop, GRID).action is ActionKind.COARSE


def test_end_of_range_is_clipped_then_stops() -> None:
    scan = flat_scan(5.0, 6.0, 5.96)  # frontier 5.96, 0.04 short of the stop
    decision = next_action(scan, None, [], PolicyConfig(start=5.0, stop=6.0), GRID)
    assert decision.action is ActionKind.COARSE and decision.positions == (pytest.approx(6.0),)
    scan.add(6.0, 100.0)
    end = next_action(scan, None, [], PolicyConfig(start=5.0, stop=6.0), GRID)
    assert end.action is ActionKind.STOP and end.reason == "range complete; never settled: no prediction yet"


def test_risk_maps_to_confidence_and_an_explicit_confidence_wins() -> None:
    assert PolicyConfig().risk == 0.02 and PolicyConfig().confidence == pytest.approx(0.98)
    assert PolicyConfig(risk=0.3).confidence == pytest.approx(0.7)
    explicit = PolicyConfig(confidence=0.8)
    assert explicit.risk == pytest.approx(0.2)
    assert PolicyConfig.from_dict(explicit.to_dict()) == explicit  # the start document round-trips
    with pytest.raises(ValueError, match="risk"):
        PolicyConfig(risk=1.5)
    # a risk and a confidence that disagree: neither silently wins (the user's risk would be lost)
    with pytest.raises(ValueError, match="give risk or confidence, not both: risk 0.1 means confidence 0.9"):
        PolicyConfig(risk=0.1, confidence=0.5)
    assert PolicyConfig(risk=0.1, confidence=0.9).risk == pytest.approx(0.1)  # agreeing is fine


def test_weak_feature_where_the_evidence_lies_is_refined_at_every_risk() -> None:
    level = 10000.0
    scan = PartialScan(5.0, 60.0)
    xs = [round(float(x), 6) for x in np.arange(5.0, 10.0 + 1e-9, 0.16)]
    weak = xs[-2]  # 4 sigma and 4 % above background: too weak for the peak rule
    for x in xs:
        scan.add(x, level + 4 * math.sqrt(level) if x == weak else level)
    lo, hi = xs[-3], weak
    cam = np.zeros(GRID.size)
    cam[(GRID >= lo) & (GRID <= hi)] = 1.0
    unsure = next_action(scan, prediction("Pm-3m", 0.2, cam), [], CONFIG, GRID)
    assert unsure.action is ActionKind.BACKSTEP and unsure.reason == "weak feature in a high-CAM region"
    assert all(lo < x < hi for x in unsure.positions) and len(unsure.positions) == 3
    assert unsure.cam.peak_two_theta == pytest.approx(lo, abs=0.04)
    # the path never reads the knob: a confident answer refines the same interval
    sure = next_action(scan, prediction("Pm-3m", 0.99, cam), [], CONFIG, GRID)
    assert sure.action is ActionKind.BACKSTEP and sure.positions == unsure.positions
    # where the top two classes' CAMs agree, the evidence does not separate them: no back-step
    agree = TopTwo(prediction("Pm-3m", 0.5, cam), cam.copy())
    assert next_action(scan, agree, [], CONFIG, GRID).action is ActionKind.COARSE
    # where they disagree, it does
    apart = TopTwo(prediction("Pm-3m", 0.5, cam), np.zeros(GRID.size))
    disagree = next_action(scan, apart, [], CONFIG, GRID)
    assert disagree.action is ActionKind.BACKSTEP and "disagree" in disagree.reason
    # a high CAM over flat background alone never sends the scan back
    flat = flat_scan(5.0, 60.0, 10.0, level=level)
    assert next_action(flat, prediction("Pm-3m", 0.2, cam), [], CONFIG, GRID).action is ActionKind.COARSE


def test_closed_loop_on_a_synthetic_pattern_keeps_every_invariant() -> None:
    """Drive the policy like the plan does: positions stay in range, no point twice, it ends."""
    rng = np.random.default_rng(0)
    peaks = np.array([12.0, 14.1, 20.0, 24.5, 28.4, 31.9, 40.6, 43.2])

    def counts(x: float) -> float:
        expected = 200 + 5000 * np.exp(-0.5 * ((x - peaks) / 0.05) ** 2).sum()
        return float(rng.poisson(expected))

    config = PolicyConfig(start=5.0, stop=60.0, early_stop=False)
    scan = PartialScan(5.0, 60.0)
    positions: tuple[float, ...] = (5.0,)
    actions = []
    for _ in range(5000):
        for x in positions:
            assert 5.0 - 1e-9 <= x <= 60.0 + 1e-9
            assert not scan.has_point_near(x, 0.01), f"{x} measured twice"
            scan.add(x, counts(x))
        decision = next_action(scan, None, [], config, GRID)
        actions.append(decision.action)
        if decision.action is ActionKind.STOP:
            break
        positions = decision.positions
    assert actions[-1] is ActionKind.STOP
    assert ActionKind.BACKSTEP in actions and ActionKind.FINE in actions
    # cheaper than a uniform fine scan, and every peak was measured at the fine step
    assert scan.n_points < 0.5 * 1376
    measured, _ = scan.sorted()
    for peak in peaks:
        near = measured[np.abs(measured - peak) < 0.2]
        assert np.min(np.diff(near)) <= 0.04 + 1e-6


def test_fallback_is_a_fine_step_flagged_as_fallback() -> None:
    scan = flat_scan(5.0, 60.0, 7.0)
    decision = fallback_decision(scan, CONFIG, "agent lost")
    assert decision.fallback and decision.action is ActionKind.FINE
    assert decision.positions == (pytest.approx(scan.frontier + 0.04),)
    done = flat_scan(5.0, 6.0, 5.96)
    done.add(6.0, 100.0)
    assert fallback_decision(done, PolicyConfig(start=5.0, stop=6.0), "lost").action is ActionKind.STOP


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": 10.0, "stop": 5.0},
        {"fine_step": 0.2, "coarse_step": 0.16},
        {"fine_step": 0.0},
        {"confidence": 1.5},
        {"min_fraction": -0.1},
        {"stable_span": -1.0},
        {"cam_fraction": 0.0},
    ],
)
def test_policy_config_rejects_bad_thresholds(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PolicyConfig(**kwargs)


def test_decision_round_trips_through_a_plain_dict() -> None:
    decision = next_action(flat_scan(5.0, 60.0, 9.0), prediction("Pm-3m", 0.7), [], CONFIG, GRID)
    again = Decision.from_dict(decision.to_dict())
    assert again == decision
    with pytest.raises(ValueError):
        Decision.from_dict({"action": "coarse"})
    with pytest.raises(ValueError):
        Decision(ActionKind.STOP, (5.0,), "stop with a position")


def test_partial_scan_validates_points_and_builder_reads_only_primary() -> None:
    scan = PartialScan(5.0, 60.0)
    with pytest.raises(ValueError):
        scan.add(float("nan"), 1.0)
    with pytest.raises(ValueError):
        scan.add(10.0, -1.0)
    start = {"uid": "r1", "adaptive": {"policy": {"start": 5.0, "stop": 60.0}, "motor_field": "tth", "counts_field": "det_counts"}}
    builder = PartialScanBuilder(start)
    builder.descriptor({"uid": "d1", "name": "primary", "data_keys": {"tth": {}, "det_counts": {}}})
    builder.descriptor({"uid": "d2", "name": "decisions", "data_keys": {"decision_action": {}}})
    assert builder.event({"descriptor": "d1", "data": {"tth": 5.0, "det_counts": 10}})
    assert not builder.event({"descriptor": "d2", "data": {"decision_action": "coarse"}})
    assert builder.scan.n_points == 1
    with pytest.raises(ValueError):
        PartialScanBuilder({"uid": "r2"})
    with pytest.raises(ValueError):
        builder.descriptor({"uid": "d3", "name": "primary", "data_keys": {"tth": {}}})


def test_cam_summary_finds_the_strongest_region() -> None:
    cam = np.zeros(GRID.size)
    cam[(GRID > 14.0) & (GRID < 14.4)] = 1.0
    cam[(GRID > 30.0) & (GRID < 30.1)] = 0.6
    summary = summarise_cam(cam, GRID)
    assert 14.0 < summary.peak_two_theta < 14.4
    assert summary.high_low == pytest.approx(14.04, abs=0.05) and summary.high_high == pytest.approx(14.36, abs=0.05)
    assert math.isnan(summarise_cam(np.zeros(GRID.size), GRID).peak_two_theta)
