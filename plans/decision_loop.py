"""The plan's side of the plan/agent channel: ask, check, fall back for one point, come back.

`DecisionLoop` asks the agent after every measurement. When the agent does not answer in time,
answers with an error, or proposes a position outside the range, the plan decides that one point
itself -- a fine step forward (`agent.policy.fallback_decision`), recorded with ``fallback=1`` and
the reason -- and asks again later: one late answer costs one fine step, never the rest of the run.
While the agent keeps failing, the plan asks less often (after the k-th consecutive failure it
skips ``2**(k-1) - 1`` points, at most `MAX_SKIPPED_POINTS`), so a dead agent costs at most one
timeout every 16 points; the first answer in time brings the agent back. The first failure, the
first after a recovery and every recovery are logged (logger ``plans.adaptive``, WARNING), so a
session shows them the moment they happen.

``on_agent_failure="pause"`` instead pauses the scan (``bps.pause``, the plan's
``RE.request_pause``) at the first failure; ``RE.resume()`` asks again.

`ScanProgress` also checks every reading: a non-finite, negative or saturated count is *flagged*
(counted, logged, listed in the decisions stream) and the agent never feeds it to the model
(`agent.partial_scan.PartialScan.flag`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from agent.decision import ActionKind, Decision
from agent.policy import PolicyConfig, fallback_decision

logger = logging.getLogger("plans.adaptive")

ON_AGENT_FAILURE = ("fine", "pause")
"""What the plan does when the agent cannot answer: fine steps for that point, or pause and ask."""
MAX_SKIPPED_POINTS = 15
"""While the agent keeps failing, the plan asks at least once every this many points plus one."""


def reading_problem(counts: float, saturation: float | None) -> str:
    """Why a detector reading must not reach the model ("" when it may): NaN, negative, saturated."""
    if not math.isfinite(counts):
        return f"non-finite counts ({counts})"
    if counts < 0:
        return f"negative counts ({counts:g})"
    if saturation is not None and counts >= saturation:
        return f"saturated counts ({counts:g} >= {saturation:g})"
    return ""


@dataclass
class ScanProgress:
    """How far the plan got: what `agent.policy.fallback_decision` needs, not the points themselves.

    Attributes
    ----------
    n_points : int
        Points measured in this run (flagged ones included: they were measured).
    frontier : float
        The furthest position measured, degrees (-inf before the first point).
    last_position : float
        The latest position measured, degrees (NaN before the first point).
    flagged : list of (float, str)
        Position (degrees) and problem of every flagged reading.
    """

    n_points: int = 0
    frontier: float = -math.inf
    last_position: float = math.nan
    flagged: list[tuple[float, str]] = field(default_factory=list)

    def add(self, position: float, counts: float = 0.0, saturation: float | None = None) -> str:
        """Note one measured position (degrees) and its counts; returns the reading's problem ("" if none)."""
        self.n_points += 1
        self.last_position = float(position)
        self.frontier = max(self.frontier, self.last_position)
        problem = reading_problem(float(counts), saturation)
        if problem:
            self.flagged.append((self.last_position, problem))
            logger.warning("point %d at %.4f deg flagged: %s; not given to the model", self.n_points,
                           self.last_position, problem)
        return problem


class DecisionLoop:
    """Ask, check, fall back for one point; one screen of rules (see the module docstring).

    Parameters
    ----------
    agent : agent channel
        ``describe(timeout)``, ``ask(run_uid, n_points, timeout) -> Decision``, ``document_callback``.
    config : PolicyConfig
        The run's thresholds (range and steps for the checks and the fallback).
    timeout : float
        Seconds to wait for each answer.
    on_agent_failure : {"fine", "pause"}
        Fine steps for the failed point, or None from `next_decision` (the plan pauses).

    Attributes
    ----------
    fallback_points : int
        Decisions the plan made without the agent.
    first_fallback_point : int or None
        Points measured when the plan first decided alone.
    last_failure : str
        The latest failure ("" while none).
    """

    def __init__(self, agent: Any, config: PolicyConfig, timeout: float, on_agent_failure: str = "fine") -> None:
        if on_agent_failure not in ON_AGENT_FAILURE:
            raise ValueError(f"on_agent_failure must be one of {ON_AGENT_FAILURE}, got {on_agent_failure!r}")
        self.agent, self.config, self.timeout = agent, config, timeout
        self.on_agent_failure = on_agent_failure
        self.progress = ScanProgress()
        self.roundtrip_ms = math.nan
        self.fallback_points = 0
        self.first_fallback_point: int | None = None
        self.last_failure = ""
        self.first_failure = ""
        self.last_decision: Decision | None = None
        self.last_agent_decision: Decision | None = None
        self._failures = 0  # consecutive
        self.streak_start: int | None = None  # points measured at the first fallback of the latest failure streak
        self.streak_failure = ""
        self._new_streak = False
        self._skip = 0  # points to decide alone before asking again
        # unreachable by design (the policy never proposes a measured position); bounds a looping agent
        self.max_points = 2 * int(math.ceil((config.stop - config.start) / config.fine_step)) + 2
        try:
            self.agent_info = dict(agent.describe(timeout))
        except Exception as exc:  # noqa: BLE001 - any failure to reach the agent means: start without it
            self._failed(f"agent unavailable at start ({type(exc).__name__}: {exc})")
            self.agent_info = {"agent": getattr(agent, "kind", type(agent).__name__), "model_version": "", "classes": []}

    def _failed(self, why: str) -> None:
        if self._failures == 0:
            self._new_streak, self.streak_failure = True, why
            logger.warning("%s; the plan decides alone (fine steps) from point %d and asks again",
                           why, self.progress.n_points)
        self._failures += 1
        self.last_failure = why
        self.first_failure = self.first_failure or why
        self._skip = min(2 ** (self._failures - 1) - 1, MAX_SKIPPED_POINTS)

    def _fallback(self, reason: str) -> Decision:
        self.fallback_points += 1
        if self.first_fallback_point is None:
            self.first_fallback_point = self.progress.n_points
        if self._new_streak:
            self.streak_start, self._new_streak = self.progress.n_points, False
        return fallback_decision(self.progress, self.config, reason)

    def next_decision(self, run_uid: str | None) -> Decision | None:
        """The agent's decision after the latest point, the plan's own when it cannot have one, or
        None when the agent failed and ``on_agent_failure="pause"`` (pause, then call again)."""
        started = time.perf_counter()
        try:
            if self.progress.n_points >= self.max_points:
                return Decision(ActionKind.STOP, (), f"stopped at the guard of {self.max_points} points", fallback=True)
            if self._skip > 0:
                self._skip -= 1
                return self._fallback(f"{self.last_failure}; fine step (agent asked again in {self._skip + 1} points)")
            try:
                decision = self.agent.ask(run_uid, self.progress.n_points, self.timeout)
                outside = [p for p in decision.positions if not self.config.start - 1e-9 <= p <= self.config.stop + 1e-9]
                if outside:
                    raise ValueError(f"agent proposed {outside[0]} deg, outside {self.config.start}..{self.config.stop} deg")
            except Exception as exc:  # noqa: BLE001 - the plan goes on without the agent for this point, and says so
                self._failed(f"agent failed at point {self.progress.n_points} ({type(exc).__name__}: {exc})")
                if self.on_agent_failure == "pause":
                    self._skip = 0
                    logger.warning("pausing the scan: RE.resume() asks the agent again, RE.stop() ends the run")
                    return None
                return self._fallback(f"{self.last_failure}; fine step")
            if self._failures:
                logger.warning("agent answers again at point %d after %d failures", self.progress.n_points, self._failures)
            self._failures = 0
            return decision
        finally:
            self.roundtrip_ms = 1e3 * (time.perf_counter() - started)

    def record_answer(self, decision: Decision) -> None:
        """Keep the latest decision (the run's outcome is read from it and the latest agent answer)."""
        self.last_decision = decision
        if not decision.fallback:
            self.last_agent_decision = decision

    def outcome(self) -> dict[str, Any]:
        """The run's outcome: class, confidence, top 3, why it stopped, fallback points.

        The class is the agent's latest answer only when that answer saw every measured point;
        a class from fewer points (the agent died or fell behind at the end) is stale and is not
        reported (``label`` "", ``confidence`` NaN, ``stale_from_point`` its point count).
        """
        last, agent = self.last_decision, self.last_agent_decision
        result: dict[str, Any] = {"label": "", "confidence": math.nan, "top3": [],
                                  "stop_reason": last.reason if last is not None else "",
                                  "fallback_points": self.fallback_points,
                                  "first_fallback_point": self.first_fallback_point,
                                  "first_failure": self.first_failure,
                                  "fell_back_to_end_from": (self.streak_start if last is not None and last.fallback
                                                            else None),
                                  "last_failure": self.streak_failure,
                                  "flagged_points": len(self.progress.flagged), "stale_from_point": None}
        if agent is None or not agent.label:
            return result
        if agent.n_points < self.progress.n_points:
            result["stale_from_point"] = agent.n_points
            return result
        ranked = sorted(zip(agent.classes, agent.probabilities, strict=True), key=lambda cp: -cp[1])[:3]
        result.update(label=agent.label, confidence=float(agent.confidence),
                      top3=[(str(c), float(p)) for c, p in ranked])
        return result


def outcome_reason(outcome: dict[str, Any]) -> str:
    """The outcome as one line for the stop document's ``reason`` (bluesky's stop document takes
    no other free-form key), e.g. ``class Pm-3m (0.973); top3 Pm-3m 0.973, I4/mcm 0.015, P4mm
    0.008; stop: settled; fallback points: 0; flagged points: 0``."""
    if outcome["label"]:
        head = f"class {outcome['label']} ({outcome['confidence']:.3f}); top3 " + ", ".join(
            f"{c} {p:.3f}" for c, p in outcome["top3"])
    elif outcome["stale_from_point"] is not None:
        head = f"class none (the agent's last answer saw {outcome['stale_from_point']} points, not all)"
    else:
        head = "class none (the agent gave none)"
    fallback = f"fallback points: {outcome['fallback_points']}"
    if outcome["fell_back_to_end_from"] is not None:  # the agent never came back: say from where
        fallback += f" (from point {outcome['fell_back_to_end_from']} to the end: {outcome['last_failure']})"
    elif outcome["fallback_points"]:
        fallback += f" (first at point {outcome['first_fallback_point']}: {outcome['first_failure']})"
    return f"{head}; stop: {outcome['stop_reason']}; {fallback}; flagged points: {outcome['flagged_points']}"
