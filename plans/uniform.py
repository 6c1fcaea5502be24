"""Uniform step scans on the simulated diffractometer, recorded and plotted.

The baseline every adaptive scan is compared with: a plain `bluesky.plans.scan` at a fixed
step, run on a `sim_devices.SimulatedBeamline`, returning what was measured together with the
simulated acquisition time (moves + exposures on the beamline's clock) and the wall time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bluesky import RunEngine

    from sim_devices import SimulatedBeamline


@dataclass(frozen=True)
class UniformScan:
    """One uniform scan and what it cost.

    Attributes
    ----------
    sample : str
        Sample name.
    step : float
        Step, degrees 2theta.
    two_theta : numpy.ndarray
        Measured positions (motor readback), degrees.
    counts : numpy.ndarray
        Detector counts at each position.
    acq_time_s : float
        Simulated acquisition time of the run (moves and exposures), seconds.
    wall_s : float
        Wall-clock time the run took, seconds.
    uid : str
        Run uid.
    """

    sample: str
    step: float
    two_theta: np.ndarray
    counts: np.ndarray
    acq_time_s: float
    wall_s: float
    uid: str

    @property
    def points(self) -> int:
        """Number of measured points."""
        return int(self.two_theta.size)


def points_for_step(start: float, stop: float, step: float) -> int:
    """Number of points of a uniform scan from `start` to `stop` (both included) at `step` deg.

    Raises
    ------
    ValueError
        If `step` is not > 0 or `stop` is not > `start`.
    """
    if not (step > 0 and stop > start):
        raise ValueError(f"uniform scan needs step > 0 and stop > start, got {start}..{stop} at {step}")
    return int(math.floor((stop - start) / step + 1e-9)) + 1


def run_uniform_scan(
    beamline: SimulatedBeamline,
    start: float,
    stop: float,
    step: float,
    *,
    run_engine: RunEngine | None = None,
    md: dict[str, Any] | None = None,
) -> UniformScan:
    """Run ``bluesky.plans.scan`` from `start` at `step` degrees and collect the result.

    Parameters
    ----------
    beamline : SimulatedBeamline
        Devices to use (its clock measures the acquisition time of this run only).
    start, stop : float
        Scan range, degrees 2theta; the last point is the last multiple of `step` <= `stop`.
    step : float
        Step, degrees.
    run_engine : bluesky.RunEngine, optional
        Default: a fresh RunEngine without signal handlers.
    md : dict, optional
        Extra start-document metadata.

    Returns
    -------
    UniformScan
    """
    import bluesky.plans as bp
    from bluesky import RunEngine

    n_points = points_for_step(start, stop, step)
    last = start + (n_points - 1) * step
    engine = run_engine if run_engine is not None else RunEngine({}, context_managers=[])
    events: list[dict[str, Any]] = []
    motor_key = beamline.motor.name
    counts_key = beamline.detector.counts.name

    uids: list[str] = []

    def collect(name: str, doc: dict[str, Any]) -> None:
        if name == "event":
            events.append(doc["data"])
        elif name == "start":
            uids.append(doc["uid"])

    sim_start = beamline.clock.time()
    wall_start = time.perf_counter()
    metadata = {"step_deg": step, "scan_kind": "uniform", **(md or {})}
    engine(bp.scan([beamline.detector], beamline.motor, start, last, n_points, md=metadata), collect)
    wall = time.perf_counter() - wall_start
    return UniformScan(
        sample=beamline.sample.name,
        step=float(step),
        two_theta=np.array([e[motor_key] for e in events], dtype=float),
        counts=np.array([e[counts_key] for e in events], dtype=float),
        acq_time_s=beamline.clock.time() - sim_start,
        wall_s=wall,
        uid=uids[0] if uids else "",
    )


def plot_uniform_scans(scans: list[UniformScan], path: Path, title: str | None = None) -> Path:
    """Write a PNG comparing uniform scans: counts per point against 2theta.

    With the detector's fixed acceptance window, counts per point share one scale across
    steps; a coarse step shows as missing or lower narrow peaks. The legend gives points and
    simulated acquisition time.

    Parameters
    ----------
    scans : list of UniformScan
        Scans to overlay (e.g. the 0.16 and 0.04 degree scans of one sample).
    path : pathlib.Path
        Output PNG.
    title : str, optional
        Figure title; default the sample name.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (full, zoom) = plt.subplots(2, 1, figsize=(10, 7), gridspec_kw={"height_ratios": [3, 2]})
    ordered = sorted(scans, key=lambda s: s.step)  # fine first, coarse drawn on top
    for scan in ordered:
        label = (f"step {scan.step:g} deg: {scan.points} points, "
                 f"{scan.acq_time_s / 60:.1f} min simulated")
        full.plot(scan.two_theta, scan.counts, linewidth=0.8, marker=".", markersize=2, label=label)
        zoom.plot(scan.two_theta, scan.counts, linewidth=0.8, marker="o", markersize=3, label=label)
    if ordered:
        # zoom on the strongest peak of the finest scan, where under-sampling shows
        finest = ordered[0]
        centre = float(finest.two_theta[int(np.argmax(finest.counts))])
        zoom.set_xlim(centre - 1.0, centre + 1.0)
        zoom.set_title(f"zoom: strongest peak of the {finest.step:g} deg scan", fontsize=9)
    full.set_title(title or (scans[0].sample if scans else ""))
    full.legend(loc="upper right", fontsize=8)
    for axes in (full, zoom):
        axes.set_xlabel("2theta (deg)")
        axes.set_ylabel("counts per point")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
