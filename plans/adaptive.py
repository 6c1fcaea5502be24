"""`adaptive_scan`: a 2-theta step scan whose next step a classification agent picks.

The plan only measures and asks: after each measurement (or batch of back-step measurements) it
asks the agent for a `Decision` through one small interface (``agent.ask(run_uid, n_points,
timeout)``), records the decision in the run's ``"decisions"`` stream and measures the positions
it names. The decision logic lives in `agent.policy` (pure, tested without a RunEngine); the
points themselves live once, in the agent's `agent.partial_scan.PartialScan` (rebuilt from the
run's documents): the plan keeps only how far it got (:class:`ScanProgress`).

Faults: when the agent does not answer in time, answers with an error, or proposes a position
outside the range, the plan decides that point itself -- a fine step forward -- records the
decision with ``fallback=1`` and the reason, logs a warning, and asks the agent again later
(`plans.decision_loop`); with ``on_agent_failure="pause"`` it pauses instead. A non-finite,
negative or saturated reading is flagged and never reaches the model. The run closes with
``exit_status="success"`` and its outcome as the stop document's ``reason`` (class, confidence,
top 3, why it stopped, fallback and flagged points: `plans.decision_loop.outcome_reason`). Any
other exception (a motor limit, a detector fault) closes the run with ``exit_status="fail"`` and
the error as reason (as bluesky's `run_decorator`), then propagates. A range outside the motor
limits is refused with `ScanRangeError` before anything moves.

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
from collections.abc import Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import RunEngineControlException

from agent.policy import DEFAULT_COARSE_STEP, PolicyConfig
from agent.policy_config import check_risk_and_confidence
from plans.decision_loop import DecisionLoop, ScanProgress, outcome_reason
from plans.decision_stream import DECISIONS_STREAM, make_decision_record

__all__ = ["DEFAULT_RISK", "DEFAULT_TIMEOUT_S", "DecisionLoop", "RunUid", "ScanProgress", "ScanRangeError", "adaptive_scan"]

DEFAULT_RISK = PolicyConfig.risk
DEFAULT_TIMEOUT_S = 1.0
"""How long the plan waits for each decision before it falls back to fine steps, seconds."""


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


def adaptive_scan(
    detectors: Sequence[Any],
    motor: Any,
    *,
    agent: Any,
    start: float = 5.0,
    stop: float = 60.0,
    coarse_step: float = DEFAULT_COARSE_STEP,
    fine_step: float = 0.04,
    dwell: float | None = None,
    risk: float | None = None,
    confidence: float | None = None,
    early_stop: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    on_agent_failure: str = "fine",
    saturation: float | None = None,
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
        The run's counting time per point, seconds, set on the detector's ``dwell`` signal; None
        keeps it. Coarse steps over background are counted for the policy's ``background_dwell``
        fraction of it (``policy={"background_dwell": 1.0}``: every point the same); the dwell
        signal is read with every point (``start["adaptive"]["dwell_field"]``) and restored at
        the end of the run, and every reader rescales counts to the run's dwell
        (`patterns.exposure`).
    risk : float, optional
        The one knob: the calibrated probability of a wrong answer accepted when the scan stops
        early (0-1; default `DEFAULT_RISK`, 0.02: "stop only when P(wrong) < 2 %"). It sets the confidence the label
        needs (``1 - risk``); the class must also be stable, in distribution and on a basis
        (`agent.settling`), else the scan runs to `stop`. The reason of every stop is in the
        decision stream.
    confidence : float, optional
        The same threshold given directly (``1 - risk``), instead of `risk`. Both given and
        disagreeing is a `ValueError` (neither silently wins).
    early_stop : bool
        Stop as soon as the class is settled; False always scans to `stop`.
    timeout : float
        Seconds to wait for each decision before falling back to fine steps.
    on_agent_failure : {"fine", "pause"}
        When the agent fails at a point: a fine step for that point (and ask again later), or
        pause the scan (``RE.resume()`` asks again) for users who would rather not spend beam
        on an unsteered scan.
    saturation : float, optional
        Counts at or above which the detector is saturated: such readings are flagged and not
        given to the model. None: no ceiling (non-finite and negative readings are flagged always).
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
        On an invalid range, steps, thresholds, timeout, dwell or saturation (before any run is
        opened).
    ScanRangeError
        A `ValueError`: the range lies outside the motor limits (one line naming motor and
        limits; before anything moves).
    """
    detectors = list(detectors)
    if risk is not None and confidence is not None:  # here a default typed in counts as given
        check_risk_and_confidence(float(risk), float(confidence))
    # only what the user gave reaches the config: its own defaults fill the rest
    thresholds = {**({"risk": float(risk)} if risk is not None else {}),
                  **({"confidence": float(confidence)} if confidence is not None and risk is None else {}),
                  **(policy or {})}  # policy={"risk": ...} works too
    config = PolicyConfig(start=float(start), stop=float(stop), coarse_step=float(coarse_step),
                          fine_step=float(fine_step), early_stop=bool(early_stop), **thresholds)
    counts_field, motor_field = _check_setup(detectors, motor, config, timeout, dwell)
    if saturation is not None and not (math.isfinite(saturation) and saturation > 0):
        raise ValueError(f"saturation must be a positive number of counts, got {saturation}")
    if dwell is not None:
        yield from bps.mv(detectors[0].dwell, float(dwell))
    loop = DecisionLoop(agent, config, timeout, on_agent_failure)
    used_dwell = float(detectors[0].dwell.get()) if hasattr(detectors[0], "dwell") else None  # what counts, not what was asked
    run_md = _start_metadata(detectors, motor, config, loop.agent_info,
                             {"dwell": used_dwell, "dwell_field": _dwell_field(detectors[0]),
                              "timeout": timeout, "counts_field": counts_field,
                              "motor_field": motor_field, "on_agent_failure": on_agent_failure,
                              "saturation": saturation})
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
    counts_field, saturation = run_md["adaptive"]["counts_field"], run_md["adaptive"]["saturation_counts"]
    run_dwell = run_md["adaptive"]["dwell_s"]
    dwell = detectors[0].dwell if run_md["adaptive"]["dwell_field"] else None
    recorder = make_decision_record(run_md["adaptive"]["classes"])
    run_uid = RunUid()
    callbacks = [run_uid, *([agent.document_callback] if agent.document_callback else [])]

    def measure_until_settled():
        positions: tuple[float, ...] = (config.start,)
        counting = run_dwell
        fraction = 1.0
        while positions:
            for position in positions:
                yield from bps.checkpoint()
                wanted = run_dwell * fraction if dwell is not None else None
                if wanted is not None and wanted != counting:
                    yield from bps.mv(motor, position, dwell, wanted)
                    counting = wanted
                else:
                    yield from bps.mv(motor, position)
                reading = yield from bps.trigger_and_read([*detectors, motor])  # the detector's read holds its dwell
                loop.progress.add(reading[motor_field]["value"], reading[counts_field]["value"], saturation)
            decision = loop.next_decision(run_uid.value)
            while decision is None:  # on_agent_failure="pause": wait for RE.resume(), then ask again
                yield from bps.checkpoint()
                yield from bps.pause()
                decision = loop.next_decision(run_uid.value)
            loop.record_answer(decision)
            recorder.record(decision, loop.roundtrip_ms, loop)
            yield from bps.trigger_and_read([recorder], name=DECISIONS_STREAM)
            positions, fraction = decision.positions, decision.dwell_fraction  # no positions: STOP

    def close_with_outcome():
        # bluesky's stop document takes exit_status and reason only: the outcome goes into reason
        return (yield from bps.close_run(reason=outcome_reason(loop.outcome())))

    def close_on_error(error: Exception):
        if isinstance(error, RunEngineControlException):
            yield from bps.close_run(exit_status=error.exit_status)
        else:
            yield from bps.close_run(exit_status="fail", reason=str(error))

    def restore_dwell():  # a later scan counts as long as the user set, whatever the last point's dwell
        if dwell is not None:
            yield from bps.mv(dwell, run_dwell)

    @bpp.stage_decorator([*detectors, motor])
    @bpp.subs_decorator({"all": callbacks})
    def the_run():
        uid = yield from bps.open_run(md=run_md)
        yield from bpp.contingency_wrapper(bpp.finalize_wrapper(measure_until_settled(), restore_dwell()),
                                           except_plan=close_on_error, else_plan=close_with_outcome)
        return uid

    return (yield from the_run())


class ScanRangeError(ValueError):
    """The requested range lies outside the motor limits (raised before anything moves; one line)."""


def _first_hint(device: Any, role: str) -> str:
    """The first hinted field of a device (the data key the scan reads), never its dwell."""
    dwell = getattr(getattr(device, "dwell", None), "name", None)
    try:
        return str(next(field for field in device.hints["fields"] if field != dwell))
    except (AttributeError, KeyError, StopIteration, TypeError) as exc:
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
            raise ScanRangeError(f"scan range {config.start}..{config.stop} deg lies outside the limits {low}..{high} deg "
                             f"of motor {motor.name!r}")
    if dwell is not None:
        if not (math.isfinite(dwell) and dwell > 0):
            raise ValueError(f"dwell must be a positive number of seconds, got {dwell}")
        if not hasattr(detectors[0], "dwell"):
            raise ValueError(f"detector {detectors[0].name!r} has no dwell signal to set")
    return _first_hint(detectors[0], "detector"), _first_hint(motor, "motor")


def _dwell_field(detector: Any) -> str | None:
    """The data key of the detector's dwell when the detector reads it with every point, else None
    (then the plan counts every point for the run's dwell: a per-point dwell nobody records would
    be a silent misread)."""
    signal = getattr(detector, "dwell", None)
    if signal is None or signal.name not in detector.describe():
        return None
    return str(signal.name)


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
            "fine_step": config.fine_step, "dwell": settings["dwell"], "risk": config.risk, "confidence": config.confidence,
            "early_stop": config.early_stop, "agent": agent_info.get("agent", ""), "timeout": settings["timeout"],
            "on_agent_failure": settings["on_agent_failure"], "saturation": settings["saturation"],
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
            "saturation_counts": settings["saturation"],
            "dwell_s": settings["dwell"],
            "dwell_field": settings["dwell_field"],
        },
    }
    sample = getattr(detectors[0], "sample", None)
    if sample is not None and hasattr(sample, "get"):
        run_md["sample"] = str(sample.get())
    return run_md
