"""An ophyd device of soft signals whose readings are the run's ``"decisions"`` event stream.

Each adaptive run reads this device once per decision into its own stream, next to ``"primary"``,
so a run stored in tiled carries every decision with its evidence: the position it was made at,
the action and the next positions, the class probabilities, the CAM summary, the model version,
the latency and whether the plan fell back. Every field is a scalar (tiled's tabular storage
takes no array columns): the class probabilities are one signal per class, ``p<index>_<class>``
with the class name made identifier-safe (``I4/mcm`` -> ``p1_I4_mcm``), in the order of
``start["adaptive"]["classes"]``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal

from agent.decision import Decision

DECISIONS_STREAM = "decisions"
"""Name of the event stream holding the decisions."""


class DecisionRecord(Device):
    """Soft signals holding the latest decision (degrees, milliseconds, probabilities 0-1)."""

    n_points = Cpt(Signal, value=0, kind="normal", doc="points measured when deciding")
    at_position = Cpt(Signal, value=math.nan, kind="hinted", doc="last measured position, degrees")
    action = Cpt(Signal, value="", kind="hinted", doc="coarse / fine / backstep / stop")
    next_position = Cpt(Signal, value=math.nan, kind="normal", doc="first next position, degrees (NaN on stop)")
    n_next = Cpt(Signal, value=0, kind="normal", doc="number of next positions")
    dwell_fraction = Cpt(Signal, value=1.0, kind="normal", doc="fraction of the run's dwell the next positions are counted for")
    reason = Cpt(Signal, value="", kind="normal", doc="why this action")
    label = Cpt(Signal, value="", kind="hinted", doc="predicted class")
    confidence = Cpt(Signal, value=math.nan, kind="hinted", doc="calibrated probability of label")
    coverage = Cpt(Signal, value=0.0, kind="normal", doc="fraction of the model grid measured")
    cam_peak = Cpt(Signal, value=math.nan, kind="normal", doc="CAM maximum, degrees")
    cam_high_low = Cpt(Signal, value=math.nan, kind="normal", doc="widest high-CAM region start, degrees")
    cam_high_high = Cpt(Signal, value=math.nan, kind="normal", doc="widest high-CAM region end, degrees")
    model_version = Cpt(Signal, value="", kind="normal", doc="model content hash")
    latency_ms = Cpt(Signal, value=math.nan, kind="normal", doc="agent-side latency, ms")
    roundtrip_ms = Cpt(Signal, value=math.nan, kind="normal", doc="plan-side ask round trip, ms")
    fallback = Cpt(Signal, value=0, kind="normal", doc="1 when the plan decided without the agent")
    n_fallback = Cpt(Signal, value=0, kind="normal", doc="decisions made without the agent so far in the run")
    n_flagged = Cpt(Signal, value=0, kind="normal", doc="readings flagged so far (NaN, negative, saturated)")
    flagged = Cpt(Signal, value="", kind="normal", doc="problems of the readings flagged since the last decision")

    classes: tuple[str, ...] = ()
    _flagged_seen = 0  # flagged readings already listed in an earlier decision

    def record(self, decision: Decision, roundtrip_ms: float, loop: Any = None) -> None:
        """Put a decision into the signals (soft signals: a plain put, no hardware involved).

        `loop` (a `plans.decision_loop.DecisionLoop`, optional) gives the run's fallback and
        flagged-reading counts.
        """
        probabilities = list(decision.probabilities)
        if len(probabilities) != len(self.classes):
            probabilities = [math.nan] * len(self.classes)
        for index, value in enumerate(probabilities):
            getattr(self, probability_attribute(index, self.classes[index])).put(float(value))
        first = decision.positions[0] if decision.positions else math.nan
        values = {
            self.n_points: int(decision.n_points),
            self.at_position: float(decision.position),
            self.action: decision.action.value,
            self.next_position: float(first),
            self.n_next: len(decision.positions),
            self.dwell_fraction: float(decision.dwell_fraction),
            self.reason: decision.reason,
            self.label: decision.label,
            self.confidence: float(decision.confidence),
            self.coverage: float(decision.coverage),
            self.cam_peak: float(decision.cam.peak_two_theta),
            self.cam_high_low: float(decision.cam.high_low),
            self.cam_high_high: float(decision.cam.high_high),
            self.model_version: decision.model_version,
            self.latency_ms: float(decision.latency_ms),
            self.roundtrip_ms: float(roundtrip_ms),
            self.fallback: int(decision.fallback),
        }
        if loop is not None:
            flagged = loop.progress.flagged
            new = flagged[self._flagged_seen:]
            self._flagged_seen = len(flagged)
            values.update({self.n_fallback: int(loop.fallback_points), self.n_flagged: len(flagged),
                           self.flagged: "; ".join(f"{p:.4f} deg: {why}" for p, why in new)})
        for signal, value in values.items():
            signal.put(value)


def probability_attribute(index: int, class_name: str) -> str:
    """Identifier-safe signal name of one class probability (``p1_I4_mcm``)."""
    return f"p{index}_" + re.sub(r"[^0-9A-Za-z]+", "_", class_name).strip("_")


def make_decision_record(classes: tuple[str, ...] | list[str], name: str = "decision") -> DecisionRecord:
    """A `DecisionRecord` with one probability signal per class (data keys ``decision_p<i>_<class>``)."""
    classes = tuple(str(c) for c in classes)
    components = {
        probability_attribute(i, c): Cpt(Signal, value=math.nan, kind="normal", doc=f"probability of {c}")
        for i, c in enumerate(classes)
    }
    record_class = type("DecisionRecordFor%d" % len(classes), (DecisionRecord,), {**components, "classes": classes})
    return record_class(name=name)


def probability_columns(fields: list[str] | tuple[str, ...], prefix: str = "") -> list[str]:
    """The probability fields among `fields` (``[prefix]p<i>_...``), ordered by class index."""
    pattern = re.compile(re.escape(prefix) + r"p(\d+)_")
    found = [(int(m.group(1)), f) for f in fields if (m := pattern.match(f))]
    return [f for _, f in sorted(found)]
