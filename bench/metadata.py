"""`xrd-agent bench metadata`: wall time of the metadata-only commands, `runs` and `label`.

Acceptance (issues 12 and 14): each answers in <= 3 s on the 2-core machine, with the embedded
catalog and with a served one (``xrd-agent tiled serve``, reached by ``--uri``/``--api-key``).
Each command is run as a user runs it, ``python -m cli ...`` in a fresh process (interpreter
start and every import included), ``repeats`` times; the medians are the figures. The catalog
holds ``n_runs`` real ``bp.scan`` runs written by TiledWriter, in a temporary data directory.
The load average before and after is recorded: on a shared machine it moves every figure.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from patterns.data_home import HOME_ENV

TARGET_S = 3.0
REPO_ROOT = Path(__file__).resolve().parent.parent


def _write_runs(home: Path, n_runs: int) -> list[str]:
    """``n_runs`` short ``bp.scan`` runs of the simulated beamline into the embedded catalog under ``home``."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer

    RE = RunEngine({})
    subscribe_writer(RE, open_catalog())
    bl = make_beamline(sample="CsPbBr3", seed=0)
    return [RE(bp.scan([bl.detector], bl.motor, 20.0, 25.0, 21), sample="CsPbBr3")[0] for _ in range(n_runs)]


def _timed(argv: list[str], env: dict[str, str], repeats: int) -> list[float]:
    """Wall seconds of ``python -m cli ARGV`` in a fresh process, ``repeats`` times; RuntimeError if it fails."""
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cli", *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        times.append(time.perf_counter() - tic)
        if done.returncode != 0:
            raise RuntimeError(f"xrd-agent {' '.join(argv)} failed: {done.stderr.strip()}")
    return times


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start ``xrd-agent tiled serve`` on a free port; the process, its URI and API key once it answers."""
    from storage.server import free_port

    port = free_port()
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "cli", "tiled", "serve", "--port", str(port)], cwd=REPO_ROOT,
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        match = re.search(r"api_key='([0-9a-f]{64})'", log.read_text())
        if server.poll() is not None:
            raise RuntimeError(f"tiled serve exited: {log.read_text()}")
        if match:
            uri, key = f"http://127.0.0.1:{port}", match.group(1)
            probe = subprocess.run([sys.executable, "-m", "cli", "runs", "--uri", uri, "--api-key", key],
                                   cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)
            if probe.returncode == 0:
                return server, uri, key
        time.sleep(1.0)
    server.terminate()
    raise RuntimeError(f"tiled serve did not answer within 180 s: {log.read_text()}")


def _summary(times: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(times), 3), "all_s": [round(t, 3) for t in times],
            "meets_target": statistics.median(times) <= TARGET_S}


def run(quick: bool, out: Path) -> dict[str, Any]:
    """Time `runs` and `label` against the embedded and a served catalog; write the JSON to ``out``.

    Parameters
    ----------
    quick : bool
        CI settings: 3 runs in the catalog, 2 repeats (figures not meaningful).
    out : Path
        JSON output path.
    """
    from bench.accuracy import _git_commit

    n_runs, repeats = (3, 2) if quick else (20, 7)
    load_before = os.getloadavg()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, HOME_ENV: str(home)}
        for name in ("XRD_AGENT_TILED_URI", "XRD_AGENT_TILED_API_KEY"):
            env.pop(name, None)
        previous = os.environ.get(HOME_ENV)
        os.environ[HOME_ENV] = str(home)
        try:
            uids = _write_runs(home, n_runs)
        finally:
            if previous is None:
                os.environ.pop(HOME_ENV, None)
            else:
                os.environ[HOME_ENV] = previous
        label = ["label", uids[-1][:8], "--space-group", "pm-3m", "--by", "bench"]
        figures["runs_embedded"] = _summary(_timed(["runs"], env, repeats))
        figures["label_embedded"] = _summary(_timed(label, env, repeats))
        server, uri, key = _serve(env, home / "serve.log")
        try:
            served = ["--uri", uri, "--api-key", key]
            figures["runs_served"] = _summary(_timed(["runs", *served], env, repeats))
            figures["label_served"] = _summary(_timed([*label, *served], env, repeats))
        finally:
            server.terminate()
            server.wait(timeout=30)
    summary = {
        **figures,
        "target_s": TARGET_S,
        "meets_target": all(f["meets_target"] for f in figures.values()),
        "n_runs": n_runs,
        "repeats": repeats,
        "measured": "wall seconds of `python -m cli COMMAND` in a fresh process, median of the repeats",
        "quick": quick,
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "git_commit": _git_commit(),
        "platform": platform.platform(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
