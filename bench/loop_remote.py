"""The remote half of the loop benchmark: decision round trips against ``xrd-agent serve-agent``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.loop_collector import PrimaryCollector


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_remote_roundtrip(samples: Sequence[str], seed: int) -> dict[str, Any]:
    """Round trips of decisions against `xrd-agent serve-agent` in a subprocess (default model)."""
    from bluesky import RunEngine

    from agent.remote import RemoteAgent
    from plans.adaptive import adaptive_scan
    from sim_devices import make_beamline

    ports = [_free_port() for _ in range(3)]
    documents_in, documents_out, decisions = (f"tcp://127.0.0.1:{p}" for p in ports)
    executable = Path(sys.executable).with_name("xrd-agent")
    process = subprocess.Popen(
        [str(executable), "serve-agent", "--documents-in", documents_in, "--documents-out", documents_out,
         "--decisions", decisions],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if not line or line.startswith("serve-agent ready"):
                break
        if not lines or not lines[-1].startswith("serve-agent ready"):
            return {"median": None, "p99": None, "n": 0, "error": "serve-agent did not start: " + "".join(lines)[-500:]}
        client = RemoteAgent(decisions, documents_in)
        fallbacks = 0
        try:
            RE = RunEngine({})
            for sample in samples:
                beamline = make_beamline(sample=sample, seed=seed)
                collector = PrimaryCollector()
                RE.subscribe(collector)
                RE(adaptive_scan([beamline.detector], beamline.motor, agent=client))
                fallbacks += sum(int(d["decision_fallback"]) for d in collector.decisions)
            roundtrips = np.asarray(client.roundtrips_ms)
        finally:
            client.close()
        return {
            "median": float(np.median(roundtrips)),
            "p99": float(np.percentile(roundtrips, 99)),
            "n": int(roundtrips.size),
            "fallback_decisions": fallbacks,
            "scans": len(samples),
        }
    finally:
        process.kill()
        process.wait(10)
