"""The nightly retrain deployment and the local Prefect server with its UI.

``xrd-agent prefect-ui`` starts ``prefect server start --host 127.0.0.1`` (database
under ``XRD_AGENT_HOME/prefect``); ``xrd-agent flows serve`` registers the
deployment "retrain/nightly" with ``cron="0 2 * * *"`` against that server and
runs its scheduled and manual runs (the UI's "Run" button, or
``prefect deployment run retrain/nightly``) until stopped.
"""

from __future__ import annotations

import os
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flows  # noqa: F401  (sets PREFECT_HOME before prefect is imported)
from flows.prefect_env import configure_prefect_env, prefect_home  # noqa: F401  (re-exported)
from flows.prefect_server import (  # noqa: F401  (re-exported: the server's own module)
    DEFAULT_PREFECT_PORT,
    PREFECT_HOST,
    api_is_healthy,
    local_api_url,
    prefect_server_command,
    prefect_server_env,
    start_prefect_server,
    stop_process,
    wait_for_api,
)

#: Deployment name ("<flow name>/<deployment name>" in Prefect's CLI and UI).
DEPLOYMENT_NAME = "nightly"
#: Every night at 02:00 in the configured time zone.
NIGHTLY_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"


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
