"""Prefect's environment for xrd-agent: its home under XRD_AGENT_HOME, analytics and telemetry off.

Prefect reads these settings when it is first imported, so :func:`configure_prefect_env`
runs from ``flows/__init__.py``, before any flow module imports prefect. Values the
user already set (a served Prefect API in ``PREFECT_API_URL``, another
``PREFECT_HOME``) are left alone. The home directory is created with its parents:
Prefect creates it on import without parents and its server fails on a missing
parent (tests therefore set ``PREFECT_HOME`` to a temporary directory first).
"""

from __future__ import annotations

import os
from pathlib import Path

from patterns.data_home import xrd_agent_home


def prefect_home(home: Path | None = None) -> Path:
    """Prefect's home directory for xrd-agent: ``XRD_AGENT_HOME/prefect`` (not created here)."""
    if home is None:
        home = xrd_agent_home()
    return home / "prefect"


def configure_prefect_env(home: Path | None = None, *, create: bool = True) -> Path:
    """Set ``PREFECT_HOME`` (unless already set), switch analytics and telemetry off, allow a slow first start.

    With ``PREFECT_API_URL`` unset, Prefect then runs flows against a temporary
    local ("ephemeral") server whose database lives under ``PREFECT_HOME``.

    Parameters
    ----------
    home : Path, optional
        xrd-agent data directory; default ``XRD_AGENT_HOME``.
    create : bool
        Create the Prefect home directory (with parents).

    Returns
    -------
    Path
        The Prefect home in effect.
    """
    if "PREFECT_HOME" not in os.environ or home is not None:
        os.environ["PREFECT_HOME"] = str(prefect_home(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's client-side telemetry (and its first-run notice) listens only to DO_NOT_TRACK
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The first start on a fresh home migrates the database: on a busy 2-core
    # machine that exceeds Prefect's default 20 s wait for the ephemeral server.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    path = Path(os.environ["PREFECT_HOME"]).expanduser()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
