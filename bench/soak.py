"""Benchmark: many consecutive adaptive scans in one process leak no memory, threads, sockets or files.

Acceptance line (issue 11 case 13): 200 consecutive adaptive scans in one process; resident memory
grows by at most 50 MB, no thread, socket or file handle is left behind, no event is lost.

One RunEngine, one simulated beamline, one classifier (the shipped space-group model), as in a
beamline session; each scan is ``adaptive_scan`` with a fresh `LocalAgent`, stored through the
spooled writer into an embedded tiled catalog in a temporary data directory. The scans are short
(10-13 deg 2-theta, a few dozen points each) so that 200 finish in minutes; that is what the
JSON's ``scan_range_deg`` says. Memory, threads and handles are measured after ``warmup_scans``
scans (first-use caches: torch, tiled, numba) and again after the last. Every run is read back
from the catalog: ``events_lost`` counts points measured but not stored.

Usage: ``xrd-agent bench soak [--quick]`` (``--quick``: 20 scans).
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SCANS, QUICK_SCANS, WARMUP_SCANS = 200, 20, 5
START_DEG, STOP_DEG = 10.0, 13.0
RSS_LIMIT_MB = 50.0
DRAIN_LIMIT_S = 600.0


def _process_state() -> dict[str, Any]:
    """RSS (MB), threads (by name), open file descriptors and sockets of this process, after a GC."""
    import psutil

    gc.collect()
    proc = psutil.Process()
    return {
        "rss_mb": proc.memory_info().rss / 2**20,
        "threads": sorted(t.name for t in threading.enumerate()),
        "os_threads": proc.num_threads(),
        "fds": proc.num_fds(),
        "sockets": len(proc.net_connections(kind="all")),
    }


def _settled_state(baseline_threads: int, wait_s: float = 5.0) -> dict[str, Any]:
    """The process state once threads that are ending (a run's writer thread after its stop) have ended."""
    deadline = time.monotonic() + wait_s
    state = _process_state()
    while len(state["threads"]) > baseline_threads and time.monotonic() < deadline:
        time.sleep(0.1)
        state = _process_state()
    return state


class _PointCounter:
    """Counts the primary-stream events of each run (the points measured)."""

    def __init__(self) -> None:
        self.points: dict[str, int] = {}
        self._primary: dict[str, str] = {}

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "descriptor" and doc.get("name") == "primary":
            self._primary[doc["uid"]] = doc["run_start"]
        elif name == "event" and doc["descriptor"] in self._primary:
            run = self._primary[doc["descriptor"]]
            self.points[run] = self.points.get(run, 0) + 1


def _stored_points(catalog: Any, uid: str) -> int:
    """Rows of the run's primary table in the catalog (0 if the run is not there)."""
    from storage.catalog import get_run

    try:
        return len(get_run(catalog, uid)["primary"].base["internal"].read())
    except KeyError:
        return 0


def soak(scans: int, warmup: int = WARMUP_SCANS) -> dict[str, Any]:
    """Run ``scans`` adaptive scans in this process and return the leak figures (see the module docstring)."""
    import torch
    from bluesky import RunEngine

    import models
    from agent.callback import LocalAgent
    from plans.adaptive import adaptive_scan
    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer
    from storage.spool import spool_dir

    torch.set_num_threads(1)
    classifier = models.load_default("space_group")
    catalog = open_catalog()
    RE = RunEngine({})
    subscribe_writer(RE, catalog)
    counter = _PointCounter()
    RE.subscribe(counter)
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    began = time.perf_counter()
    uids: list[str] = []
    baseline: dict[str, Any] = {}
    for index in range(scans):
        if index == warmup:
            baseline = _settled_state(len(threading.enumerate()))
        (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, start=START_DEG, stop=STOP_DEG,
                                  agent=LocalAgent(classifier)))
        uids.append(uid)
    wall_s = time.perf_counter() - began
    # on a loaded machine tiled can fall behind the scans (each run's writer thread waits its turn):
    # let the writes finish before counting threads and stored points
    final = _settled_state(len(baseline["threads"]), wait_s=DRAIN_LIMIT_S)
    drain_s = time.perf_counter() - began - wall_s
    stored = {uid: _stored_points(catalog, uid) for uid in uids}
    lost = sum(max(counter.points[uid] - stored[uid], 0) for uid in uids)
    leaked_threads = sorted(set(final["threads"]) - set(baseline["threads"]))
    points = sorted(counter.points[uid] for uid in uids)
    return {
        "scans": scans,
        "scan_range_deg": [START_DEG, STOP_DEG],
        "points_per_scan_median": points[len(points) // 2],
        "points_total": sum(points),
        "warmup_scans": warmup,
        "rss_after_warmup_mb": round(baseline["rss_mb"], 1),
        "rss_end_mb": round(final["rss_mb"], 1),
        "rss_growth_mb": round(final["rss_mb"] - baseline["rss_mb"], 1),
        "rss_limit_mb": RSS_LIMIT_MB,
        "events_lost": lost,
        "runs_left_in_spool": len(list(spool_dir().glob("*.jsonl"))),
        "threads_leaked": max(len(final["threads"]) - len(baseline["threads"]), 0),
        "leaked_thread_names": leaked_threads,
        "os_threads_leaked": max(final["os_threads"] - baseline["os_threads"], 0),
        "fds_leaked": max(final["fds"] - baseline["fds"], 0),
        "sockets_leaked": max(final["sockets"] - baseline["sockets"], 0),
        "wall_s": round(wall_s, 1),
        "drain_s": round(drain_s, 1),
        "seconds_per_scan": round(wall_s / scans, 3),
    }


def run(quick: bool, out: Path) -> dict[str, Any]:
    """Soak ``SCANS`` (quick: ``QUICK_SCANS``) scans in a temporary data directory; write JSON to ``out``."""
    previous = os.environ.get("XRD_AGENT_HOME")
    with tempfile.TemporaryDirectory(prefix="xrd-agent-soak-") as home:
        os.environ["XRD_AGENT_HOME"] = home  # the soak's runs do not go into the user's catalog
        try:
            result = soak(QUICK_SCANS if quick else SCANS)
        finally:
            if previous is None:
                os.environ.pop("XRD_AGENT_HOME", None)
            else:
                os.environ["XRD_AGENT_HOME"] = previous
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    result["passes"] = bool(result["rss_growth_mb"] <= RSS_LIMIT_MB and result["events_lost"] == 0
                            and result["threads_leaked"] == 0 and result["fds_leaked"] == 0
                            and result["sockets_leaked"] == 0)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    from cli.bench import RESULTS_DIR

    print(json.dumps(run(False, RESULTS_DIR / "soak.json"), indent=1))
