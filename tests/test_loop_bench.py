"""The loop benchmark's parts: curves and fronts, the acceptance lines, and the scans through the RunEngine."""

from __future__ import annotations

import numpy as np
import pytest

from bench.loop import _headline, judge_unlabelled, sample_lines
from bench.loop_curves import accuracy_at, curves, early_stops, pareto_front, plot, targets
from bench.loop_scans import UNIFORM_STEPS, Scanner, ScanOutcome
from bench.loop_sets import Job


@pytest.fixture(scope="module")
def classifier():
    import torch

    import models

    torch.set_num_threads(1)
    return models.load_default("space_group")


def _outcome(strategy: str, knob: float, correct: bool, time_s: float) -> ScanOutcome:
    return ScanOutcome(strategy, knob, "s", "a", "a" if correct else "b", 0.9, correct, time_s, 10, 0.1, 0)


def _set(agent_time: float) -> list[ScanOutcome]:
    rows = []
    for step, time_s, hits in ((0.04, 1000.0, 4), (0.16, 250.0, 3), (0.32, 125.0, 2)):
        rows += [_outcome("uniform", step, k < hits, time_s) for k in range(4)]
    for delta, time_s, hits in ((100.0, 300.0, 3), (1600.0, 200.0, 2)):
        rows += [_outcome("slope_adaptive", delta, k < hits, time_s) for k in range(4)]
    for risk, time_s, hits in ((0.4, agent_time, 4), (0.6, 100.0, 1)):
        rows += [_outcome("agent", risk, k < hits, time_s) for k in range(4)]
    return rows


def test_curves_fronts_and_the_acceptance_lines() -> None:
    curve = curves(_set(agent_time=140.0))
    assert [p["knob"] for p in curve["uniform"]] == [0.32, 0.16, 0.04]  # by time
    assert curve["uniform"][-1] == {"knob": 0.04, "accuracy": 1.0, "acq_time_s": 1000.0, "points": 10.0, "n": 4}
    # a point beaten on both axes leaves the front
    points = [{"acq_time_s": 1.0, "accuracy": 0.5}, {"acq_time_s": 2.0, "accuracy": 0.4}, {"acq_time_s": 3.0, "accuracy": 0.9}]
    assert pareto_front(points) == [points[0], points[2]]
    assert accuracy_at(points, 2.5) == 0.5 and accuracy_at(points, 0.5) == -np.inf
    lines = targets(curve)
    # the agent reaches 1.0 at 140 s: above uniform 0.16 (250 s), every slope point, and within 15 % of 1000 s
    assert lines["agent_at_least_uniform_0_16_at_its_time"] and lines["agent_at_least_slope_at_its_times"]
    assert lines["agent_reaches_uniform_0_04_minus_0_01_within_15pct"]
    slower = targets(curves(_set(agent_time=260.0)))
    assert not slower["agent_reaches_uniform_0_04_minus_0_01_within_15pct"]
    assert not slower["agent_at_least_uniform_0_16_at_its_time"]  # 0.25 at 250 s < 0.75
    assert not slower["agent_at_least_slope_at_its_times"]  # 0.25 at 200 s < 0.5


def test_early_stops_give_the_error_rate_the_risk_promises_to_bound() -> None:
    rows = [_outcome("agent", 0.2, correct, 100.0) for correct in (True, True, True, False, True)]
    for row, early in zip(rows, (True, True, True, True, False)):
        row.stopped_early = early
    rows += [_outcome("agent", 0.02, True, 300.0) for _ in range(2)] + [_outcome("uniform", 0.16, False, 250.0)]
    assert early_stops(rows) == [
        {"risk": 0.02, "scans": 2, "stopped_early": 0, "wrong": 0, "error_rate": None},
        {"risk": 0.2, "scans": 5, "stopped_early": 4, "wrong": 1, "error_rate": 0.25},  # the full-path scan is not counted
    ]


def test_a_file_without_a_label_is_judged_against_the_fine_scans_answer(tmp_path) -> None:
    def row(strategy, knob, predicted, time_s, early=False):
        outcome = ScanOutcome(strategy, knob, "my.xy", None, predicted, 0.8, False, time_s, 100, 0.1, -1)
        outcome.stopped_early = early
        return outcome

    rows = judge_unlabelled([row("uniform", 0.04, "Pm-3m", 1472.0), row("uniform", 0.16, "Fm-3m", 389.0),
                             row("agent", 0.02, "Pm-3m", 360.0), row("agent", 0.5, "Pm-3m", 150.0, early=True)])
    assert [(o.label, o.correct, o.judged_against) for o in rows] == [("Pm-3m", True, "uniform 0.04"),
                                                                      ("Pm-3m", False, "uniform 0.04"),
                                                                      ("Pm-3m", True, "uniform 0.04"),
                                                                      ("Pm-3m", True, "uniform 0.04")]
    lines = sample_lines(rows)
    assert lines[0] == "  agent risk 0.02 (default): Pm-3m (0.80) in 360 s, 100 points (24% of uniform 0.04), the fine scan's answer"
    assert any("risk 0.5" in line and "stopped early" in line for line in lines)
    assert any("step 0.16 deg: Fm-3m" in line and "NOT the fine scan's answer" in line for line in lines)
    own = judge_unlabelled(rows + [row("uniform_file_step", 0.02, "Pm-3m", 2944.0)])
    assert "  agent risk 0.02 (default): Pm-3m (0.80) in 360 s, 100 points (24% of uniform 0.04, 12% of the file's step), " \
           "the fine scan's answer" in sample_lines(own)
    # every risk is shown: neighbouring risks that gave the same scan share one line
    more = judge_unlabelled(rows + [row("agent", 0.55, "Pm-3m", 150.0, early=True), row("agent", 0.6, "Pm-3m", 150.0, early=True),
                                    row("agent", 0.8, "P-3m1", 90.0, early=True)])
    agent_lines = [line for line in sample_lines(more) if line.startswith("  agent")]
    assert [line.split(":")[0] for line in agent_lines] == ["  agent risk 0.02 (default)", "  agent risk 0.5-0.6",
                                                           "  agent risk 0.8"]
    # the one-file picture: a bar per named row (curves of a single 0/1 accuracy were unreadable)
    from bench.loop import sample_rows
    from bench.loop_curves import plot_sample

    rows_named = sample_rows(more)
    assert [name for name, _ in rows_named][:3] == ["agent risk 0.02 (default)", "agent risk 0.5-0.6", "agent risk 0.8"]
    png = plot_sample(rows_named, "my.xy", tmp_path / "my.png")
    assert png.stat().st_size > 5000
    labelled = judge_unlabelled([_outcome("uniform", 0.04, False, 1000.0)])  # a labelled sample keeps its label
    assert (labelled[0].label, labelled[0].correct, labelled[0].judged_against) == ("a", False, "label")


def test_a_files_own_step_is_its_median_step_on_the_models_range() -> None:
    from pathlib import Path

    from bench.loop_sets import file_step
    from sim_devices.samples import Sample, sample_from_file

    cases = Path(__file__).parent / "data" / "field-cases"
    assert file_step(sample_from_file(cases / "00-reference.xy")) == 0.02
    assert file_step(sample_from_file(cases / "15-reflectivity.xy")) == 0.01  # its 5-6 degree tail: 0.01 steps
    simulated = Sample("a CIF's film", None, "simulated", np.linspace(5, 60, 1376), np.ones(1376))
    assert file_step(simulated) is None  # a structure has no step of its own


def test_headline_time_matches_the_slope_baseline_without_labels(tmp_path) -> None:
    from agent.settling import DEFAULT_RISK

    rows = _set(agent_time=250.0) + [_outcome("agent", DEFAULT_RISK, True, 250.0) for _ in range(4)]
    summary, chosen = _headline(curves(rows))
    assert chosen == 100.0  # the cheapest setting at least as slow as the agent (300 s >= 250 s)
    assert set(summary) == {"uniform_0.04", "uniform_0.16", "slope_adaptive", "agent"}
    assert summary["agent"]["acq_time_fraction"] == pytest.approx(0.25)
    png = plot({"measured": curves(rows), "unseen_materials": curves(rows)}, tmp_path / "loop.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_every_strategy_scans_and_the_replayed_stop_is_the_real_one(classifier) -> None:
    scanner = Scanner(20.0, 35.0)  # a quarter of the model's range: seconds, not a minute
    job = Job("auto-xrd/MASnI3_2-Theta_Omega", "auto-xrd/MASnI3_2-Theta_Omega", "I4/mcm", 0, classifier, -1)
    uniform = scanner.uniform(job)
    assert [o.knob for o in uniform] == list(UNIFORM_STEPS)
    assert [o.points for o in uniform] == [376, 188, 94, 63, 47]
    # the fine scan costs about four times the 0.16-degree one (same dwell, 4x the points)
    assert 3.5 < uniform[0].acq_time_s / uniform[2].acq_time_s < 4.5
    scanner.runengine_steps(job)  # the same scan through bluesky: same clock
    assert len(scanner.step_ms) == 375 and np.median(scanner.step_ms) > 0
    assert scanner.collector.counts == pytest.approx(list(_direct_counts(job)))
    slope = scanner.slope(job, 800.0)
    assert slope.predicted in classifier.classes and 0 < slope.points < 376
    risks = (0.6, 0.02)
    agent = scanner.agent(job, risks)
    assert [o.knob for o in agent] == list(risks)
    assert agent[0].points <= agent[1].points  # a larger risk never scans longer
    assert scanner.replay_decision_ms and all(latency > 0 for latency in scanner.replay_decision_ms)
    # the real plan in the RunEngine, same seed, stops where the replayed trail says, with the same answer
    for risk, derived in zip(risks, agent):
        assert scanner.check_early_stop(job, risk) == (derived.points, derived.predicted)
    assert scanner.latencies_ms


def _direct_counts(job: Job) -> list[float]:
    from bench.loop_scans import DeviceMeasure
    from sim_devices import make_beamline

    measure = DeviceMeasure(make_beamline(sample=job.sample, seed=job.noise_seed))
    return [measure(x) for x in np.linspace(20.0, 35.0, 376)]


@pytest.mark.slow
def test_the_remote_round_trip_is_compared_with_the_same_model_in_process() -> None:
    from bench.loop_remote import measure_remote_roundtrip

    result = measure_remote_roundtrip(["CsPbBr3"], seed=0)
    assert result["n"] > 0 and result["fallback_decisions"] == 0, result.get("error")
    local = result["in_process"]
    assert local["n"] > 0 and result["n"] >= local["n"]  # every ask is timed remotely; in-process only model decisions
    assert result["model"] == "shipped" and 0 < local["median"] < result["median"] * 10
