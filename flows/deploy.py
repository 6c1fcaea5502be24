"""The nightly retrain deployment and the local Prefect server with its UI.

``xrd-agent prefect-ui`` starts ``prefect server start --host 127.0.0.1`` (database
under ``XRD_AGENT_HOME/prefect``); ``xrd-agent flows serve`` registers the
deployment "retrain/nightly" with ``cron="0 2 * * *"`` against that server and
runs its scheduled and manual runs (the UI's "Run" button, or
``prefect deployment run retrain/nightly``) until stopped.
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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flows  # noqa: F401  (sets PREFECT_HOME before prefect is imported)
from flows.prefect_env import configure_prefect_env, prefect_home

#: Deployment name ("<flow name>/<deployment name>" in Prefect's CLI and UI).
DEPLOYMENT_NAME = "nightly"
#: Every night at 02:00 in the configured time zone.
NIGHTLY_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
#: Host the Prefect server binds: local only.
PREFECT_HOST = "127.0.0.1"
DEFAULT_PREFECT_PORT = 4200


def validate_timezone(timezone: str) -> str:
    """Return ``timezone`` if it is an IANA name (e.g. "Europe/Berlin"); ValueError otherwise."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'America/New_York'") from None
    return timezone


def nightly_schedule(timezone: str = DEFAULT_TIMEZONE) -> Any:
    """The nightly cron schedule (02:00 in ``timezone``) as a Prefect schedule."""
    from prefect.schedules import Cron

    return Cron(NIGHTLY_CRON, timezone=validate_timezone(timezone))


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


def choose_api_url(api_url: str | None = None) -> str | None:
    """The Prefect API to use: the argument, else ``$PREFECT_API_URL``, else the local server if it
    answers on the default port, else None (Prefect's ephemeral mode)."""
    if api_url:
        return api_url
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    default = local_api_url()
    return default if api_is_healthy(default) else None


def build_nightly_deployment(timezone: str = DEFAULT_TIMEZONE, parameters: dict[str, Any] | None = None) -> Any:
    """The nightly ``RunnerDeployment`` of the retrain flow (not yet registered)."""
    from flows.retrain import retrain_flow

    return retrain_flow.to_deployment(
        name=DEPLOYMENT_NAME,
        schedule=nightly_schedule(timezone),
        parameters=parameters or {},
        description="Retrain on newly labelled scans; promote only if not worse on the held-out set.",
        tags=["xrd-agent"],
    )


def serve_nightly(
    timezone: str = DEFAULT_TIMEZONE, parameters: dict[str, Any] | None = None, api_url: str | None = None
) -> None:
    """Register the nightly deployment and serve its runs until interrupted (blocks).

    Parameters
    ----------
    timezone : str
        IANA time zone of the 02:00 schedule.
    parameters : dict, optional
        Default parameters of the scheduled runs (see :func:`flows.retrain.retrain_flow`).
    api_url : str, optional
        Prefect API; default see :func:`choose_api_url`.
    """
    validate_timezone(timezone)
    api_url = choose_api_url(api_url)
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
    from prefect import serve

    from flows.run_guard import reap_dead_runs

    reaped = reap_dead_runs()  # runs of an earlier serve that was killed mid-flow
    if reaped:
        print(f"marked Crashed {len(reaped)} flow run(s) whose process was killed: {', '.join(reaped)}", flush=True)
    deployment = build_nightly_deployment(timezone, parameters)
    where = api_url or "Prefect's ephemeral local server (start `xrd-agent prefect-ui` first to see it in the UI)"
    print(
        f"serving deployment retrain/{DEPLOYMENT_NAME} (cron {NIGHTLY_CRON!r}, {timezone}) against {where}; "
        "Ctrl-C stops it",
        flush=True,
    )
    serve(deployment)


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
