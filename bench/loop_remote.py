"""The remote half of the loop benchmark: decision round trips against ``xrd-agent serve-agent``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.loop_collector import PrimaryCollector, percentiles
from patterns.data_home import HOME_ENV, data_home_set


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _scan_all(RE: Any, agent: Any, samples: Sequence[str], seed: int) -> tuple[list[float], int]:
    """Adaptive scans of `samples` through `agent`: (latency of each decision that ran the model, fallbacks)."""
    from plans.adaptive import adaptive_scan
    from sim_devices import make_beamline

    latencies, fallbacks = [], 0
    for sample in samples:
        beamline = make_beamline(sample=sample, seed=seed)
        collector = PrimaryCollector()
        token = RE.subscribe(collector)
        RE(adaptive_scan([beamline.detector], beamline.motor, agent=agent))
        RE.unsubscribe(token)
        latencies += collector.model_decision_ms()
        fallbacks += sum(int(d["decision_fallback"]) for d in collector.decisions)
    return latencies, fallbacks


def measure_remote_roundtrip(samples: Sequence[str], seed: int, task: str = "space_group") -> dict[str, Any]:
    """The agent as a user runs it, served and in-process, on the same samples with the same model.

    ``xrd-agent serve-agent --model <shipped model>`` in a subprocess answers the decisions of
    adaptive scans of `samples` (round trips timed by the client); then the same scans run with
    `agent.callback.LocalAgent` on the same model source (`plans.beamline.agent_model_source`:
    the shipped model with the second class's CAM) inside this process's RunEngine. Both use an
    empty data home, so neither remembers labelled runs of this machine's catalog.

    Returns
    -------
    dict
        ``median``/``p99``/``n`` of the round trips, ``fallback_decisions``, ``scans``, and
        ``in_process``: the same model's in-process decision latencies on the same scans.
    """
    from bluesky import RunEngine

    import models
    from agent.callback import LocalAgent
    from agent.remote import RemoteAgent
    from plans.beamline import BeamlineConfig, agent_model_source

    ports = [_free_port() for _ in range(3)]
    documents_in, documents_out, decisions = (f"tcp://127.0.0.1:{p}" for p in ports)
    executable = Path(sys.executable).with_name("xrd-agent")
    model_dir = str(models.default_model_dir(task))
    with tempfile.TemporaryDirectory(prefix="xrd-agent-bench-home-") as home:
        process = subprocess.Popen(
            [str(executable), "serve-agent", "--documents-in", documents_in, "--documents-out", documents_out,
             "--decisions", decisions, "--task", task, "--model", model_dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", HOME_ENV: home},
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
            RE = RunEngine({})
            try:
                _, fallbacks = _scan_all(RE, client, samples, seed)
                roundtrips = list(client.roundtrips_ms)
            finally:
                client.close()
        finally:
            process.kill()
            process.wait(10)
        with data_home_set(home):
            source = agent_model_source(BeamlineConfig(task=task, model_path=model_dir))
            local, _ = _scan_all(RE, LocalAgent(source(), model_source=source), samples, seed)
    return {**percentiles(roundtrips), "fallback_decisions": fallbacks, "scans": len(samples), "model": "shipped",
            "in_process": {**percentiles(local), "where": "the same model source and scans, LocalAgent inside the RunEngine"}}
