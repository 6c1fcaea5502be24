"""The partial scan: the points a run has measured so far, rebuilt from bluesky event documents.

`PartialScan` is plain numpy (append-only arrays with amortised growth, a cached sorted view), so
the policy can be tested without a RunEngine. `PartialScanBuilder` fills one from the documents of
a run: it reads the motor and detector field names the plan wrote into the start document
(``start["adaptive"]["motor_field"]`` / ``["counts_field"]``) and the range from the policy
(``start["adaptive"]["policy"]["start"]`` / ``["stop"]``), and accepts only events of the
``"primary"`` stream (the plan's own ``"decisions"`` stream is provenance, not data). A reading
that is not a count -- non-finite, negative, or at or above ``start["adaptive"]["saturation_counts"]``
-- is *flagged*: counted and listed (`PartialScanBuilder.flagged`), never added to the scan the
model sees; the scan goes on. When the run varies its dwell per point (the start document names
``start["adaptive"]["dwell_field"]``, read with every point, and ``["dwell_s"]``, the run's dwell),
each point's counts are rescaled to the run's dwell (`patterns.exposure`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from patterns.exposure import at_run_dwell, dwell_of_points

PRIMARY_STREAM = "primary"
"""Name of the event stream that holds the measured points."""


def points_in_model_range(two_theta: np.ndarray, grid: np.ndarray) -> int:
    """How many measured angles (degrees) lie on the model's range ``grid[0]..grid[-1]``: only they
    are class evidence (a scan from 0 deg has no class until it reaches a 5-60 deg model's range)."""
    two_theta = np.asarray(two_theta, dtype=np.float64)
    return int(np.count_nonzero((two_theta >= grid[0]) & (two_theta <= grid[-1])))


class PartialScan:
    """Points measured so far in one forward scan from `start` to `stop`.

    Parameters
    ----------
    start : float
        First angle of the scan range, degrees 2-theta.
    stop : float
        Last angle of the scan range, degrees 2-theta; must exceed `start`.
    capacity : int
        Initial array capacity (points); arrays grow by doubling.

    Raises
    ------
    ValueError
        If the range is empty or not finite.
    """

    def __init__(self, start: float, stop: float, capacity: int = 512) -> None:
        if not (math.isfinite(start) and math.isfinite(stop)) or stop <= start:
            raise ValueError(f"scan range must satisfy start < stop, got start={start}, stop={stop}")
        self.start = float(start)
        self.stop = float(stop)
        self._two_theta = np.empty(max(capacity, 8), dtype=np.float64)
        self._counts = np.empty(max(capacity, 8), dtype=np.float64)
        self._n = 0
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._frontier = -math.inf

    def add(self, two_theta: float, counts: float) -> None:
        """Append one measured point.

        Parameters
        ----------
        two_theta : float
            Motor position, degrees.
        counts : float
            Detector counts at that position, on the run's dwell (`patterns.exposure`; finite, >= 0).

        Raises
        ------
        ValueError
            On a non-finite position or non-finite/negative counts.
        """
        two_theta, counts = float(two_theta), float(counts)
        if not math.isfinite(two_theta):
            raise ValueError(f"measured position must be finite, got {two_theta}")
        if not math.isfinite(counts) or counts < 0:
            raise ValueError(f"counts must be finite and >= 0, got {counts} at {two_theta} deg")
        if self._n == self._two_theta.size:
            self._two_theta = np.resize(self._two_theta, 2 * self._n)
            self._counts = np.resize(self._counts, 2 * self._n)
        self._two_theta[self._n] = two_theta
        self._counts[self._n] = counts
        self._n += 1
        self._sorted = None
        self._frontier = max(self._frontier, two_theta)

    @property
    def n_points(self) -> int:
        """Number of measured points."""
        return self._n

    @property
    def two_theta(self) -> np.ndarray:
        """Positions in measurement order, degrees (a read-only view)."""
        view = self._two_theta[: self._n]
        view.flags.writeable = False
        return view

    @property
    def counts(self) -> np.ndarray:
        """Counts in measurement order (a read-only view)."""
        view = self._counts[: self._n]
        view.flags.writeable = False
        return view

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (degrees) and counts sorted by angle; cached until the next `add`."""
        if self._sorted is None:
            order = np.argsort(self._two_theta[: self._n], kind="stable")
            self._sorted = (self._two_theta[: self._n][order], self._counts[: self._n][order])
        return self._sorted

    @property
    def frontier(self) -> float:
        """The furthest position measured, degrees (-inf before the first point)."""
        return self._frontier

    @property
    def last_position(self) -> float:
        """Position of the most recently measured point, degrees (NaN before the first point)."""
        return float(self._two_theta[self._n - 1]) if self._n else math.nan

    def measured_fraction(self) -> float:
        """Fraction of the range ``[start, stop]`` already passed by the frontier, 0-1."""
        if self._n == 0:
            return 0.0
        span = (self._frontier - self.start) / (self.stop - self.start)
        return float(min(max(span, 0.0), 1.0))

    def has_point_near(self, two_theta: float, tolerance: float) -> bool:
        """Whether a point was measured within `tolerance` degrees of `two_theta`."""
        if self._n == 0:
            return False
        positions, _ = self.sorted()
        i = int(np.searchsorted(positions, two_theta))
        for j in (i - 1, i):
            if 0 <= j < positions.size and abs(positions[j] - two_theta) <= tolerance:
                return True
        return False


class PartialScanBuilder:
    """Rebuild a `PartialScan` from the documents of one run.

    Parameters
    ----------
    start_doc : dict
        The run's start document; must carry ``start_doc["adaptive"]`` with ``"policy"`` (holding
        ``"start"`` and ``"stop"``, degrees), ``"motor_field"`` and ``"counts_field"`` (data keys of
        the primary stream).

    Raises
    ------
    ValueError
        If the start document does not describe an adaptive scan.
    """

    def __init__(self, start_doc: dict[str, Any]) -> None:
        adaptive = start_doc.get("adaptive")
        if not isinstance(adaptive, dict):
            raise ValueError(f"run {start_doc.get('uid')!r} is not an adaptive scan (no 'adaptive' metadata)")
        try:
            self.motor_field = str(adaptive["motor_field"])
            self.counts_field = str(adaptive["counts_field"])
            self.scan = PartialScan(float(adaptive["policy"]["start"]), float(adaptive["policy"]["stop"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"adaptive metadata lacks {exc.args[0]!r}") from exc
        self._start = start_doc
        self.dwell: tuple[str, float] | None = None  # (field, run dwell s) of a run that varies its dwell
        saturation = adaptive.get("saturation_counts")
        self.saturation = None if saturation is None else float(saturation)
        self.flagged: list[tuple[float, float]] = []  # (position deg, counts) of readings kept from the model
        self.run_uid: str = start_doc["uid"]
        self._primary_descriptors: set[str] = set()
        self.closed = False

    def descriptor(self, doc: dict[str, Any]) -> None:
        """Note a descriptor; only the primary stream's descriptors feed the scan."""
        if doc.get("name") == PRIMARY_STREAM:
            keys = doc.get("data_keys", {})
            missing = {self.motor_field, self.counts_field} - set(keys)
            if missing:
                raise ValueError(f"primary stream of run {self.run_uid} lacks data keys {sorted(missing)}")
            self.dwell = dwell_of_points(self._start, list(keys))  # refuses a named dwell the stream lacks
            self._primary_descriptors.add(doc["uid"])

    @property
    def n_seen(self) -> int:
        """Primary points seen, flagged ones included (the plan's count of measured points)."""
        return self.scan.n_points + len(self.flagged)

    def _add(self, two_theta: Any, counts: Any, dwell: Any = None) -> None:
        two_theta, counts = float(two_theta), float(counts)
        # saturation is a property of the detector's raw counts: checked before any rescaling
        if not math.isfinite(counts) or counts < 0 or (self.saturation is not None and counts >= self.saturation):
            self.flagged.append((two_theta, counts))
            return
        if dwell is None:
            self.scan.add(two_theta, counts)
            return
        self.scan.add(two_theta, float(at_run_dwell(counts, float(dwell), self.dwell[1])))

    def event(self, doc: dict[str, Any]) -> bool:
        """Add the point of a primary event; returns whether the event was a measured point."""
        if doc.get("descriptor") not in self._primary_descriptors:
            return False
        data = doc["data"]
        self._add(data[self.motor_field], data[self.counts_field], data[self.dwell[0]] if self.dwell else None)
        return True

    def event_page(self, doc: dict[str, Any]) -> int:
        """Add the points of a primary event page; returns how many were added."""
        if doc.get("descriptor") not in self._primary_descriptors:
            return 0
        positions = doc["data"][self.motor_field]
        counts = doc["data"][self.counts_field]
        dwells = doc["data"][self.dwell[0]] if self.dwell else [None] * len(positions)
        for two_theta, value, dwell in zip(positions, counts, dwells, strict=True):
            self._add(two_theta, value, dwell)
        return len(positions)
