"""The local Prefect server as a child process: its command, environment, start, health and stop.

Apart from :mod:`flows.deploy` so that the flow's interruption guard (:mod:`flows.run_guard`),
which starts and stops its own server, does not import the deployment (and through it the flow).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flows.prefect_env import configure_prefect_env, prefect_home

#: Host the Prefect server binds: local only.
PREFECT_HOST = "127.0.0.1"
DEFAULT_PREFECT_PORT = 4200


def local_api_url(port: int = DEFAULT_PREFECT_PORT) -> str:
    """API address of the local Prefect server (``http://127.0.0.1:<port>/api``)."""
    return f"http://{PREFECT_HOST}:{port}/api"


def api_is_healthy(api_url: str, timeout_s: float = 1.0) -> bool:
    """True when ``<api_url>/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def prefect_server_command(port: int = DEFAULT_PREFECT_PORT) -> list[str]:
    """The command line of the local Prefect server (UI included)."""
    return [sys.executable, "-m", "prefect", "server", "start", "--host", PREFECT_HOST, "--port", str(port)]


def prefect_server_env(home: Path | None = None) -> dict[str, str]:
    """Environment of the Prefect server: its home under XRD_AGENT_HOME, analytics off."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)  # the server must not point at itself as a client
    path = configure_prefect_env(create=True) if home is None else prefect_home(home)
    path.mkdir(parents=True, exist_ok=True)
    env["PREFECT_HOME"] = str(path)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PREFECT_UI_API_URL"] = local_api_url(DEFAULT_PREFECT_PORT)
    return env


def start_prefect_server(port: int = DEFAULT_PREFECT_PORT, home: Path | None = None, **popen: Any) -> subprocess.Popen:
    """Start ``prefect server start --host 127.0.0.1 --port <port>`` as a child process.

    The caller owns the process: stop it with :func:`stop_process`.
    """
    env = prefect_server_env(home)
    env["PREFECT_UI_API_URL"] = local_api_url(port)
    return subprocess.Popen(prefect_server_command(port), env=env, start_new_session=True, **popen)


def wait_for_api(api_url: str, timeout_s: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Block until ``<api_url>/health`` answers; RuntimeError on timeout or if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api_is_healthy(api_url):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode} before answering")
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect API at {api_url} did not answer within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """Terminate a child started by this module (its whole session), killing it if it lingers."""
    import signal

    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)
