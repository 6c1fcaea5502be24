"""A retrain that crashes or is interrupted ends Crashed at once, and leaves no server behind.

Prefect marks a flow run Crashed only from inside the process that runs it. Three ways that
fails for a long training on worker threads: Ctrl-C waits for the threads' current member to
finish (minutes) before the state is proposed; SIGTERM kills the process without cleanup, so
the temporary Prefect server it started keeps running; SIGKILL leaves both flow runs (the
retrain and its ``train-members`` sub-flow) "Running" forever.

What this module does about it:

* :func:`watch_flow_run` (first line of each flow) writes a marker,
  ``$PREFECT_HOME/xrd-agent-flow-runs/<flow run id>.json``, naming the flow run, this process
  and the process's start time (a pid alone may be reused);
* :func:`install_interrupt_handlers` (the `flows run` command): on SIGINT or SIGTERM, every
  flow run this process marked is set Crashed through the API, the server it started is
  stopped, and the process exits at once (130 or 143) without waiting for the training
  threads. The champion is safe: nothing touches the registry before the gate, and a
  promotion is a directory rename plus an atomic pointer replace;
* :func:`reap_dead_runs` (every start of `flows run` / `flows serve`): a marked run whose
  process is gone (SIGKILL, power cut) and whose state is still Running or Pending is set
  Crashed then;
* :func:`start_owned_server`: the Prefect server `flows run` starts is a child that the kernel
  sends SIGTERM when its parent dies, however it dies (``PR_SET_PDEATHSIG``, Linux).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

#: Directory (under the Prefect home in effect) holding one marker per watched flow run.
MARKER_DIR = "xrd-agent-flow-runs"
#: Seconds the interrupt handler waits for the API before exiting anyway.
INTERRUPT_GRACE_S = 10.0
#: Linux prctl option: signal this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def marker_dir() -> Path:
    """``$PREFECT_HOME/xrd-agent-flow-runs`` (created)."""
    from flows.prefect_env import configure_prefect_env

    path = configure_prefect_env(create=True) / MARKER_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def _process_started(pid: int) -> float | None:
    """Start time of process ``pid`` (psutil, seconds since the epoch); None when it is gone."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def watch_flow_run() -> str | None:
    """Mark the current flow run as run by this process; its id (None outside a flow run)."""
    from prefect.runtime import flow_run

    run_id = flow_run.id
    if run_id is None:
        return None
    marker = {"flow_run_id": str(run_id), "pid": os.getpid(), "process_started": _process_started(os.getpid())}
    path = marker_dir() / f"{run_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marker))
    os.replace(tmp, path)
    _arm()  # after the marker: a signal from here on finds the run to mark
    return str(run_id)


def _markers() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(marker_dir().glob("*.json")):
        try:
            found.append((path, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            path.unlink(missing_ok=True)  # a torn marker names nothing we could crash
    return found


def _alive(marker: dict[str, Any]) -> bool:
    started = _process_started(int(marker.get("pid", -1)))
    return started is not None and (marker.get("process_started") is None
                                    or abs(started - float(marker["process_started"])) < 1.0)


def crash_marked_runs(message: str, *, own: bool) -> list[str]:
    """Set Crashed every marked flow run still Running or Pending: this process's (``own``) or dead ones'.

    Markers of runs that ended otherwise are removed; a marker stays when the API cannot be
    reached (the next start tries again). Returns the ids set Crashed.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    crashed = []
    with get_client(sync_client=True) as client:
        for path, marker in _markers():
            if (marker.get("pid") == os.getpid()) != own or (not own and _alive(marker)):
                continue
            try:
                run = client.read_flow_run(marker["flow_run_id"])
            except ObjectNotFound:  # a run of another Prefect database: nothing to mark here
                path.unlink(missing_ok=True)
                continue
            if run.state is not None and run.state.type in (StateType.RUNNING, StateType.PENDING):
                client.set_flow_run_state(run.id, Crashed(message=message), force=True)
                crashed.append(str(run.id))
            path.unlink(missing_ok=True)
    return crashed


def reap_dead_runs() -> list[str]:
    """Mark Crashed the flow runs whose process died without saying so (SIGKILL); their ids."""
    return crash_marked_runs("the process running this flow died (killed) without ending it; "
                             "marked Crashed at the next start", own=False)


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_owned_server(port: int, log_path: Path) -> subprocess.Popen:
    """A Prefect server on 127.0.0.1:``port`` that dies with this process (SIGTERM on parent death)."""
    from flows.prefect_server import start_prefect_server

    log = open(log_path, "ab")  # noqa: SIM115 - the child keeps the descriptor
    preexec = _set_parent_death_signal if sys.platform.startswith("linux") else None
    try:
        return start_prefect_server(port, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec)
    finally:
        log.close()


def drain_prefect_workers(timeout_s: float = 15.0) -> None:
    """Send Prefect's buffered logs and events now, while the server that takes them is still up.

    Otherwise they are sent at interpreter exit, after `flows run` has stopped its server, and
    the process hangs retrying.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout_s, at_exit=False)


#: Set by :func:`install_interrupt_handlers`: the handler to re-install inside each flow run.
_armed: list[Any] = []


def install_interrupt_handlers(server: subprocess.Popen | None) -> None:
    """SIGINT/SIGTERM: crash this process's flow runs, stop ``server``, exit now (128 + signal number).

    Prefect's flow engine installs its own SIGTERM handler for the duration of each flow run
    (it waits for the running tasks); :func:`watch_flow_run` therefore installs this one again
    inside the run, in the process that called this function only (`flows run`; a served
    deployment keeps Prefect's handling, which its runner uses to cancel runs).
    """

    def on_signal(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        print(f"xrd-agent flows run: {name}: marking the flow run Crashed, stopping; the champion is unchanged",
              file=sys.stderr, flush=True)

        def finish() -> None:
            try:
                crash_marked_runs(f"interrupted by {name}; the champion is unchanged", own=True)
            finally:
                if server is not None:
                    from flows.prefect_server import stop_process

                    stop_process(server, timeout_s=5.0)

        worker = threading.Thread(target=finish, daemon=True)
        worker.start()
        worker.join(INTERRUPT_GRACE_S)
        os._exit(128 + signum)

    _armed[:] = [on_signal]
    _arm()


def _arm() -> None:
    """Install the armed handler for SIGINT and SIGTERM (main thread only; a no-op when not armed)."""
    if _armed and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _armed[0])
        signal.signal(signal.SIGTERM, _armed[0])
