"""What a run found: its predicted class and confidence, from the stop document or its decisions.

An adaptive run closes with its outcome in the stop document's ``reason`` (bluesky's stop
document has no other free-form key), ``"class Pm-3m (0.973); top3 ...; stop: settled; ..."``
(``plans.decision_loop.outcome_reason``). Runs written before that carry it only in their
``"decisions"`` event stream, whose last row holds the agent's last answer; reading it costs a
request per run (and, through tiled's client, pandas and dask), so it is done only for those
runs, and what it found is kept in :class:`OutcomeCache`: a closed run's decisions never change.
A plain ``bp.scan`` has neither: no class.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
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


def outcome_from_catalog_db(db: Any, node_id: int) -> tuple[str, float]:
    """(class, confidence) of the last decisions row, read from the embedded catalog's database
    (:class:`storage.catalog_db.CatalogDB`; the run's tiled node id); ("", nan) when there is none."""
    row = db.last_row(node_id, DECISIONS_STREAM, (_LABEL_FIELD, _CONFIDENCE_FIELD))
    if row is None:
        return "", math.nan
    return str(row[0]), float(row[1])


def n_points(stop: Mapping[str, Any] | None) -> int | None:
    """Events in the run's primary stream, from the stop document (None when the run never stopped)."""
    if not stop:
        return None
    return int((stop.get("num_events") or {}).get("primary", 0) or 0)


class OutcomeCache:
    """Outcomes read from closed runs' decisions streams, by uid, in one JSON file.

    Parameters
    ----------
    path : Path
        The file (``XRD_AGENT_HOME/cache/run_outcomes.json`` for the CLI); a missing or unreadable
        file is an empty cache.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = {}
        self._outcomes: dict[str, list[Any]] = loaded if isinstance(loaded, dict) else {}
        self._changed = False

    def get(self, uid: str, read: Callable[[], tuple[str, float]]) -> tuple[str, float]:
        """The cached outcome of ``uid``, else ``read()`` (kept for next time)."""
        known = self._outcomes.get(uid)
        if isinstance(known, list) and len(known) == 2:
            return str(known[0]), math.nan if known[1] is None else float(known[1])
        label, confidence = read()
        self._outcomes[uid] = [label, None if math.isnan(confidence) else confidence]
        self._changed = True
        return label, confidence

    def save(self) -> None:
        """Write the file if anything was added (a temporary file, then a rename: never half written)."""
        if not self._changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._outcomes))
        os.replace(tmp, self.path)
        self._changed = False
