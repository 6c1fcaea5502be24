"""The in-process closed loop: the real RunEngine, the simulated beamline and the shipped classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bluesky import RunEngine

from agent.callback import LocalAgent
from agent.decision import ActionKind
from agent.policy import DEFAULT_COARSE_STEP, PolicyConfig
from plans import beamline as configured
from plans.adaptive import adaptive_scan
from plans.decision_stream import DECISIONS_STREAM
from plans.run_record import RunCollector
from sim_devices import make_beamline



@pytest.fixture(scope="module")
def classifier():
    import torch

    import models

    torch.set_num_threads(1)
    return models.load_default("space_group")


@pytest.fixture()
def agent(classifier) -> LocalAgent:
    return LocalAgent(classifier)


@pytest.fixture(autouse=True)
def forget_configured_beamline():
    configured.reset()
    yield
    configured.reset()


def run(plan, *callbacks):
    RE = RunEngine({})
    collector = RunCollector()
    RE.subscribe(collector)
    for callback in callbacks:
        RE.subscribe(callback)
    (uid,) = RE(plan)
    return collector.records[uid]


def test_in_process_loop_classifies_steers_and_records_every_decision(agent: LocalAgent, classifier) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=3)
    began = beamline.clock.time()
    record = run(adaptive_scan([beamline.detector], beamline.motor, agent=agent))
    assert record.stop["exit_status"] == "success"
    assert record.stop["reason"].startswith("class ") and "fallback points: 0" in record.stop["reason"]
    # the start document explains the run
    start = record.start
    assert start["plan_name"] == "adaptive_scan"
    assert start["plan_args"]["coarse_step"] == DEFAULT_COARSE_STEP and start["plan_args"]["fine_step"] == 0.04
    assert start["adaptive"]["model_version"] == classifier.version
    assert start["adaptive"]["policy"]["confidence"] == PolicyConfig.confidence
    assert start["adaptive"]["classes"] == list(classifier.classes)
    # one decision per ask, each with the model's evidence
    decisions = record.decisions
    n = len(decisions["action"])
    assert n >= 10 and record.stop["num_events"][DECISIONS_STREAM] == n
    assert set(decisions["model_version"]) == {classifier.version}
    labelled = decisions["label"] != ""
    assert labelled.sum() >= n - 4
    assert np.allclose(decisions["probabilities"][labelled].sum(axis=1), 1.0, atol=1e-4)
    assert np.all(np.isfinite(decisions["latency_ms"])) and not decisions["fallback"].any()
    assert decisions["action"][-1] in (ActionKind.STOP.value,)
    # the agent steered: coarse background, fine steps or back-steps at peaks
    actions = set(decisions["action"])
    assert "coarse" in actions and ({"fine", "backstep"} & actions)
    # motor limits and range respected, no position measured twice
    positions = np.sort(record.two_theta)
    assert positions[0] == pytest.approx(5.0) and positions[-1] <= 60.0 + 1e-9
    assert np.min(np.diff(positions)) > 0.02
    # cheaper than the uniform fine scan: 1376 points at ~1.07 s
    assert record.n_points < 1376 and beamline.clock.time() - began < 1376 * 1.07


def test_no_early_stop_scans_the_whole_range(agent: LocalAgent) -> None:
    beamline = make_beamline(sample="Cs3Bi2I9", seed=0)
    record = run(adaptive_scan([beamline.detector], beamline.motor, stop=30.0, early_stop=False, agent=agent))
    assert record.two_theta.max() == pytest.approx(30.0)
    assert record.decisions["reason"][-1].startswith("range complete")


def test_a_detector_fault_mid_scan_closes_the_run_with_a_stop_document(agent: LocalAgent) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    detector = beamline.detector
    original_trigger = detector.trigger
    calls = {"n": 0}

    def failing_trigger():
        calls["n"] += 1
        if calls["n"] > 25:
            calls["dwell at the fault"] = detector.dwell.get()
            raise RuntimeError("detector lost its high voltage")
        return original_trigger()

    detector.trigger = failing_trigger
    RE = RunEngine({})
    collector = RunCollector()
    RE.subscribe(collector)
    with pytest.raises(RuntimeError, match="high voltage"):
        RE(adaptive_scan([detector], beamline.motor, agent=agent))
    record = collector.last()
    assert record.stop["exit_status"] == "fail"
    assert "high voltage" in record.stop["reason"]
    assert record.n_points == 25
    # the fault came on a background step counted shorter; the next scan counts as the user set
    assert calls["dwell at the fault"] < 1.0 and detector.dwell.get() == 1.0


def test_an_agent_error_falls_back_to_fine_steps_and_notes_it(classifier) -> None:
    class BreakingClassifier:
        """The real classifier, failing from its 10th prediction on (a model crash mid-scan)."""

        def __init__(self) -> None:
            self.calls = 0
            self.version, self.classes, self.task = classifier.version, classifier.classes, classifier.task

        def predict(self, two_theta, intensity):
            self.calls += 1
            if self.calls >= 10:
                raise FloatingPointError("model diverged")
            return classifier.predict(two_theta, intensity)

    beamline = make_beamline(sample="CsPbBr3", seed=0)
    record = run(adaptive_scan([beamline.detector], beamline.motor, stop=12.0, agent=LocalAgent(BreakingClassifier())))
    assert record.stop["exit_status"] == "success"
    fallback = record.decisions["fallback"].astype(bool)
    assert all("agent failed" in r and "model diverged" in r for r in record.decisions["reason"][fallback])
    first = int(np.argmax(fallback))
    assert fallback[first:].all() and not fallback[:first].any()
    assert record.two_theta.max() == pytest.approx(12.0)
    assert np.allclose(np.diff(np.sort(record.two_theta))[-10:], 0.04, atol=1e-6)


def test_a_range_outside_the_motor_limits_is_refused_before_any_run(agent: LocalAgent) -> None:
    beamline = make_beamline(sample="CsPbBr3", limits=(0.0, 30.0))
    RE = RunEngine({})
    collector = RunCollector()
    RE.subscribe(collector)
    with pytest.raises(ValueError, match="limits"):
        RE(adaptive_scan([beamline.detector], beamline.motor, agent=agent))
    assert not collector.records
    with pytest.raises(ValueError):
        RE(adaptive_scan([beamline.detector], beamline.motor, start=20.0, stop=10.0, agent=agent))
    with pytest.raises(ValueError):
        RE(adaptive_scan([beamline.detector], beamline.motor, stop=20.0, fine_step=0.4, agent=agent))  # fine > coarse
    # a risk and a confidence that disagree, whichever equals its default: neither may silently win
    for risk, confidence in ((0.1, 0.5), (0.02, 0.5), (0.1, 0.98)):
        with pytest.raises(ValueError, match=f"give risk or confidence, not both: risk {risk:g} means"):
            RE(adaptive_scan([beamline.detector], beamline.motor, stop=20.0, risk=risk, confidence=confidence, agent=agent))
    assert not collector.records


def test_dwell_is_set_on_the_detector_and_recorded(agent: LocalAgent) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    record = run(adaptive_scan([beamline.detector], beamline.motor, stop=8.0, dwell=0.5, agent=agent))
    assert beamline.detector.dwell.get() == 0.5
    assert record.start["plan_args"]["dwell"] == 0.5


def test_no_arguments_use_the_configured_beamline(xrd_agent_home: Path) -> None:
    (xrd_agent_home / "beamline.json").write_text(json.dumps({"sample": "Cs3Bi2I9", "seed": 5}))
    record = run(configured.configured_adaptive_scan())
    assert record.stop["exit_status"] == "success"
    assert record.start["sample"] == "Cs3Bi2I9"
    assert record.start["adaptive"]["agent"]["agent"] == "local"
    (xrd_agent_home / "beamline.json").write_text(json.dumps({"agent": "sideways"}))
    configured.reset()
    with pytest.raises(ValueError, match="agent"):
        configured.load_config()


def test_runs_land_in_tiled_with_their_decisions_and_the_report_reads_them(
    agent: LocalAgent, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import main
    from storage.catalog import open_catalog, subscribe_writer

    catalog = open_catalog()
    RE = RunEngine({})
    subscribe_writer(RE, catalog)
    beamline = make_beamline(sample="CsPbBr3", seed=2)
    (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, stop=9.0, agent=agent))
    stored = open_catalog()[uid]
    assert DECISIONS_STREAM in stored
    decisions = stored[DECISIONS_STREAM].read()
    assert "decision_action" in decisions and "decision_confidence" in decisions
    classes = stored.metadata["start"]["adaptive"]["classes"]
    assert len([k for k in decisions.data_vars if k.startswith("decision_p")]) == len(classes)
    assert stored.metadata["stop"]["exit_status"] == "success"
    # the run explains itself: its outcome is the stop document's reason, searchable by class
    from tiled.queries import Like

    reason = stored.metadata["stop"]["reason"]
    label = reason.removeprefix("class ").split(" (")[0]
    assert label in classes and "; top3 " in reason and "; stop: " in reason and "fallback points: 0" in reason
    assert stored.metadata["start"]["plan_args"]["dwell"] == 1.0  # dwell=None: the detector's own, as used
    catalog = open_catalog()
    assert uid in list(catalog.search(Like("stop.reason", f"class {label} (%")))
    other = next(c for c in classes if c != label)
    assert uid not in list(catalog.search(Like("stop.reason", f"class {other} (%")))
    out = tmp_path / "report.png"
    assert main(["report", uid, "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", "0" * 32]) == 2  # an unknown uid is refused with one line
    assert "no run" in capsys.readouterr().err
    # by default under the data directory, never the working directory; a log axis on request
    from patterns.data_home import xrd_agent_home

    monkeypatch.chdir(tmp_path)
    assert main(["report", uid[:8], "--log"]) == 0
    assert (xrd_agent_home() / "reports" / f"report-{uid[:8]}.png").stat().st_size > 10_000
    assert not list(tmp_path.glob("report-*.png"))


def test_demo_compares_with_a_uniform_fine_scan_and_writes_reports(agent: LocalAgent, tmp_path: Path) -> None:
    from plans.demo import run_adaptive_demo

    results = run_adaptive_demo(["auto-xrd/MASnI3_2-Theta_Omega"], tmp_path, agent=agent, stop=15.0,
                                print_lines=False)
    (result,) = results
    assert result.true_label == "I4/mcm" and result.label in agent.agent.classifier.classes
    assert result.uniform_points == 251 and result.points < result.uniform_points
    assert 0 < result.time_fraction < 1 and result.exit_status == "success"
    assert Path(result.report).read_bytes()[:4] == b"\x89PNG"
    assert "MASnI3" in result.line()
    with pytest.raises(ValueError):
        run_adaptive_demo(["no-such-sample"], tmp_path, agent=agent)
    with pytest.raises(ValueError):
        run_adaptive_demo([], tmp_path, agent=agent)


def test_a_promoted_champion_is_used_from_the_next_run_on_never_mid_scan(classifier) -> None:
    from models.champion import ChampionCache, promote

    promoted = classifier.with_temperature(2.0 * classifier.temperature)
    assert promoted.version != classifier.version
    cache = ChampionCache("space_group")
    agent = LocalAgent(cache.get(), model_source=cache.get)
    beamline = make_beamline(sample="CsPbBr3", seed=4)

    def promote_after_some_points(name: str, doc: dict) -> None:
        if name == "event" and doc.get("seq_num") == 5 and cache.get().version == classifier.version:
            promote(promoted)  # the nightly flow finishing while a scan is running

    first = run(adaptive_scan([beamline.detector], beamline.motor, start=20, stop=30, agent=agent),
                promote_after_some_points)
    second = run(adaptive_scan([beamline.detector], beamline.motor, start=30, stop=40, agent=agent))
    assert first.start["adaptive"]["model_version"] == classifier.version
    assert set(first.decisions["model_version"]) == {classifier.version}
    assert second.start["adaptive"]["model_version"] == promoted.version
    assert set(second.decisions["model_version"]) == {promoted.version}
