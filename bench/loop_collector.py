"""A RunEngine callback keeping the measured points and the decisions of the latest run (loop benchmark)."""

from __future__ import annotations

from typing import Any


class PrimaryCollector:
    """Keeps the (position, counts) points of the primary stream of the latest run."""

    def __init__(self, motor_field: str = "tth", counts_field: str = "det_counts") -> None:
        self.motor_field, self.counts_field = motor_field, counts_field
        self.primary: set[str] = set()
        self.two_theta: list[float] = []
        self.counts: list[float] = []
        self.decisions: list[dict[str, Any]] = []
        self.decision_descriptors: set[str] = set()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.primary.clear(), self.decision_descriptors.clear()
            self.two_theta, self.counts, self.decisions = [], [], []
        elif name == "descriptor":
            if doc.get("name") == "primary":
                self.primary.add(doc["uid"])
            elif doc.get("name") == "decisions":
                self.decision_descriptors.add(doc["uid"])
        elif name == "event":
            if doc["descriptor"] in self.primary:
                self.two_theta.append(float(doc["data"][self.motor_field]))
                self.counts.append(float(doc["data"][self.counts_field]))
            elif doc["descriptor"] in self.decision_descriptors:
                self.decisions.append(doc["data"])
