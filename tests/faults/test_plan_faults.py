"""Issue 11, the plan's side with the in-process agent (real RunEngine, ophyd sim devices, the
shipped model): a range beyond the model's (case 3), a range beyond the motor limits (case 9),
NaN, negative and saturated readings (case 10), one agent failure costs one point or pauses the
scan (case 2, in-process: the real slow remote agent is in test_agent_remote.py). The run's
outcome in its stop document, searched in the catalog (issue 12 item 2), is checked in
tests/test_plans_adaptive.py beside the other tiled round trip (one tiled start-up for both)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from agent.callback import LocalAgent
from plans.adaptive import ScanRangeError, adaptive_scan
from plans.run_record import RunCollector
from sim_devices import make_beamline


@pytest.fixture(scope="module")
def classifier():
    import torch

    import models

    torch.set_num_threads(1)
    return models.load_default("space_group")


class FailingOnce:
    """The real classifier, failing at its `at`-th prediction only (a one-off model error)."""

    def __init__(self, classifier, at: int) -> None:
        self.classifier, self.at, self.calls = classifier, at, 0
        self.version, self.classes, self.task = classifier.version, classifier.classes, classifier.task

    def predict(self, two_theta, intensity):
        self.calls += 1
        if self.calls == self.at:
            raise FloatingPointError("one bad prediction")
        return self.classifier.predict(two_theta, intensity)


def run(RE: RunEngine, plan):
    collector = RunCollector()
    RE.subscribe(collector)
    (uid,) = RE(plan)
    return collector.records[uid]


def test_a_range_beyond_the_models_keeps_the_agent_and_classifies_the_known_part(classifier) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=1)  # motor limits 0-90
    # 0-15 deg crosses the model's start (5 deg) as 0-90 does, in a tenth of the points
    record = run(RunEngine({}), adaptive_scan([beamline.detector], beamline.motor, start=0.0, stop=15.0,
                                              agent=LocalAgent(classifier)))
    decisions = record.decisions
    assert not decisions["fallback"].any(), decisions["reason"][decisions["fallback"].astype(bool)][:1]
    below = decisions["at_position"] < 5.0
    assert below.any() and all("outside the model's range" in r for r in decisions["reason"][below & (decisions["n_points"] >= 4)])
    assert not (decisions["label"][below] != "").any()  # no class from points the model does not know
    labelled = decisions["label"] != ""
    assert labelled.sum() > 0.8 * (~below).sum()  # the agent classifies the part it knows
    assert record.stop["reason"].startswith("class ") and record.final()["label"]


def test_beyond_the_models_range_the_agent_steps_by_its_model_free_rules(classifier) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=2)
    record = run(RunEngine({}), adaptive_scan([beamline.detector], beamline.motor, start=55.0, stop=70.0,
                                              early_stop=False, agent=LocalAgent(classifier)))
    decisions = record.decisions
    assert not decisions["fallback"].any()
    beyond = decisions["at_position"] > 60.0
    assert beyond.sum() > 10 and (decisions["label"][beyond] != "").all()  # still the agent, still a class
    steps = np.diff(np.sort(record.two_theta[record.two_theta > 60.0]))
    assert np.isclose(steps, 0.16, atol=1e-6).any()  # coarse on background, as inside the model's range
    assert record.two_theta.max() == pytest.approx(70.0)


def test_a_range_beyond_the_motor_limits_is_refused_in_one_line_before_moving(classifier) -> None:
    beamline = make_beamline(sample="CsPbBr3", limits=(2.0, 30.0), position=10.0)
    RE = RunEngine({})
    documents: list[str] = []
    RE.subscribe(lambda name, doc: documents.append(name))
    with pytest.raises(ScanRangeError) as refused:
        RE(adaptive_scan([beamline.detector], beamline.motor, start=5.0, stop=60.0, dwell=0.5,
                         agent=LocalAgent(classifier)))
    message = str(refused.value)
    assert "\n" not in message and "tth" in message and "2.0..30.0" in message
    assert documents == []  # no run opened
    assert beamline.motor.position == pytest.approx(10.0) and beamline.detector.dwell.get() == 1.0  # nothing moved or set


def test_nan_negative_and_saturated_readings_are_flagged_and_never_reach_the_model(
    classifier, caplog: pytest.LogCaptureFixture
) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    detector = beamline.detector
    faults = {6: math.nan, 9: -5.0, 12: 5e6}  # trigger number -> counts the detector reports
    triggered = {"n": 0}
    real_trigger = detector.trigger

    def glitching_trigger():
        status = real_trigger()
        triggered["n"] += 1
        if triggered["n"] in faults:
            status.wait(5)
            detector.counts.put(faults[triggered["n"]], internal=True)
        return status

    detector.trigger = glitching_trigger
    agent = LocalAgent(classifier)
    with caplog.at_level(logging.WARNING, logger="plans.adaptive"):
        record = run(RunEngine({}), adaptive_scan([detector], beamline.motor, stop=12.0, saturation=1e6, agent=agent))
    assert record.stop["exit_status"] == "success" and record.n_points > 20  # the scan went on
    assert "flagged points: 3" in record.stop["reason"]
    assert record.decisions["n_flagged"][-1] == 3 and not record.decisions["fallback"].any()
    marked = [text for text in record.decisions["flagged"] if text]
    assert len(marked) == 3 and {"non-finite", "negative", "saturated"} <= {w for t in marked for w in t.split()}
    scan = agent.agent.run(record.uid).builder.scan  # what the model was given
    assert np.all(np.isfinite(scan.counts)) and scan.counts.min() >= 0 and scan.counts.max() < 1e6
    assert scan.n_points == record.n_points - 3
    assert caplog.text.count("not given to the model") == 3


def test_one_agent_failure_costs_one_fine_point_and_the_agent_steers_again(classifier) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    record = run(RunEngine({}), adaptive_scan([beamline.detector], beamline.motor, stop=20.0, early_stop=False,
                                              agent=LocalAgent(FailingOnce(classifier, at=10))))
    fallback = record.decisions["fallback"].astype(bool)
    assert fallback.sum() == 1 and record.decisions["n_fallback"][-1] == 1
    after = record.decisions["action"][int(np.argmax(fallback)) + 1:]
    assert "coarse" in set(after)  # adaptivity is back at the next point
    assert "fallback points: 1 (first at point" in record.stop["reason"] and "one bad prediction" in record.stop["reason"]


def test_pause_on_agent_failure_waits_for_resume_then_asks_again(classifier) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    RE = RunEngine({})
    collector = RunCollector()
    RE.subscribe(collector)
    plan = adaptive_scan([beamline.detector], beamline.motor, stop=12.0, on_agent_failure="pause",
                         agent=LocalAgent(FailingOnce(classifier, at=10)))
    with pytest.raises(RunEngineInterrupted):
        RE(plan)
    assert RE.state == "paused"
    points_at_pause = beamline.detector.sim_time.get()
    RE.resume()
    record = collector.last()
    assert record.stop["exit_status"] == "success" and not record.decisions["fallback"].any()
    positions = np.sort(record.two_theta)
    assert np.min(np.diff(positions)) > 0.02  # nothing measured twice across the pause
    assert record.stop["num_events"]["primary"] == record.n_points and points_at_pause > 0
    with pytest.raises(ValueError, match="on_agent_failure"):
        RE(adaptive_scan([beamline.detector], beamline.motor, on_agent_failure="ask", agent=LocalAgent(classifier)))
