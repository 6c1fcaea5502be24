"""What a run found: its predicted class and confidence, from the stop document or its decisions.

An adaptive run closes with its outcome in the stop document's ``reason`` (bluesky's stop
document has no other free-form key), ``"class Pm-3m (0.973); top3 ...; stop: settled; ..."``
(``plans.decision_loop.outcome_reason``). Runs written before that carry it only in their
``"decisions"`` event stream, whose last row holds the agent's last answer; reading it costs a
request per run, so it is done only for those runs. A plain ``bp.scan`` has neither: no class.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: The head of an outcome reason: "class <label> (<confidence>)" or "class none (...)".
_OUTCOME = re.compile(r"^class (?P<label>\S+) \((?P<confidence>[0-9.]+|nan)\)")
#: The stream and fields of the agent's decisions (``plans.decision_stream``).
DECISIONS_STREAM = "decisions"
_LABEL_FIELD, _CONFIDENCE_FIELD = "decision_label", "decision_confidence"


def outcome_from_stop(stop: Mapping[str, Any] | None) -> tuple[str, float] | None:
    """(class, confidence 0-1) from a stop document's reason; ("", nan) for "class none"; None when absent."""
    reason = str((stop or {}).get("reason") or "")
    if reason.startswith("class none"):
        return "", math.nan
    match = _OUTCOME.match(reason)
    if match is None:
        return None
    return match["label"], float(match["confidence"])


def has_decisions(stop: Mapping[str, Any] | None) -> bool:
    """True when the run wrote at least one row to the decisions stream (stop document's ``num_events``)."""
    return int(((stop or {}).get("num_events") or {}).get(DECISIONS_STREAM, 0) or 0) > 0


def outcome_from_decisions(run: Any) -> tuple[str, float]:
    """(class, confidence) of the last row of a run's decisions stream (one request)."""
    data = run[DECISIONS_STREAM].read([_LABEL_FIELD, _CONFIDENCE_FIELD])
    labels, confidences = data[_LABEL_FIELD].values, data[_CONFIDENCE_FIELD].values
    if len(labels) == 0:
        return "", math.nan
    return str(labels[-1]), float(confidences[-1])


def n_points(stop: Mapping[str, Any] | None) -> int | None:
    """Events in the run's primary stream, from the stop document (None when the run never stopped)."""
    if not stop:
        return None
    return int((stop.get("num_events") or {}).get("primary", 0) or 0)
