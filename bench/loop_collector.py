"""What the loop benchmark keeps of a RunEngine run: its points, decisions and step times."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from patterns.exposure import at_run_dwell, dwell_of_points


def percentiles(values: Any) -> dict[str, Any]:
    """``{"median", "p99", "n"}`` of timings (None for an empty list)."""
    array = np.asarray(values, dtype=float)
    if not array.size:
        return {"median": None, "p99": None, "n": 0}
    return {"median": float(np.median(array)), "p99": float(np.percentile(array, 99)), "n": int(array.size)}


class PrimaryCollector:
    """Keeps the (position, counts) points of the primary stream of the latest run (counts on the
    run's dwell when the run varied it per point: `patterns.exposure.dwell_of_points`).

    Also the wall time (``time.perf_counter``, s) at which each primary event arrived, so the
    median step of a plain ``bp.scan`` (move, trigger, read, documents) can be measured.
    """

    def __init__(self, motor_field: str = "tth", counts_field: str = "det_counts") -> None:
        self.motor_field, self.counts_field = motor_field, counts_field
        self.primary: set[str] = set()
        self.two_theta: list[float] = []
        self.counts: list[float] = []
        self.event_wall_s: list[float] = []
        self.decisions: list[dict[str, Any]] = []
        self.decision_descriptors: set[str] = set()
        self.start: dict[str, Any] = {}
        self.dwell: tuple[str, float] | None = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.start, self.dwell = doc, None
            self.primary.clear(), self.decision_descriptors.clear()
            self.two_theta, self.counts, self.decisions, self.event_wall_s = [], [], [], []
        elif name == "descriptor":
            if doc.get("name") == "primary":
                self.primary.add(doc["uid"])
                self.dwell = dwell_of_points(self.start, list(doc.get("data_keys") or {}))
            elif doc.get("name") == "decisions":
                self.decision_descriptors.add(doc["uid"])
        elif name == "event":
            if doc["descriptor"] in self.primary:
                self.event_wall_s.append(time.perf_counter())
                self.two_theta.append(float(doc["data"][self.motor_field]))
                counts = float(doc["data"][self.counts_field])
                if self.dwell is not None:
                    counts = float(at_run_dwell(counts, doc["data"][self.dwell[0]], self.dwell[1]))
                self.counts.append(counts)
            elif doc["descriptor"] in self.decision_descriptors:
                self.decisions.append(doc["data"])

    def model_decision_ms(self) -> list[float]:
        """Latency of each decision of the latest run that ran the model (it has a label), milliseconds."""
        return [float(d["decision_latency_ms"]) for d in self.decisions if d["decision_label"]]

    def step_ms(self) -> np.ndarray:
        """Wall time between consecutive primary events of the latest run, milliseconds."""
        return 1e3 * np.diff(np.asarray(self.event_wall_s))
