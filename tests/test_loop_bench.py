"""The loop benchmark's parts: each strategy scans through the RunEngine, the summary and targets."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import RunEngine

from agent.callback import LocalAgent
from bench.loop import (
    STRATEGIES,
    PrimaryCollector,
    ScanOutcome,
    classify,
    pick_slope_target_delta,
    plot,
    scan_once,
    summarise,
    targets,
)


@pytest.fixture(scope="module")
def classifier():
    import torch

    from plans.beamline import load_classifier, load_config

    torch.set_num_threads(1)
    return load_classifier(load_config())  # the shipped model (XRD_AGENT_MODEL may point elsewhere)


def test_every_strategy_scans_and_is_classified(classifier) -> None:
    RE = RunEngine({})
    collector = PrimaryCollector()
    RE.subscribe(collector)
    agent = LocalAgent(classifier)
    sample = "auto-xrd/MASnI3_2-Theta_Omega"
    results = {}
    for strategy in STRATEGIES:
        acq, points, wall, decisions = scan_once(strategy, sample, 0, classifier, agent, RE, collector, 800.0)
        label, confidence = classify(classifier, collector.two_theta, collector.counts)
        assert label in classifier.classes and 0 <= confidence <= 1
        assert points == len(collector.two_theta) and acq > 0 and wall > 0
        results[strategy] = (acq, points, decisions)
    assert results["uniform_0.04"][1] == 1376 and results["uniform_0.16"][1] == 345  # linspace over 55 deg
    # the uniform fine scan costs about four times the coarse one (same dwell, 4x the points)
    assert 3.5 < results["uniform_0.04"][0] / results["uniform_0.16"][0] < 4.5
    assert results["agent"][2] and not results["uniform_0.04"][2]  # only the agent leaves decisions


def _outcome(strategy: str, correct: bool, time_s: float) -> ScanOutcome:
    return ScanOutcome(strategy, "s", "a", "a" if correct else "b", 0.9, correct, time_s, 10, 0.1, 0)


def test_summary_and_targets_follow_the_acceptance_lines() -> None:
    outcomes = [
        *[_outcome("uniform_0.04", c, 1000.0) for c in (True, True, True, False)],
        *[_outcome("uniform_0.16", c, 250.0) for c in (True, True, False, False)],
        *[_outcome("slope_adaptive", c, 200.0) for c in (True, False, False, False)],
        *[_outcome("agent", c, 180.0) for c in (True, True, True, False)],
    ]
    summary = summarise(outcomes)
    assert summary["uniform_0.04"]["accuracy"] == 0.75 and summary["agent"]["acq_time_fraction"] == pytest.approx(0.18)
    assert all(targets(summary).values())
    slower = summarise([*outcomes[:12], *[_outcome("agent", c, 260.0) for c in (True, True, True, False)]])
    result = targets(slower)
    assert not result["time_at_most_20pct_of_uniform_0.04"] and not result["beats_uniform_0.16_at_equal_or_lower_time"]


def test_slope_target_delta_is_time_matched_without_labels(tmp_path) -> None:
    # a fake time model: larger target_delta -> larger steps -> less time
    def scan_time(sample: str, seed: int, delta: float) -> float:
        return 2000.0 / np.log2(delta)

    chosen, times = pick_slope_target_delta([("s", 0)], agent_mean_time_s=250.0, scan=scan_time)
    assert times[str(chosen)] >= 250.0
    cheaper = [float(d) for d, t in times.items() if float(d) > chosen]
    assert all(times[str(d)] < 250.0 for d in cheaper)
    png = plot(summarise([_outcome(s, True, 100.0) for s in STRATEGIES]), tmp_path / "loop.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
