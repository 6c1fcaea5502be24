"""The record types the plan and the agent exchange: an action and the decision that carries it.

The plan/agent channel is deliberately small (after bluesky-adaptive's per-event queue): the plan
asks for the next action and gets one `Decision` back. A decision names *what* to do (`ActionKind`),
*where* to measure next (`positions`, degrees 2-theta, possibly several for a back-step that fills a
region at the fine step) and *why* (the prediction it was based on, a CAM summary, the latency). The
plan writes every decision into the run's ``"decisions"`` stream, so the run carries its provenance.

Everything here is plain data (no torch, no bluesky) and converts to and from msgpack/JSON-safe
dictionaries for the remote channel.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class ActionKind(str, Enum):
    """What the plan does next."""

    COARSE = "coarse"
    """Step forward by the coarse step."""
    FINE = "fine"
    """Step forward by the fine step."""
    BACKSTEP = "backstep"
    """Go back and measure, at the fine step, a region that was crossed at the coarse step."""
    STOP = "stop"
    """The class is settled (or the range is done): close the run."""


@dataclass(frozen=True)
class CamSummary:
    """A compact description of the class-activation map over the measured range.

    Parameters
    ----------
    peak_two_theta : float
        Angle of the CAM maximum, degrees (NaN when no CAM is available).
    high_low : float
        Lower edge of the widest contiguous region where the CAM is at least half its maximum, degrees.
    high_high : float
        Upper edge of that region, degrees.
    top_two_theta : tuple of float
        Angles of the (up to) three strongest CAM local maxima, degrees, strongest first.
    """

    peak_two_theta: float = math.nan
    high_low: float = math.nan
    high_high: float = math.nan
    top_two_theta: tuple[float, ...] = ()


@dataclass(frozen=True)
class Decision:
    """One answer of the agent: the next action and the evidence behind it.

    Parameters
    ----------
    action : ActionKind
        What to do next.
    positions : tuple of float
        Motor positions to measure next, degrees 2-theta, in the order to measure them. Empty for
        ``STOP``. One position for ``COARSE``/``FINE``; one or more for ``BACKSTEP``.
    reason : str
        A short human-readable reason (``"settled"``, ``"peak crossed at coarse step"``, ...).
    n_points : int
        How many points of the run the decision was based on.
    position : float
        Motor position of the last measured point, degrees (NaN before the first point).
    label : str
        Predicted class ("" when no prediction was made).
    confidence : float
        Calibrated probability of ``label``, 0-1 (NaN when no prediction was made).
    probabilities : tuple of float
        Calibrated class probabilities in the order of ``classes``.
    classes : tuple of str
        Class names of the model.
    coverage : float
        Fraction of the model grid backed by measurement, 0-1.
    cam : CamSummary
        Where the evidence for ``label`` lies.
    model_version : str
        Content hash id of the model that made the prediction ("" when none).
    latency_ms : float
        Time the agent spent producing this decision (rebuilding the scan, preprocessing, model,
        policy), milliseconds. For a remote agent the plan overwrites it with the round trip.
    fallback : bool
        True when the plan decided without the agent (timeout, dead agent, agent error).
    dwell_fraction : float
        Count each of `positions` for this fraction of the run's dwell, 0-1 (1: the run's dwell;
        less for coarse steps over background, `agent.policy.PolicyConfig.background_dwell`).
    """

    action: ActionKind
    positions: tuple[float, ...]
    reason: str
    n_points: int = 0
    position: float = math.nan
    label: str = ""
    confidence: float = math.nan
    probabilities: tuple[float, ...] = ()
    classes: tuple[str, ...] = ()
    coverage: float = 0.0
    cam: CamSummary = field(default_factory=CamSummary)
    model_version: str = ""
    latency_ms: float = math.nan
    fallback: bool = False
    dwell_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.action, ActionKind):
            object.__setattr__(self, "action", ActionKind(self.action))
        positions = tuple(float(p) for p in self.positions)
        if not all(math.isfinite(p) for p in positions):
            raise ValueError(f"decision positions must be finite, got {positions}")
        if self.action is ActionKind.STOP and positions:
            raise ValueError("a STOP decision carries no positions")
        if self.action is not ActionKind.STOP and not positions:
            raise ValueError(f"a {self.action.value} decision needs at least one position")
        object.__setattr__(self, "positions", positions)
        if not (math.isfinite(self.dwell_fraction) and 0 < self.dwell_fraction <= 1):
            raise ValueError(f"a decision's dwell fraction must be in (0, 1], got {self.dwell_fraction}")
        if len(self.probabilities) != len(self.classes):
            raise ValueError(
                f"{len(self.probabilities)} probabilities for {len(self.classes)} classes"
            )

    def to_dict(self) -> dict[str, Any]:
        """A msgpack/JSON-safe dictionary (enums as strings, tuples as lists)."""
        record = asdict(self)
        record["action"] = self.action.value
        record["positions"] = list(self.positions)
        record["probabilities"] = list(self.probabilities)
        record["classes"] = list(self.classes)
        record["cam"]["top_two_theta"] = list(self.cam.top_two_theta)
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Decision:
        """Inverse of :meth:`to_dict`; raises ValueError on a malformed record."""
        try:
            cam = record.get("cam") or {}
            return cls(
                action=ActionKind(record["action"]),
                positions=tuple(record["positions"]),
                reason=str(record["reason"]),
                n_points=int(record.get("n_points", 0)),
                position=float(record.get("position", math.nan)),
                label=str(record.get("label", "")),
                confidence=float(record.get("confidence", math.nan)),
                probabilities=tuple(float(p) for p in record.get("probabilities", ())),
                classes=tuple(str(c) for c in record.get("classes", ())),
                coverage=float(record.get("coverage", 0.0)),
                cam=CamSummary(
                    peak_two_theta=float(cam.get("peak_two_theta", math.nan)),
                    high_low=float(cam.get("high_low", math.nan)),
                    high_high=float(cam.get("high_high", math.nan)),
                    top_two_theta=tuple(float(t) for t in cam.get("top_two_theta", ())),
                ),
                model_version=str(record.get("model_version", "")),
                latency_ms=float(record.get("latency_ms", math.nan)),
                fallback=bool(record.get("fallback", False)),
                dwell_fraction=float(record.get("dwell_fraction", 1.0)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed decision record: {exc!r}") from exc
