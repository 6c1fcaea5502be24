"""Adaptive scans of a few samples, each against a uniform fine scan: what `make demo` shows.

`run_adaptive_demo` runs, per sample, ``adaptive_scan`` on a fresh simulated beamline with the
configured (in-process) agent, and the uniform 0.04 degree scan of the same range on another
fresh beamline (same sample, same noise seed) for the time it would take; it writes the report
PNG of each adaptive run and returns one `DemoResult` per sample.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_DEMO_SAMPLES: tuple[str, ...] = ("CsPbBr3", "auto-xrd/MASnI3_2-Theta_Omega", "Cs3Bi2I9")
"""One CIF-simulated 3D perovskite, one replayed measured pattern, one simulated 0D structure."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo prints for one sample.

    Parameters
    ----------
    sample : str
        Sample name.
    true_label : str or None
        The sample's known space group (None when unknown).
    label : str
        The agent's final class.
    confidence : float
        Its calibrated probability, 0-1.
    points : int
        Points the adaptive scan measured.
    acq_time_s : float
        Simulated acquisition time of the adaptive scan (moves + exposures), seconds.
    uniform_points : int
        Points of the uniform 0.04 degree scan.
    uniform_time_s : float
        Simulated acquisition time of the uniform 0.04 degree scan, seconds.
    wall_s : float
        Wall time of the adaptive scan, seconds.
    uid : str
        Run uid of the adaptive scan.
    exit_status : str
        The adaptive run's exit status.
    report : str
        Path of the report PNG.
    stop_reason : str
        Why the scan ended (`plans.run_record.RunRecord.stop_reason`: ``settled: ...`` for an
        early stop).
    """

    sample: str
    true_label: str | None
    label: str
    confidence: float
    points: int
    acq_time_s: float
    uniform_points: int
    uniform_time_s: float
    wall_s: float
    uid: str
    exit_status: str
    report: str
    stop_reason: str = ""

    @property
    def time_fraction(self) -> float:
        """Adaptive acquisition time over the uniform fine scan's."""
        return self.acq_time_s / self.uniform_time_s if self.uniform_time_s > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time_fraction": self.time_fraction}

    @property
    def correct(self) -> bool | None:
        """Whether the answer is the known label (None when the sample has none)."""
        return None if not self.true_label else self.label == self.true_label

    def line(self) -> str:
        """Two printable lines: the answer (right or wrong against the known label) and the time;
        then why the scan ended and where its report is."""
        verdict = {True: "right", False: f"WRONG (true {self.true_label})", None: "no known label"}[self.correct]
        return (
            f"{self.sample:32s} {self.label:9s} {verdict:24s} confidence {self.confidence:.2f} (calibrated)  "
            f"{self.points:4d} pts {self.acq_time_s:7.1f} s = {100 * self.time_fraction:3.0f} % of uniform 0.04 "
            f"({self.uniform_points} pts {self.uniform_time_s:.1f} s)\n"
            f"    stopped: {self.stop_reason if self.exit_status == 'success' else 'run ' + self.stop_reason}; "
            f"report {self.report}"
        )


def uniform_scan_time(sample: str, seed: int, start: float, stop: float, step: float) -> tuple[int, float]:
    """Run a uniform step scan on a fresh simulated beamline; (points, simulated seconds)."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline

    beamline = make_beamline(sample=sample, seed=seed)
    n_points = int(round((stop - start) / step)) + 1
    began = beamline.clock.time()
    RunEngine({})(bp.scan([beamline.detector], beamline.motor, start, stop, n_points))
    return n_points, beamline.clock.time() - began


def run_adaptive_demo(
    samples: tuple[str, ...] | list[str] = DEFAULT_DEMO_SAMPLES,
    out_dir: Path = Path("demo-output"),
    *,
    seed: int = 0,
    agent: Any | None = None,
    catalog: Any | None = None,
    start: float = 5.0,
    stop: float = 60.0,
    print_lines: bool = True,
) -> list[DemoResult]:
    """Run the demo.

    Parameters
    ----------
    samples : sequence of str
        Sample names (`sim_devices.list_samples`); at least one.
    out_dir : Path
        Where the report PNGs go (created).
    seed : int
        Noise seed of every simulated beamline.
    agent : agent channel, optional
        Default: the configured agent (`plans.beamline.get_agent`).
    catalog : optional
        A tiled catalog (`storage.catalog.open_catalog()`) to store the runs in; None stores nothing.
    start, stop : float
        Scan range, degrees.
    print_lines : bool
        Print one line per sample as it finishes.

    Returns
    -------
    list of DemoResult

    Raises
    ------
    ValueError
        On an empty sample list or an unknown sample name (before anything runs).
    """
    from plans import beamline as configured
    from sim_devices import get_sample

    samples = list(samples)
    if not samples:
        raise ValueError("the demo needs at least one sample")
    truths = {name: get_sample(name).label for name in samples}  # unknown names fail here, early
    agent = agent if agent is not None else configured.get_agent()
    classifier = getattr(getattr(agent, "agent", None), "classifier", None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # runs stored in the user's catalog take the next scan IDs of the data directory, as the
    # session's and `xrd-agent scan`'s do (`plans.run_metadata.make_run_engine`)
    if catalog is not None:
        from plans.run_metadata import make_run_engine

        RE = make_run_engine()
    else:
        from bluesky import RunEngine

        RE = RunEngine({})
    results = []
    for name in samples:
        result = _demo_sample(name, truths[name], seed, agent, classifier, catalog, (start, stop), out_dir, RE)
        if print_lines:
            print(result.line(), flush=True)
        results.append(result)
    return results


def _demo_sample(name: str, truth: str | None, seed: int, agent: Any, classifier: Any, catalog: Any | None,
                 scan_range: tuple[float, float], out_dir: Path, RE: Any) -> DemoResult:
    """Scan one sample with the agent on a fresh beamline, render its report, time the uniform scan.

    Parameters
    ----------
    name : str
        Sample name (`sim_devices.list_samples`).
    truth : str or None
        The sample's true label.
    seed : int
        Noise seed of the simulated beamline.
    agent : agent channel
        The agent the plan asks.
    classifier : Classifier or None
        The in-process agent's model, for the report's class panel (None for a remote agent).
    catalog : optional
        A tiled catalog to store the run in; None stores nothing.
    scan_range : (float, float)
        Scan start and stop, degrees.
    out_dir : Path
        Where the report PNG goes.
    RE : bluesky.RunEngine
        The demo's RunEngine (its subscriptions are this sample's only while it runs).
    """
    from plans.adaptive import adaptive_scan
    from plans.report import render_report
    from plans.run_record import RunCollector
    from sim_devices import make_beamline

    start, stop = scan_range
    beamline = make_beamline(sample=name, seed=seed)
    collector = RunCollector()
    tokens = [RE.subscribe(collector)]
    if catalog is not None:
        from storage.catalog import subscribe_writer

        tokens.append(subscribe_writer(RE, catalog))
    began_clock, began_wall = beamline.clock.time(), time.perf_counter()
    try:
        (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, start=start, stop=stop, agent=agent))
    finally:
        for token in tokens:
            RE.unsubscribe(token)
    wall_s = time.perf_counter() - began_wall
    acq_time_s = beamline.clock.time() - began_clock
    record = collector.records[uid]
    report = render_report(record, out_dir / f"{name.replace('/', '_')}.png", classifier)
    uniform_points, uniform_time_s = uniform_scan_time(name, seed, start, stop, 0.04)
    final = record.final()
    return DemoResult(
        sample=name, true_label=truth, label=final["label"], confidence=final["confidence"],
        points=record.n_points, acq_time_s=acq_time_s, uniform_points=uniform_points,
        uniform_time_s=uniform_time_s, wall_s=wall_s, uid=uid,
        exit_status=str(record.stop.get("exit_status")), report=str(report), stop_reason=record.stop_reason(),
    )
