"""The loop benchmark's scans: every strategy at every setting of its knob, on one sample at a time.

Each scan gets a fresh simulated beamline with the job's noise seed. Where a strategy's logic is a
plain sequence of positions, the devices are driven directly (`DeviceMeasure`: the same
``motor.set`` / ``detector.trigger`` calls a plan's ``mv`` and ``trigger_and_read`` make, so the same
Poisson draws and the same simulated clock), which spares the RunEngine's per-point document
overhead that would otherwise dominate the benchmark's wall time on a shared machine:

* **uniform**: one 0.04-degree scan, 5-60 deg (1376 points, ``np.linspace`` as `bluesky.plans.scan`
  steps); the 0.08/0.16/0.24/0.32-degree scans are every 2nd/4th/6th/8th of its points -- exactly
  what those scans would have measured (same positions and dwell, independent Poisson counts).
  Their acquisition time does not depend on the sample; it is measured once per step.
* **agent**: `agent.replay.replay` drives the policy with the job's model (wrapped in
  `agent.top_two.TopTwoCams`), ``early_stop=False``, noting every decision's settling evidence;
  the rules that choose positions never read ``risk``, so the scan that stops at risk r is this
  scan up to the first decision settled at r (`agent.settling.first_settled`).
  `Scanner.check_early_stop` runs the real plan (`plans.adaptive.adaptive_scan` in the RunEngine,
  early stopping on) with the same seed: it must stop at the same point with the same answer, and
  its decisions give the in-RunEngine decision latency.
* **slope_adaptive**: bluesky's own slope-driven `bluesky.plans.adaptive_scan` (min step 0.04, max
  step 0.32 degrees, back-steps on), in the RunEngine, one scan per ``target_delta`` (counts).
* `Scanner.runengine_steps`: plain `bluesky.plans.scan` runs whose step times are the RunEngine's
  own per-point cost on these devices.

The final scan of every strategy is classified by the job's model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.policy import PolicyConfig
from agent.settling import confidence_for_risk, first_settled
from bench.loop_collector import PrimaryCollector
from bench.loop_sets import Job
from patterns.exposure import at_run_dwell

SCAN_START, SCAN_STOP, FINE = 5.0, 60.0, 0.04
UNIFORM_STEPS: tuple[float, ...] = (0.04, 0.08, 0.16, 0.24, 0.32)
SLOPE_MIN_STEP, SLOPE_MAX_STEP, SLOPE_THRESHOLD = 0.04, 0.32, 0.8
SLOPE_TARGET_DELTAS: tuple[float, ...] = (50.0, 200.0, 800.0, 6400.0)
"""``target_delta`` values (counts) of the slope-driven baseline swept."""
QUICK_SLOPE_TARGET_DELTAS: tuple[float, ...] = (200.0, 3200.0)
RISKS: tuple[float, ...] = (0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1,
                            0.05, 0.02)
"""Settings of the agent's knob swept (accepted probability of a wrong early answer): every 0.05
from 0.8 down, and the default 0.02. All are read off the same full-path scans
(`agent.settling.first_settled`), so the resolution of the curve costs no scan."""


@dataclass
class ScanOutcome:
    """One strategy at one knob setting on one sample."""

    strategy: str
    knob: float
    sample: str
    label: str | None
    predicted: str
    confidence: float
    correct: bool
    acq_time_s: float
    points: int
    wall_s: float
    fold: int
    stopped_early: bool = False
    """The agent settled before the end of the range (its answer is the settled one)."""
    judged_against: str = "label"
    """What ``correct`` compares with: the sample's ``label``, or for a file without one (a user's
    scan) ``"uniform 0.04"``, the answer of the same model on the uniform 0.04-degree scan."""


def classify(classifier: Any, two_theta, counts) -> tuple[str, float]:
    """Label and confidence of a final scan (sorted first; repeated positions are averaged by `to_grid`)."""
    x = np.asarray(two_theta, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    prediction = classifier.predict(x[order], y[order])
    return str(prediction.label), float(prediction.confidence)


def outcome_of(job: Job, strategy: str, knob: float, predicted: tuple[str, float], acq: float, points: int,
               wall: float) -> ScanOutcome:
    """The `ScanOutcome` of one scan of `job`: `predicted` is its (label, confidence), `acq` its
    simulated acquisition seconds, `wall` its wall seconds."""
    label, confidence = predicted
    return ScanOutcome(strategy, float(knob), job.name, job.label, label, confidence, label == job.label,
                       float(acq), int(points), float(wall), job.fold)


class DeviceMeasure:
    """Measure a position on a simulated beamline without a RunEngine: move, expose, read the counts.

    Parameters
    ----------
    beamline : sim_devices.SimulatedBeamline
        Fresh for the scan; its clock starts the acquisition time.

    Attributes
    ----------
    times_s : list of float
        Simulated acquisition seconds elapsed after each point.
    """

    def __init__(self, beamline: Any) -> None:
        self.beamline, self.began = beamline, beamline.clock.time()
        self.times_s: list[float] = []

    def __call__(self, two_theta: float, exposure: float = 1.0) -> float:
        """Counts at `two_theta`, counted for `exposure` of the detector's dwell and rescaled to it
        (as the plan counts and every reader rescales: `patterns.exposure`)."""
        detector = self.beamline.detector
        base = float(detector.dwell.get())
        if exposure != 1.0:
            detector.dwell.put(base * exposure)
        self.beamline.motor.set(float(two_theta)).wait()
        detector.trigger().wait()
        self.times_s.append(self.beamline.clock.time() - self.began)
        counts = float(detector.counts.get())
        if exposure != 1.0:
            detector.dwell.put(base)
            counts = float(at_run_dwell(counts, base * exposure, base))
        return counts


class Scanner:
    """One RunEngine and its collector; keeps the RunEngine step times and the agent's timings.

    Parameters
    ----------
    start, stop : float
        The scan range of every strategy, degrees (default 5-60, the model's range).
    """

    def __init__(self, start: float = SCAN_START, stop: float = SCAN_STOP) -> None:
        from bluesky import RunEngine

        self.start, self.stop = float(start), float(stop)
        self.n_fine = int(round((self.stop - self.start) / FINE)) + 1
        self.RE = RunEngine({})
        self.collector = PrimaryCollector()
        self.RE.subscribe(self.collector)
        self.step_ms: list[float] = []  # plain bp.scan steps
        self.latencies_ms: list[float] = []  # agent decisions that ran the model, inside the RunEngine
        self.replay_decision_ms: list[float] = []  # the same without the RunEngine
        self.agent_seconds: list[tuple[float, float]] = []  # (agent s, acquisition s) per full-path scan
        self._uniform_time: dict[float, float] = {}

    def _run(self, job: Job, plan_of) -> tuple[float, float]:
        """Run ``plan_of(detectors, motor)`` in the RunEngine on a fresh beamline; (acq_time_s, wall_s)."""
        from sim_devices import make_beamline

        beamline = make_beamline(sample=job.sample, seed=job.noise_seed)
        began_clock, began_wall = beamline.clock.time(), time.perf_counter()
        self.RE(plan_of([beamline.detector], beamline.motor))
        return beamline.clock.time() - began_clock, time.perf_counter() - began_wall

    def _measure(self, job: Job) -> DeviceMeasure:
        from sim_devices import make_beamline

        return DeviceMeasure(make_beamline(sample=job.sample, seed=job.noise_seed))

    def runengine_steps(self, job: Job) -> None:
        """A plain 0.04-degree `bluesky.plans.scan` of the job's sample; its step times join `step_ms`."""
        import bluesky.plans as bp

        self._run(job, lambda d, m: bp.scan(d, m, self.start, self.stop, self.n_fine))
        self.step_ms.extend(self.collector.step_ms().tolist())

    def uniform(self, job: Job) -> list[ScanOutcome]:
        """Uniform scans at every step of `UNIFORM_STEPS` (module docstring)."""
        x = np.linspace(self.start, self.stop, self.n_fine)
        began = time.perf_counter()
        measure = self._measure(job)
        y = np.array([measure(position) for position in x])
        wall = time.perf_counter() - began
        outcomes = []
        for step in UNIFORM_STEPS:
            every = int(round(step / FINE))
            if step not in self._uniform_time:
                timing = self._measure(job)
                for position in x[::every]:
                    timing(position)
                self._uniform_time[step] = timing.times_s[-1]
            outcomes.append(outcome_of(job, "uniform", step, classify(job.classifier, x[::every], y[::every]),
                                       self._uniform_time[step], x[::every].size, wall / every))
        return outcomes

    def file_step(self, job: Job, step: float) -> ScanOutcome:
        """A uniform scan at `step` degrees (a user's file's own step) over the same range, dwell and
        devices: "what the scan I did would cost here" (strategy ``uniform_file_step``)."""
        x = np.linspace(self.start, self.stop, int(round((self.stop - self.start) / step)) + 1)
        measure = self._measure(job)
        began = time.perf_counter()
        y = np.array([measure(position) for position in x])
        return outcome_of(job, "uniform_file_step", step, classify(job.classifier, x, y), measure.times_s[-1], x.size,
                          time.perf_counter() - began)

    def slope(self, job: Job, delta: float) -> ScanOutcome:
        """bluesky's slope-driven adaptive scan at ``target_delta`` `delta` (counts)."""
        import bluesky.plans as bp

        acq, wall = self._run(job, lambda d, m: bp.adaptive_scan(
            d, "det_counts", m, self.start, self.stop, SLOPE_MIN_STEP, SLOPE_MAX_STEP, delta, True, SLOPE_THRESHOLD))
        predicted = classify(job.classifier, self.collector.two_theta, self.collector.counts)
        return outcome_of(job, "slope_adaptive", delta, predicted, acq, len(self.collector.two_theta), wall)

    def agent(self, job: Job, risks: tuple[float, ...], **policy: float) -> list[ScanOutcome]:
        """The agent at every risk of `risks`, from one full-path scan (module docstring); `policy`
        overrides `agent.policy.PolicyConfig` fields other than the risk (e.g. ``coarse_step``,
        ``background_dwell``)."""
        path = self.agent_path(job, **policy)
        return path.outcomes(risks, path.config.min_fraction, path.config.stable_span)

    def agent_path(self, job: Job, **policy: float) -> AgentPath:
        """The agent's full-path scan of `job` (``early_stop=False``), kept so that any risk and any
        settling rule can be read from it (`AgentPath.outcomes`)."""
        from agent.replay import replay
        from agent.top_two import TopTwoCams

        config = PolicyConfig(start=self.start, stop=self.stop, early_stop=False, **policy)
        measure = self._measure(job)
        began = time.perf_counter()
        result = replay(measure, TopTwoCams(job.classifier), config)
        wall = time.perf_counter() - began
        self.replay_decision_ms.extend(result.decision_ms)
        self.agent_seconds.append((sum(result.decision_ms) / 1e3, measure.times_s[-1]))
        return AgentPath(job, config, result, measure.times_s, classify(job.classifier, *result.scan.sorted()), wall)

    def check_early_stop(self, job: Job, risk: float) -> tuple[int, str]:
        """The real plan in the RunEngine at `risk`, early stopping on: (points, final label)."""
        from agent.callback import LocalAgent
        from agent.top_two import TopTwoCams
        from plans.adaptive import adaptive_scan

        self._run(job, lambda d, m: adaptive_scan(d, m, agent=LocalAgent(TopTwoCams(job.classifier)),
                                                  start=self.start, stop=self.stop, risk=risk))
        self.latencies_ms.extend(self.collector.model_decision_ms())
        return len(self.collector.two_theta), classify(job.classifier, self.collector.two_theta, self.collector.counts)[0]


@dataclass
class AgentPath:
    """One full-path scan of the agent and what any settling rule would have stopped it at.

    Attributes
    ----------
    job : Job
        The sample.
    config : PolicyConfig
        The policy it ran (``early_stop=False``).
    result : agent.replay.Replay
        Its decisions' settling evidence (``trail``) and points (``trail_points``).
    times_s : list of float
        Simulated acquisition seconds after each point.
    full : tuple of (str, float)
        The final scan's label and confidence.
    wall_s : float
        Wall time of the scan.
    """

    job: Job
    config: PolicyConfig
    result: Any
    times_s: list[float]
    full: tuple[str, float]
    wall_s: float

    def outcomes(self, risks: tuple[float, ...], min_fraction: float, stable_span: float) -> list[ScanOutcome]:
        """The scan that stops at the first decision settled at each risk (`agent.settling.first_settled`)
        under the settling thresholds `min_fraction` and `stable_span` (degrees)."""
        acq, n_full = self.times_s[-1], self.result.scan.n_points
        outcomes = []
        for risk in risks:
            k = first_settled(self.result.trail, confidence=confidence_for_risk(risk), min_fraction=min_fraction,
                              stable_span=stable_span)
            if k is None:
                outcomes.append(outcome_of(self.job, "agent", risk, self.full, acq, n_full, self.wall_s))
            else:
                n = self.result.trail_points[k]
                stop = self.result.trail[k]
                outcome = outcome_of(self.job, "agent", risk, (stop.label, stop.confidence), self.times_s[n - 1], n,
                                     self.wall_s * n / n_full)
                outcome.stopped_early = True
                outcomes.append(outcome)
        return outcomes
