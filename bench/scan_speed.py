"""Benchmark: wall time of a full uniform scan on the simulated diffractometer.

Acceptance line (issue 2): a 5-60 deg scan at 0.04 deg (1376 points) with 1 s dwell reports at
least 1376 s of simulated acquisition time and takes at most 5 s of wall time.

Runs ``RE(bp.scan([det], tth, 5, 60, 1376))`` `repeats` times on fresh beamlines (sample
CsPbBr3, 1 s dwell) after one warm-up scan, and records per run the wall time and the simulated
time; and, for context, the time the devices alone take for the same 1376 moves and triggers
without a RunEngine, and the same scan with ophyd.sim's SynAxis/SynGauss (what is ours vs
bluesky's). The machine's load average is recorded too:
wall times on a shared machine are only comparable at similar load.

Usage: ``xrd-agent bench scan_speed [--quick]`` or ``python -m bench.scan_speed``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

START_DEG, STOP_DEG, N_POINTS, DWELL_S = 5.0, 60.0, 1376, 1.0
WALL_LIMIT_S = 5.0
SIM_TIME_MIN_S = 1376.0
SAMPLE = "CsPbBr3"


def _device_only_seconds() -> float:
    from sim_devices import make_beamline

    beamline = make_beamline(sample=SAMPLE, seed=1, dwell=DWELL_S)
    start = time.perf_counter()
    for position in np.linspace(START_DEG, STOP_DEG, N_POINTS):
        beamline.motor.set(position)
        beamline.detector.trigger()
        beamline.detector.read()
        beamline.motor.read()
    return time.perf_counter() - start


def _ophyd_sim_reference_seconds(engine: Any) -> float:
    """The same bp.scan on ophyd.sim's SynAxis + SynGauss: bluesky's own cost on this machine."""
    import bluesky.plans as bp
    from ophyd.sim import SynAxis, SynGauss

    motor = SynAxis(name="ref_motor")
    # noise="none": SynGauss's Poisson branch fails under numpy 2 (int() of a 1-element array)
    detector = SynGauss("ref_det", motor, "ref_motor", center=30.0, Imax=1000.0, sigma=0.1)
    start = time.perf_counter()
    engine(bp.scan([detector], motor, START_DEG, STOP_DEG, N_POINTS))
    return time.perf_counter() - start


def run(quick: bool, out: Path) -> dict[str, Any]:
    """Time the 1376-point scan; write JSON to `out` and a PNG beside it.

    Parameters
    ----------
    quick : bool
        One timed scan instead of five (same scan size: the acceptance line is about it).
    out : pathlib.Path
        JSON output path.

    Returns
    -------
    dict
        ``wall_s`` (median over runs), ``wall_s_runs``, ``sim_time_s``, ``device_only_s``,
        ``ophyd_sim_reference_s``, ``points``, ``meets_wall_limit``, ``meets_sim_time``, ``load_average``.
    """
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import get_sample, make_beamline

    repeats = 1 if quick else 5
    get_sample(SAMPLE)  # build and cache the sample outside the timing
    engine = RunEngine({}, context_managers=[])
    warm = make_beamline(sample=SAMPLE, seed=0, dwell=DWELL_S)
    engine(bp.scan([warm.detector], warm.motor, START_DEG, STOP_DEG, 50))
    walls, sims, points = [], [], []
    for seed in range(repeats):
        beamline = make_beamline(sample=SAMPLE, seed=seed, dwell=DWELL_S)
        n_events = [0]

        def count(name: str, doc: dict[str, Any], n_events: list[int] = n_events) -> None:
            if name == "event":
                n_events[0] += 1

        start = time.perf_counter()
        engine(bp.scan([beamline.detector], beamline.motor, START_DEG, STOP_DEG, N_POINTS), count)
        walls.append(time.perf_counter() - start)
        sims.append(beamline.clock.time())
        points.append(n_events[0])
    device_only = _device_only_seconds()
    reference = _ophyd_sim_reference_seconds(engine)
    result: dict[str, Any] = {
        "wall_s": statistics.median(walls),
        "sim_time_s": statistics.median(sims),
        "device_only_s": device_only,
        "ophyd_sim_reference_s": reference,
        "points": int(min(points)),
        "wall_s_runs": walls,
        "sim_time_s_runs": sims,
        "meets_wall_limit": statistics.median(walls) <= WALL_LIMIT_S,
        "meets_sim_time": min(sims) >= SIM_TIME_MIN_S,
        "wall_limit_s": WALL_LIMIT_S,
        "scan": {"start_deg": START_DEG, "stop_deg": STOP_DEG, "points": N_POINTS,
                 "dwell_s": DWELL_S, "sample": SAMPLE},
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "quick": quick,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    _plot(result, out.with_suffix(".png"))
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    runs = result["wall_s_runs"]
    axes.bar(range(1, len(runs) + 1), runs, color="tab:blue", label="RunEngine scan, wall")
    axes.axhline(result["device_only_s"], color="tab:green", linestyle=":",
                 label=f"devices alone {result['device_only_s']:.2f} s")
    axes.axhline(result["ophyd_sim_reference_s"], color="tab:gray", linestyle="-.",
                 label=f"same scan with ophyd.sim devices {result['ophyd_sim_reference_s']:.2f} s")
    axes.axhline(WALL_LIMIT_S, color="tab:red", linestyle="--", label=f"limit {WALL_LIMIT_S:g} s")
    axes.set_xlabel("run")
    axes.set_ylabel("wall time (s)")
    axes.set_title(f"{N_POINTS}-point scan, {DWELL_S:g} s dwell: {result['sim_time_s']:.0f} s simulated",
                   fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    summary = run(quick=False, out=Path(__file__).resolve().parent / "results" / "scan_speed.json")
    print(json.dumps({k: summary[k] for k in ("wall_s", "sim_time_s", "device_only_s", "load_average")}))
