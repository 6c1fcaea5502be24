"""What each retrain consumed, kept whether it promoted or not: the next run's "new" cut-off.

The champion's ``labels_cutoff`` moves only when a challenger is promoted. Were it the only
cut-off, a rejected night would leave the same labels "new" and the next night would train
on identical data and be rejected again. So every retrain that reaches the gate appends one
line to ``<registry>/<task>/retrain-runs.jsonl``: the label-time cut-off of what it trained
on, its decision and its flow run. The next run still trains on *everything* labelled, but
reports as new only the runs labelled after the later of the two cut-offs, and skips (saying
so) when there are none. A crashed or interrupted run writes nothing: its work is redone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from models.champion import registry_dir

#: One JSON object per retrain that reached the gate, per task.
RETRAIN_LOG = "retrain-runs.jsonl"


def log_path(task: str, registry: str | Path | None = None) -> Path:
    """``<registry>/<task>/retrain-runs.jsonl`` (registry default ``XRD_AGENT_HOME/models``)."""
    return registry_dir(registry) / task / RETRAIN_LOG


def last_consumed(task: str, registry: str | Path | None = None) -> dict[str, Any] | None:
    """The newest entry of the log (``labels_cutoff`` unix s, ``status``, ``flow_run``, ``time``); None if empty.

    A malformed line (a torn write of a killed process) is skipped: the earlier entries stand.
    """
    path = log_path(task, registry)
    if not path.is_file():
        return None
    entries = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("labels_cutoff"), (int, float)):
            entries.append(entry)
    return max(entries, key=lambda e: (e["labels_cutoff"], e.get("time", 0.0))) if entries else None


def record_consumed(task: str, registry: str | Path | None, entry: dict[str, Any]) -> None:
    """Append one retrain's record (must hold ``labels_cutoff``, unix seconds); fsync'd before returning."""
    if not isinstance(entry.get("labels_cutoff"), (int, float)):
        raise ValueError(f"a retrain record needs a numeric labels_cutoff, got {entry.get('labels_cutoff')!r}")
    path = log_path(task, registry)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.time(), "task": task, **entry}, sort_keys=True) + "\n"
    with open(path, "a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
