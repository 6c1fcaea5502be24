"""Prefect's environment for xrd-agent: its home under XRD_AGENT_HOME, analytics off.

Prefect reads these settings when it is first imported, so :func:`configure_prefect_env`
runs from ``flows/__init__.py``, before any flow module imports prefect. Values the
user already set (a served Prefect API in ``PREFECT_API_URL``, another
``PREFECT_HOME``) are left alone.
"""

from __future__ import annotations

import os
from pathlib import Path


def prefect_home(home: Path | None = None) -> Path:
    """Prefect's home directory for xrd-agent: ``XRD_AGENT_HOME/prefect``."""
    from storage.catalog import xrd_agent_home

    return (home if home is not None else xrd_agent_home()) / "prefect"


def configure_prefect_env(home: Path | None = None) -> Path:
    """Set ``PREFECT_HOME`` (unless already set) and switch Prefect's analytics off.

    With ``PREFECT_API_URL`` unset, Prefect then runs flows against a temporary
    local ("ephemeral") server whose database lives under ``PREFECT_HOME``.

    Returns
    -------
    Path
        The Prefect home in effect.
    """
    if "PREFECT_HOME" not in os.environ:
        os.environ["PREFECT_HOME"] = str(prefect_home(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    path = Path(os.environ["PREFECT_HOME"]).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
