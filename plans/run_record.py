"""One adaptive run as arrays: the measured points, the decisions and the start/stop metadata.

A `RunRecord` is what the report draws and what the demo and the benchmark summarise. It is built
either from the documents of a run (`RunCollector`, a callback subscribed while the run executes)
or from a run stored in tiled (`record_from_tiled`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.partial_scan import PRIMARY_STREAM
from patterns.exposure import at_run_dwell, dwell_of_points
from plans.decision_stream import DECISIONS_STREAM, probability_columns

DECISION_PREFIX = "decision_"


@dataclass
class RunRecord:
    """An adaptive run, flattened.

    Parameters
    ----------
    start : dict
        The start document.
    stop : dict
        The stop document ({} while the run is open).
    two_theta : np.ndarray
        Measured positions in measurement order, degrees.
    counts : np.ndarray
        Detector counts at those positions, on the run's dwell (rescaled from each point's own
        dwell when the run varied it: ``start["adaptive"]["dwell_field"]``, `patterns.exposure`).
    decisions : dict of str to np.ndarray
        The ``decisions`` stream, one array per field (without the ``decision_`` prefix), in order,
        plus ``"probabilities"``: float [n_decisions, n_classes] assembled from the per-class fields.
    """

    start: dict[str, Any]
    stop: dict[str, Any] = field(default_factory=dict)
    two_theta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    decisions: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return str(self.start.get("uid", ""))

    @property
    def classes(self) -> list[str]:
        return list(self.start.get("adaptive", {}).get("classes", []))

    @property
    def n_points(self) -> int:
        return int(self.two_theta.size)

    def final(self) -> dict[str, Any]:
        """Label and confidence of the agent's last answer, when that answer saw every measured point.

        A class the agent gave before later points were measured without it (it died or fell
        behind at the end) is stale: ``{"label": "", "confidence": nan}``, as for a run without one.
        """
        labels = self.decisions.get("label", np.array([]))
        confidences = self.decisions.get("confidence", np.array([]))
        seen = self.decisions.get("n_points", np.full(len(labels), self.n_points))
        for label, confidence, n_seen in zip(labels[::-1], confidences[::-1], seen[::-1], strict=True):
            if str(label):
                if int(n_seen) < self.n_points:
                    break
                return {"label": str(label), "confidence": float(confidence)}
        return {"label": "", "confidence": math.nan}

    def stop_reason(self) -> str:
        """Why the run ended: the stop document's exit status and reason when it did not succeed,
        else the final ``stop`` decision's reason (``settled: ...`` for an early stop), else
        ``"range complete"``."""
        actions = self.decisions.get("action", [])
        reasons = self.decisions.get("reason", [])
        status = self.stop.get("exit_status", "?")
        if status != "success":
            return f"{status}: {self.stop.get('reason') or 'no reason given'}"
        if len(actions) and str(actions[-1]) == "stop":
            return str(reasons[-1]) or "stop"
        return "range complete"

    def summary_line(self, acquisition: str) -> str:
        """One line for a finished adaptive run: scan ID and uid, sample, class and calibrated
        confidence, points, `acquisition` (e.g. ``"375.9 s simulated acquisition"``), why it
        stopped and whether the plan decided alone (the session and ``xrd-agent scan`` print it)."""
        final = self.final()
        answer = (f"{final['label']}, confidence {final['confidence']:.3f} (calibrated)" if final["label"]
                  else "no class")
        reasons = [str(r) for r in self.decisions.get("reason", [])]
        fallback = [bool(f) for f in self.decisions.get("fallback", [])]
        if any(fallback):
            fell_back = f"fallback on {sum(fallback)} of {len(fallback)} decisions (first: {reasons[fallback.index(True)]})"
        else:
            fell_back = "no fallback"
        sample = self.start.get("sample")  # the detector's sample name, when it has one
        of = f" of {sample}" if isinstance(sample, str) and sample else ""
        return (f"adaptive_scan {self.start.get('scan_id', '?')} [{self.uid[:8]}]{of}: {answer}, {self.n_points} points, "
                f"{acquisition}, stopped: {self.stop_reason()}, {fell_back}")

    def fallback_used(self) -> bool:
        fallback = self.decisions.get("fallback", np.array([]))
        return bool(np.any(np.asarray(fallback, dtype=bool)))


class RunCollector:
    """A callback keeping the documents of the runs it sees, as `RunRecord`s (by uid, in order)."""

    def __init__(self) -> None:
        self.records: dict[str, RunRecord] = {}
        self._streams: dict[str, tuple[str, str]] = {}  # descriptor uid -> (run uid, stream name)
        self._points: dict[str, tuple[list[float], list[float]]] = {}
        self._decisions: dict[str, dict[str, list[Any]]] = {}
        self._dwell: dict[str, tuple[str, float] | None] = {}  # run uid -> its per-point dwell (field, run dwell s)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.records[doc["uid"]] = RunRecord(start=doc)
            self._points[doc["uid"]] = ([], [])
            self._decisions[doc["uid"]] = {}
        elif name == "descriptor":
            self._streams[doc["uid"]] = (doc["run_start"], doc.get("name", ""))
            if doc.get("name") == PRIMARY_STREAM and doc["run_start"] in self.records:  # looked up once per run
                self._dwell[doc["run_start"]] = dwell_of_points(self.records[doc["run_start"]].start,
                                                                list(doc.get("data_keys", {})))
        elif name == "event":
            run_uid, stream = self._streams.get(doc["descriptor"], ("", ""))
            if run_uid not in self.records:
                return
            adaptive = self.records[run_uid].start.get("adaptive", {})
            if stream == PRIMARY_STREAM:
                positions, counts = self._points[run_uid]
                motor = adaptive.get("motor_field") or _first_motor(self.records[run_uid].start)
                detector = adaptive.get("counts_field")
                positions.append(float(doc["data"][motor]))
                value = float(doc["data"][detector]) if detector else math.nan
                dwell = self._dwell.get(run_uid)
                if dwell is not None:
                    value = float(at_run_dwell(value, doc["data"][dwell[0]], dwell[1]))
                counts.append(value)
            elif stream == DECISIONS_STREAM:
                columns = self._decisions[run_uid]
                for key, value in doc["data"].items():
                    columns.setdefault(key.removeprefix(DECISION_PREFIX), []).append(value)
        elif name == "stop":
            run_uid = doc["run_start"]
            if run_uid in self.records:
                record = self.records[run_uid]
                record.stop = doc
                positions, counts = self._points.pop(run_uid)
                self._dwell.pop(run_uid, None)
                record.two_theta = np.asarray(positions, dtype=np.float64)
                record.counts = np.asarray(counts, dtype=np.float64)
                record.decisions = with_probability_matrix(
                    {k: np.asarray(v) for k, v in self._decisions.pop(run_uid).items()}
                )

    def last(self) -> RunRecord:
        """The most recent run."""
        if not self.records:
            raise LookupError("no run collected yet")
        return next(reversed(self.records.values()))


def _first_motor(start: dict[str, Any]) -> str:
    return str((start.get("motors") or ["tth"])[0])


def record_from_tiled(run: Any) -> RunRecord:
    """A `RunRecord` from a run stored in tiled (``catalog[uid]``).

    Raises
    ------
    ValueError
        If the run is not an adaptive scan or lacks its primary stream.
    """
    start = dict(run.metadata["start"])
    stop = dict(run.metadata.get("stop") or {})
    adaptive = start.get("adaptive")
    if not isinstance(adaptive, dict):
        raise ValueError(f"run {start.get('uid')} is not an adaptive scan (no 'adaptive' metadata)")
    if PRIMARY_STREAM not in run:
        raise ValueError(f"run {start.get('uid')} has no primary stream")
    primary = run[PRIMARY_STREAM].read()
    counts = np.asarray(primary[adaptive["counts_field"]], dtype=np.float64)
    dwell = dwell_of_points(start, list(primary.data_vars))
    if dwell is not None:
        counts = at_run_dwell(counts, np.asarray(primary[dwell[0]], dtype=np.float64), dwell[1])
    record = RunRecord(start=start, stop=stop,
                       two_theta=np.asarray(primary[adaptive["motor_field"]], dtype=np.float64), counts=counts)
    if DECISIONS_STREAM in run:
        decisions = run[DECISIONS_STREAM].read()
        record.decisions = with_probability_matrix({
            str(key).removeprefix(DECISION_PREFIX): np.asarray(decisions[key]) for key in decisions.data_vars
        })
    return record


def with_probability_matrix(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``"probabilities"`` [n_decisions, n_classes] built from the ``p<i>_<class>`` columns."""
    names = probability_columns(list(columns))
    n = len(next(iter(columns.values()))) if columns else 0
    matrix = np.column_stack([columns[name].astype(float) for name in names]) if names else np.zeros((n, 0))
    return {**columns, "probabilities": matrix}
