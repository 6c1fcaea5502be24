"""Shared pytest fixtures: keep this file small.

* every test runs with ``XRD_AGENT_HOME`` pointing at its own temporary directory, so no
  test reads or writes the user's ``~/.local/share/xrd-agent``;
* Prefect's home is a temporary directory for the whole session, set before anything imports
  prefect (prefect creates and reads its home at import time);
* ``shared_data`` gives ``../shared/data`` (the read-only project data beside the repository)
  and skips the test cleanly where it is absent (a fresh clone elsewhere).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Point Prefect at a throw-away home before any test module imports it."""
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="xrd-agent-prefect-")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.fixture(autouse=True)
def xrd_agent_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh XRD_AGENT_HOME for each test (catalog, registry and prefect home go there)."""
    home = tmp_path_factory.mktemp("xrd-agent-home")
    monkeypatch.setenv("XRD_AGENT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` relative to the repository root; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (only the repository copy of the data is available)")
    return SHARED_DATA
