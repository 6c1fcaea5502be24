"""`adaptive_scan`: a 2-theta step scan whose next step a classification agent picks.

The plan only asks and moves: after each measurement (or batch of back-step measurements) it asks
the agent for a `Decision` through one small interface (``agent.ask(run_uid, n_points, timeout)``),
records the decision in the run's ``"decisions"`` stream and measures the positions it names. The
decision logic lives in `agent.policy` (pure, tested without a RunEngine).

Faults: when the agent does not answer in time, answers with an error, or proposes a position the
plan refuses (outside the range, or already measured), the plan decides for itself -- a fine step
forward (`agent.policy.fallback_decision`) -- records the decision with ``fallback=1``, stops
asking for the rest of the run (a dead agent would otherwise cost a timeout per point) and
notes it in the stop document's ``reason``; the run still closes with ``exit_status="success"``.
Any other exception (a motor limit, a detector fault) closes the run with ``exit_status="fail"``
and the error as reason, then propagates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import RunEngineControlException

from agent.decision import ActionKind, Decision
from agent.partial_scan import PartialScan
from agent.policy import PolicyConfig, fallback_decision
from plans.decision_stream import DECISIONS_STREAM, make_decision_record

DEFAULT_DWELL_S: float | None = None
"""Default dwell: None keeps the detector's configured dwell time."""
DEFAULT_CONFIDENCE = PolicyConfig.confidence


def _first_hint(device: Any, role: str) -> str:
    """The first hinted field of a device (the data key the scan reads)."""
    try:
        return str(device.hints["fields"][0])
    except (AttributeError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{role} {getattr(device, 'name', device)!r} has no hinted field to read") from exc


def _check_limits(motor: Any, start: float, stop: float) -> None:
    """Refuse a range outside the motor's limits (ophyd's (0, 0) means 'no limits')."""
    limits = getattr(motor, "limits", None)
    if not limits:
        return
    low, high = (float(v) for v in limits)
    if low == high == 0:
        return
    if not (low <= start and stop <= high):
        raise ValueError(
            f"scan range {start}..{stop} deg lies outside the limits {low}..{high} deg of motor {motor.name!r}"
        )


def adaptive_scan(
    detectors: Sequence[Any] | None = None,
    motor: Any | None = None,
    *,
    start: float = 5.0,
    stop: float = 60.0,
    coarse_step: float = 0.16,
    fine_step: float = 0.04,
    dwell: float | None = DEFAULT_DWELL_S,
    confidence: float = DEFAULT_CONFIDENCE,
    early_stop: bool = True,
    agent: Any | None = None,
    timeout: float | None = None,
    policy: dict[str, Any] | None = None,
    md: dict[str, Any] | None = None,
):
    """Scan 2-theta from `start` to `stop`, stepping where a streaming classifier says it matters.

    Parameters
    ----------
    detectors : list of ophyd devices, optional
        Detectors to read at each point; the first hinted field of the first detector is the
        counts the agent classifies. Default: the configured beamline's detector
        (`plans.beamline.get_beamline`).
    motor : ophyd positioner, optional
        The 2-theta motor (degrees). Default: the configured beamline's motor.
    start : float
        First position, degrees 2-theta. Must lie within the motor limits.
    stop : float
        Last position, degrees 2-theta (> `start`). Must lie within the motor limits.
    coarse_step : float
        Step where the pattern is flat, degrees.
    fine_step : float
        Step inside peaks, for back-step fills and after a fallback, degrees
        (0 < `fine_step` < `coarse_step`).
    dwell : float, optional
        Counting time per point, seconds; set on the detector's ``dwell`` signal before the run.
        None keeps the detector's current dwell.
    confidence : float
        Calibrated probability (0-1) the current label needs for the class to settle; it settles
        when, past ``min_fraction`` of the range, the label is that confident and every prediction
        over the last ``stable_span`` degrees agreed (see `agent.policy`).
    early_stop : bool
        Stop as soon as the class is settled; False always scans to `stop`.
    agent : agent channel, optional
        Anything with ``describe(timeout)``, ``ask(run_uid, n_points, timeout) -> Decision`` and a
        ``document_callback`` (`agent.callback.LocalAgent`, `agent.remote.RemoteAgent`).
        Default: the configured agent (`plans.beamline.get_agent`).
    timeout : float, optional
        How long to wait for each decision before falling back to fine steps, seconds.
        Default: the configured ``timeout_s`` (1 s).
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
        On an invalid range, steps, thresholds, or a range outside the motor limits (before
        any run is opened).
    """
    from plans import beamline as configured

    if detectors is None or motor is None:
        default_beamline = configured.get_beamline()
        detectors = [default_beamline.detector] if detectors is None else detectors
        motor = default_beamline.motor if motor is None else motor
    detectors = list(detectors)
    if not detectors:
        raise ValueError("adaptive_scan needs at least one detector")
    if agent is None:
        agent = configured.get_agent()
    if timeout is None:
        timeout = configured.default_timeout()
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    config = PolicyConfig(
        start=float(start), stop=float(stop), coarse_step=float(coarse_step), fine_step=float(fine_step),
        confidence=float(confidence), early_stop=bool(early_stop), **(policy or {}),
    )
    _check_limits(motor, config.start, config.stop)
    counts_field = _first_hint(detectors[0], "detector")
    motor_field = _first_hint(motor, "motor")
    if dwell is not None:
        if not (math.isfinite(dwell) and dwell > 0):
            raise ValueError(f"dwell must be a positive number of seconds, got {dwell}")
        if not hasattr(detectors[0], "dwell"):
            raise ValueError(f"detector {detectors[0].name!r} has no dwell signal to set")
        yield from bps.mv(detectors[0].dwell, float(dwell))

    agent_lost_reason = ""
    try:
        agent_info = dict(agent.describe(timeout))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the agent means: scan without it
        agent_lost_reason = f"agent unavailable at start ({type(exc).__name__}: {exc}); fine steps throughout"
        agent_info = {"agent": getattr(agent, "kind", type(agent).__name__), "model_version": "", "classes": []}

    _md: dict[str, Any] = {
        "detectors": [det.name for det in detectors],
        "motors": [motor.name],
        "plan_name": "adaptive_scan",
        "plan_args": {
            "detectors": [repr(det) for det in detectors],
            "motor": repr(motor),
            "start": config.start,
            "stop": config.stop,
            "coarse_step": config.coarse_step,
            "fine_step": config.fine_step,
            "dwell": dwell,
            "confidence": config.confidence,
            "early_stop": config.early_stop,
            "agent": agent_info.get("agent", ""),
            "timeout": timeout,
        },
        "hints": {"dimensions": [(list(motor.hints["fields"]), "primary")]},
        "adaptive": {
            "start": config.start,
            "stop": config.stop,
            "motor_field": motor_field,
            "counts_field": counts_field,
            "policy": config.to_dict(),
            "model_version": str(agent_info.get("model_version", "")),
            "model_task": str(agent_info.get("model_task", "")),
            "classes": [str(c) for c in agent_info.get("classes", [])],
            "agent": {k: v for k, v in agent_info.items() if isinstance(v, (str, int, float, bool))},
            "timeout_s": timeout,
        },
    }
    sample = getattr(detectors[0], "sample", None)
    if sample is not None and hasattr(sample, "get"):
        _md["sample"] = str(sample.get())
    _md.update(md or {})
    recorder = make_decision_record(_md["adaptive"]["classes"])
    scan = PartialScan(config.start, config.stop)
    state = {"lost": agent_lost_reason, "note": agent_lost_reason, "uid": None}
    max_points = 2 * int(math.ceil((config.stop - config.start) / config.fine_step)) + 2

    def ask() -> tuple[Decision, float]:
        started = time.perf_counter()
        if state["lost"]:
            return fallback_decision(scan, config, state["lost"]), 1e3 * (time.perf_counter() - started)
        try:
            decision = agent.ask(state["uid"], scan.n_points, timeout)
            refusal = _refuse(decision, scan, config)
            if refusal:
                raise ValueError(refusal)
        except Exception as exc:  # noqa: BLE001 - the plan goes on without the agent, and says so
            state["lost"] = f"agent lost after {scan.n_points} points ({type(exc).__name__}: {exc}); fine steps from there"
            state["note"] = state["lost"]
            decision = fallback_decision(scan, config, state["lost"])
        return decision, 1e3 * (time.perf_counter() - started)

    def measure(position: float):
        yield from bps.checkpoint()
        yield from bps.mv(motor, position)
        reading = yield from bps.trigger_and_read([*detectors, motor])
        scan.add(reading[motor_field]["value"], reading[counts_field]["value"])

    def body():
        positions: tuple[float, ...] = (config.start,)
        while positions:
            for position in positions:
                yield from measure(position)
            if scan.n_points >= max_points:  # unreachable by design; a guard against a looping agent
                state["note"] = f"stopped at the guard of {max_points} points"
                break
            decision, roundtrip_ms = ask()
            recorder.record(decision, roundtrip_ms)
            yield from bps.trigger_and_read([recorder], name=DECISIONS_STREAM)
            positions = () if decision.action is ActionKind.STOP else decision.positions

    def run():
        state["uid"] = yield from bps.open_run(_md)

        def except_plan(exc: BaseException):
            if isinstance(exc, RunEngineControlException):
                yield from bps.close_run(exit_status=exc.exit_status)
            else:
                yield from bps.close_run(exit_status="fail", reason=f"{type(exc).__name__}: {exc}")

        def else_plan():
            yield from bps.close_run(exit_status="success", reason=state["note"])

        yield from bpp.contingency_wrapper(body(), except_plan=except_plan, else_plan=else_plan)
        return state["uid"]

    subscribed = bpp.subs_wrapper(run(), {"all": [agent.document_callback]}) if agent.document_callback else run()
    return (yield from bpp.stage_wrapper(subscribed, [*detectors, motor]))


def _refuse(decision: Decision, scan: PartialScan, config: PolicyConfig) -> str:
    """Why the plan refuses an agent's decision ("" when it accepts it)."""
    tolerance = 0.25 * config.fine_step
    for position in decision.positions:
        if not config.start - 1e-9 <= position <= config.stop + 1e-9:
            return f"agent proposed {position} deg, outside {config.start}..{config.stop} deg"
        if scan.has_point_near(position, tolerance):
            return f"agent proposed {position} deg, already measured"
    return ""
