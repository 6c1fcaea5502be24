"""The xrd-agent data directory, ``XRD_AGENT_HOME``: one place that says where it is.

It holds the tiled catalog (``tiled/``), the model registry (``models/``), the Prefect home
(``prefect/``), the beamline configuration (``beamline.json``) and caches (``cache/``,
``fold_models/``). It lives in the bottom layer because every layer above needs it and none may
import another for it (storage, models, flows and plans all resolve paths under it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOME_ENV = "XRD_AGENT_HOME"
"""Environment variable naming the data directory."""

DEFAULT_HOME = Path("~/.local/share/xrd-agent")
"""Data directory when ``XRD_AGENT_HOME`` is unset (the XDG data-home convention)."""


def xrd_agent_home(create: bool = False) -> Path:
    """The data directory: ``$XRD_AGENT_HOME`` if set, else ``~/.local/share/xrd-agent``.

    Parameters
    ----------
    create : bool
        Create it (with parents) when missing.

    Returns
    -------
    Path
        Absolute, user-expanded path.
    """
    home = Path(os.environ.get(HOME_ENV) or str(DEFAULT_HOME)).expanduser().resolve()
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home


@contextmanager
def data_home_set(home: str | Path) -> Iterator[None]:
    """``XRD_AGENT_HOME`` set to `home` inside the block, restored after (benchmarks that must not
    touch the user's catalog or registry)."""
    previous = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = previous
