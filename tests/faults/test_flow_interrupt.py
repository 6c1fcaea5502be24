"""Issue 11, case 12: the retrain flow interrupted (SIGTERM, SIGKILL) in real `xrd-agent flows run` processes.

Each run trains for minutes (``--force`` with a long member), so the signal always lands mid-training.
After SIGTERM the process is gone within seconds, both of its flow runs (retrain, train-members) are
Crashed, and the Prefect server it started is gone. After SIGKILL the server goes with it (the
kernel's parent-death signal) and the next start marks the killed runs Crashed. The champion
registry never changes. Ctrl-C (SIGINT) takes the same handler as SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from models.champion import champion_version, registry_snapshot

pytestmark = pytest.mark.slow

#: Long enough that the signal lands mid-training whatever the load.
LONG = ["--members", "1", "--steps", "100000", "--base-per-class", "3", "--force"]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update(XRD_AGENT_HOME=str(home), PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def _start(home: Path, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "cli", "flows", "run", *args], env=_env(home),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _started.append(process)
    return process


#: Every `flows run` a test started, and their children seen: killed when the test ends, pass or fail.
_started: list[subprocess.Popen] = []
_children: list[psutil.Process] = []


@pytest.fixture(autouse=True)
def _kill_leftovers():
    yield
    for process in _started:
        if process.poll() is None:
            _children.extend(psutil.Process(process.pid).children(recursive=True))
            process.kill()
            process.wait(timeout=30)
    for child in _children:
        if child.is_running():
            child.kill()
    _started.clear()
    _children.clear()


def _states(home: Path) -> list[tuple[str, str]]:
    """(flow name, state type) of every flow run, oldest first, read from the Prefect database the runs wrote."""
    with sqlite3.connect(home / "prefect" / "prefect.db") as db:
        return db.execute("SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON r.flow_id = f.id "
                          "ORDER BY r.created").fetchall()


def _wait_for_training(process: subprocess.Popen, home: Path, timeout_s: float = 600.0) -> list[psutil.Process]:
    """Block until both flow runs of ``process`` are marked (training under way); its descendants then."""
    markers = home / "prefect" / "xrd-agent-flow-runs"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"flows run ended early ({process.returncode}): {process.stdout.read()[-3000:]}")
        if markers.is_dir() and len(list(markers.glob("*.json"))) >= 2:
            time.sleep(2.0)  # inside fit-member
            children = psutil.Process(process.pid).children(recursive=True)
            _children.extend(children)
            return children
        time.sleep(0.5)
    process.kill()
    pytest.fail("training never started")


def _gone(processes: list[psutil.Process], timeout_s: float) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    return not alive


def test_sigterm_and_sigkill_mid_training(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = home / "models"
    before = registry_snapshot(registry)

    # SIGTERM: Crashed at once, server stopped, exit 143 within seconds
    process = _start(home, *LONG)
    children = _wait_for_training(process, home)
    assert children, "flows run started no Prefect server of its own"
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert time.monotonic() - sent < 30
    assert _gone(children, 15), "the Prefect server outlived flows run"
    assert _states(home) == [("retrain", "CRASHED"), ("train-members", "CRASHED")]
    assert registry_snapshot(registry) == before and champion_version("space_group", registry) is None

    # SIGKILL: the server goes with it; the runs stay Running until the next start marks them
    process = _start(home, *LONG)
    children = _wait_for_training(process, home)
    process.kill()
    process.wait(timeout=30)
    assert _gone(children, 15), "the Prefect server outlived a killed flows run"
    assert _states(home)[2:] == [("retrain", "RUNNING"), ("train-members", "RUNNING")]

    # the next start (`flows run` or `flows serve`; here `flows reap`, the same first step) marks them Crashed
    done = subprocess.run([sys.executable, "-m", "cli", "flows", "reap"], env=_env(home), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "marked Crashed 2 flow run(s) whose process was killed" in done.stdout
    assert [state for _, state in _states(home)] == ["CRASHED"] * 4
    assert registry_snapshot(registry) == before
