"""The served tiled goes down mid-run and stays down: the scan goes on, the spool keeps the run.

A real ``xrd-agent tiled serve`` child process is killed (SIGKILL) at point 30 of a 150-point
``bp.scan`` and started again on the same port after the run has ended; the spooled run is then
replayed and tiled holds exactly the points measured, with the stop document.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.catalog import API_KEY_ENV, get_run, open_catalog, subscribe_writer
from storage.server import free_port
from storage.spool import replay_pending, spool_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "faultmatrixkey0123"
POINTS = 150
DOWN_AT = 30


def _start_server(home: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "XRD_AGENT_HOME": str(home), API_KEY_ENV: KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "tiled", "serve", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _connect(server: subprocess.Popen, uri: str, log: Path, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            return open_catalog(uri, api_key=KEY)
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.5)
    raise AssertionError(f"tiled did not answer within {timeout} s:\n{log.read_text()}")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


@pytest.mark.slow
def test_tiled_down_mid_run_scan_goes_on_and_replay_restores_every_point(xrd_agent_home: Path, tmp_path: Path) -> None:
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline

    port, log = free_port(), tmp_path / "serve.log"
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(xrd_agent_home, port, log)
    try:
        catalog = _connect(server, uri, log)
        RE = RunEngine({})
        subscribe_writer(RE, catalog)
        arrivals: list[float] = []

        def outage(name: str, doc: dict) -> None:
            if name == "event" and doc["seq_num"] == DOWN_AT:
                _stop(server)  # the server dies mid-run and stays down until the run is over
            if name == "event":
                arrivals.append(time.monotonic())

        RE.subscribe(outage)
        bl = make_beamline(sample="CsPbBr3", seed=0)
        began = time.monotonic()
        (uid,) = RE(bp.scan([bl.detector], bl.motor, 20.0, 26.0, POINTS))
        ended = time.monotonic()
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert len(arrivals) == POINTS
        assert max(gaps) < 1.0, f"a point waited {max(gaps):.1f} s on the dead server"
        print(f"scan with tiled down from point {DOWN_AT}: {ended - began:.1f} s, longest gap {max(gaps):.2f} s")
        assert (spool_dir() / f"{uid}.jsonl").exists(), "the run must wait in the spool"

        server = _start_server(xrd_agent_home, port, log)
        catalog = _connect(server, uri, log)
        deadline = time.monotonic() + 120
        while list(spool_dir().glob("*.jsonl")) and time.monotonic() < deadline:
            replay_pending(catalog)  # a run still being retried by its writer thread is left alone
            time.sleep(1)
        assert not list(spool_dir().glob("*.jsonl"))

        run = get_run(open_catalog(uri, api_key=KEY), uid)
        assert run.metadata["stop"]["exit_status"] == "success"
        seq = [int(s) for s in run["primary"].base["internal"].read()["seq_num"]]
        assert sorted(seq) == list(range(1, POINTS + 1))
    finally:
        _stop(server)
