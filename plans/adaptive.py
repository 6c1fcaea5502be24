"""`adaptive_scan`: a 2-theta step scan whose next step a classification agent picks.

The plan only measures and asks: after each measurement (or batch of back-step measurements) it
asks the agent for a `Decision` through one small interface (``agent.ask(run_uid, n_points,
timeout)``), records the decision in the run's ``"decisions"`` stream and measures the positions
it names. The decision logic lives in `agent.policy` (pure, tested without a RunEngine); the
points themselves live once, in the agent's `agent.partial_scan.PartialScan` (rebuilt from the
run's documents): the plan keeps only how far it got (:class:`ScanProgress`).

Faults: when the agent does not answer in time, answers with an error, or proposes a position
outside the range, the plan decides for itself -- a fine step forward
(`agent.policy.fallback_decision`) -- records the decision with ``fallback=1`` and the reason,
and stops asking for the rest of the run (a dead agent would otherwise cost a timeout per point);
the run still closes with ``exit_status="success"``. Any other exception (a motor limit, a
detector fault) closes the run with ``exit_status="fail"`` and the error as reason
(bluesky's `run_decorator`), then propagates.

The name is bluesky's (``bluesky.plans.adaptive_scan``, which adapts the step to the slope of one
signal) on purpose: this is the same idea with a classifier instead of a slope, the session reaches
bluesky's as ``bp.adaptive_scan`` (never bare), and every document, test and run since the first
release says ``adaptive_scan``; a second name would confuse more than the module path that tells
the two apart. The signature is ours (a ``Decision`` per point, not a target delta). Arguments are
explicit: the IPython session fills in the configured beamline and agent
(`plans.beamline.configured_adaptive_scan`), the plan reads no global state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from agent.decision import ActionKind, Decision
from agent.policy import PolicyConfig, fallback_decision
from plans.decision_stream import DECISIONS_STREAM, make_decision_record

DEFAULT_CONFIDENCE = PolicyConfig.confidence
DEFAULT_TIMEOUT_S = 1.0
"""How long the plan waits for each decision before it falls back to fine steps, seconds."""


@dataclass
class ScanProgress:
    """How far the plan got: what `agent.policy.fallback_decision` needs, not the points themselves.

    Attributes
    ----------
    n_points : int
        Points measured in this run.
    frontier : float
        The furthest position measured, degrees (-inf before the first point).
    last_position : float
        The latest position measured, degrees (NaN before the first point).
    """

    n_points: int = 0
    frontier: float = -math.inf
    last_position: float = math.nan

    def add(self, position: float) -> None:
        """Note one measured position (degrees)."""
        self.n_points += 1
        self.last_position = float(position)
        self.frontier = max(self.frontier, self.last_position)


class RunUid:
    """A callback that keeps the uid of the run being written (the plan's key for ``agent.ask``).

    The RunEngine emits the start document before the plan resumes after ``open_run``, so the
    body of a `run_decorator`-wrapped plan can read it at its first step.
    """

    def __init__(self) -> None:
        self.value: str | None = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.value = doc["uid"]


class DecisionLoop:
    """The plan's side of the channel: ask, check, fall back; one screen of rules.

    Parameters
    ----------
    agent : agent channel
        ``describe(timeout)``, ``ask(run_uid, n_points, timeout) -> Decision``, ``document_callback``.
    config : PolicyConfig
        The run's thresholds (range and steps for the checks and the fallback).
    timeout : float
        Seconds to wait for each answer.
    """

    def __init__(self, agent: Any, config: PolicyConfig, timeout: float) -> None:
        self.agent, self.config, self.timeout = agent, config, timeout
        self.progress = ScanProgress()
        self.lost = ""  # why the plan decides alone, "" while the agent answers
        self.roundtrip_ms = math.nan
        # unreachable by design (the policy never proposes a measured position); bounds a looping agent
        self.max_points = 2 * int(math.ceil((config.stop - config.start) / config.fine_step)) + 2
        try:
            self.agent_info = dict(agent.describe(timeout))
        except Exception as exc:  # noqa: BLE001 - any failure to reach the agent means: scan without it
            self.lost = f"agent unavailable at start ({type(exc).__name__}: {exc}); fine steps throughout"
            self.agent_info = {"agent": getattr(agent, "kind", type(agent).__name__), "model_version": "", "classes": []}

    def next_decision(self, run_uid: str | None) -> Decision:
        """The agent's decision after the latest point, or the plan's own when it cannot have one."""
        started = time.perf_counter()
        if self.progress.n_points >= self.max_points:
            decision = Decision(ActionKind.STOP, (), f"stopped at the guard of {self.max_points} points", fallback=True)
        elif self.lost:
            decision = fallback_decision(self.progress, self.config, self.lost)
        else:
            try:
                decision = self.agent.ask(run_uid, self.progress.n_points, self.timeout)
                outside = [p for p in decision.positions if not self.config.start - 1e-9 <= p <= self.config.stop + 1e-9]
                if outside:
                    raise ValueError(f"agent proposed {outside[0]} deg, outside {self.config.start}..{self.config.stop} deg")
            except Exception as exc:  # noqa: BLE001 - the plan goes on without the agent, and says so
                self.lost = (f"agent lost after {self.progress.n_points} points ({type(exc).__name__}: {exc}); "
                             "fine steps from there")
                decision = fallback_decision(self.progress, self.config, self.lost)
        self.roundtrip_ms = 1e3 * (time.perf_counter() - started)
        return decision


def adaptive_scan(
    detectors: Sequence[Any],
    motor: Any,
    *,
    agent: Any,
    start: float = 5.0,
    stop: float = 60.0,
    coarse_step: float = 0.16,
    fine_step: float = 0.04,
    dwell: float | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    early_stop: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    policy: dict[str, Any] | None = None,
    md: dict[str, Any] | None = None,
):
    """Scan 2-theta from `start` to `stop`, stepping where a streaming classifier says it matters.

    See the module docstring for the name, the arguments' source and the faults.

    Parameters
    ----------
    detectors : list of ophyd devices
        Detectors to read at each point; the first hinted field of the first detector is the
        counts the agent classifies.
    motor : ophyd positioner
        The 2-theta motor (degrees).
    agent : agent channel
        ``describe(timeout)``, ``ask(run_uid, n_points, timeout) -> Decision`` and a
        ``document_callback`` (`agent.callback.LocalAgent`, `agent.remote.RemoteAgent`).
    start, stop : float
        Scan range, degrees 2-theta (``start < stop``), within the motor limits.
    coarse_step, fine_step : float
        Steps where the pattern is flat / inside peaks, for back-step fills and after a fallback,
        degrees (0 < `fine_step` < `coarse_step`).
    dwell : float, optional
        Counting time per point, seconds, set on the detector's ``dwell`` signal; None keeps it.
    confidence : float
        Calibrated probability (0-1) the current label needs for the class to settle (see
        `agent.policy`).
    early_stop : bool
        Stop as soon as the class is settled; False always scans to `stop`.
    timeout : float
        Seconds to wait for each decision before falling back to fine steps.
    policy : dict, optional
        Further `agent.policy.PolicyConfig` thresholds (e.g. ``{"min_fraction": 0.5}``).
    md : dict, optional
        Extra metadata for the start document.

    Yields
    ------
    Msg
        Bluesky messages.

    Returns
    -------
    str
        The run's uid.

    Raises
    ------
    ValueError
        On an invalid range, steps, thresholds, timeout or dwell, or a range outside the motor
        limits (before any run is opened).
    """
    detectors = list(detectors)
    config = PolicyConfig(start=float(start), stop=float(stop), coarse_step=float(coarse_step),
                          fine_step=float(fine_step), confidence=float(confidence), early_stop=bool(early_stop),
                          **(policy or {}))
    counts_field, motor_field = _check_setup(detectors, motor, config, timeout, dwell)
    if dwell is not None:
        yield from bps.mv(detectors[0].dwell, float(dwell))
    loop = DecisionLoop(agent, config, timeout)
    run_md = _start_metadata(detectors, motor, config, loop.agent_info,
                             {"dwell": dwell, "timeout": timeout, "counts_field": counts_field, "motor_field": motor_field})
    run_md.update(md or {})
    return (yield from _measured_run(detectors, motor, motor_field, agent, loop, run_md))


def _measured_run(detectors: list[Any], motor: Any, motor_field: str, agent: Any, loop: DecisionLoop,
                  run_md: dict[str, Any]):
    """The run of `adaptive_scan`: measure, ask, record the decision, measure what it names, until STOP.

    Parameters
    ----------
    detectors : list of ophyd devices
        Detectors read at each point (staged with the motor for the run).
    motor : ophyd positioner
        The 2-theta motor (degrees).
    motor_field : str
        The motor's data key (its position, degrees, in each reading).
    agent : agent channel
        Its ``document_callback`` (when not None) is subscribed for the run.
    loop : DecisionLoop
        The plan's side of the channel (asks, checks, falls back; keeps the progress).
    run_md : dict
        The start document's metadata.

    Yields bluesky messages and returns the run's uid, as `adaptive_scan` does.
    """
    config = loop.config
    recorder = make_decision_record(run_md["adaptive"]["classes"])
    run_uid = RunUid()
    callbacks = [run_uid, *([agent.document_callback] if agent.document_callback else [])]

    @bpp.stage_decorator([*detectors, motor])
    @bpp.subs_decorator({"all": callbacks})
    @bpp.run_decorator(md=run_md)
    def measure_until_settled():
        positions: tuple[float, ...] = (config.start,)
        while positions:
            for position in positions:
                yield from bps.checkpoint()
                yield from bps.mv(motor, position)
                reading = yield from bps.trigger_and_read([*detectors, motor])
                loop.progress.add(reading[motor_field]["value"])
            decision = loop.next_decision(run_uid.value)
            recorder.record(decision, loop.roundtrip_ms)
            yield from bps.trigger_and_read([recorder], name=DECISIONS_STREAM)
            positions = decision.positions  # empty for STOP

    return (yield from measure_until_settled())


def _first_hint(device: Any, role: str) -> str:
    """The first hinted field of a device (the data key the scan reads)."""
    try:
        return str(device.hints["fields"][0])
    except (AttributeError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{role} {getattr(device, 'name', device)!r} has no hinted field to read") from exc


def _check_setup(detectors: list[Any], motor: Any, config: PolicyConfig, timeout: float, dwell: float | None) -> tuple[str, str]:
    """Refuse what would fail mid-run; returns the (counts, motor) data keys."""
    if not detectors:
        raise ValueError("adaptive_scan needs at least one detector")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    limits = getattr(motor, "limits", None)
    if limits and tuple(float(v) for v in limits) != (0.0, 0.0):  # ophyd's (0, 0) means "no limits"
        low, high = (float(v) for v in limits)
        if not (low <= config.start and config.stop <= high):
            raise ValueError(f"scan range {config.start}..{config.stop} deg lies outside the limits {low}..{high} deg "
                             f"of motor {motor.name!r}")
    if dwell is not None:
        if not (math.isfinite(dwell) and dwell > 0):
            raise ValueError(f"dwell must be a positive number of seconds, got {dwell}")
        if not hasattr(detectors[0], "dwell"):
            raise ValueError(f"detector {detectors[0].name!r} has no dwell signal to set")
    return _first_hint(detectors[0], "detector"), _first_hint(motor, "motor")


def _start_metadata(detectors: list[Any], motor: Any, config: PolicyConfig, agent_info: dict[str, Any],
                    settings: dict[str, Any]) -> dict[str, Any]:
    """The start document: plan arguments once (``plan_args``), the policy and fields under ``adaptive``.

    The range and steps are read back from ``adaptive.policy`` only (by the agent's
    `PartialScanBuilder` and policy); ``plan_args`` is bluesky's record of the call.
    """
    run_md: dict[str, Any] = {
        "detectors": [det.name for det in detectors],
        "motors": [motor.name],
        "plan_name": "adaptive_scan",
        "plan_args": {
            "detectors": [repr(det) for det in detectors], "motor": repr(motor),
            "start": config.start, "stop": config.stop, "coarse_step": config.coarse_step,
            "fine_step": config.fine_step, "dwell": settings["dwell"], "confidence": config.confidence,
            "early_stop": config.early_stop, "agent": agent_info.get("agent", ""), "timeout": settings["timeout"],
        },
        "hints": {"dimensions": [(list(motor.hints["fields"]), "primary")]},
        "adaptive": {
            "motor_field": settings["motor_field"],
            "counts_field": settings["counts_field"],
            "policy": config.to_dict(),
            "model_version": str(agent_info.get("model_version", "")),
            "model_task": str(agent_info.get("model_task", "")),
            "classes": [str(c) for c in agent_info.get("classes", [])],
            "agent": {k: v for k, v in agent_info.items() if isinstance(v, (str, int, float, bool))},
            "timeout_s": settings["timeout"],
        },
    }
    sample = getattr(detectors[0], "sample", None)
    if sample is not None and hasattr(sample, "get"):
        run_md["sample"] = str(sample.get())
    return run_md
