"""`xrd-agent tiled serve`: the embedded catalog served over HTTP on 127.0.0.1.

The server opens the same catalog files as the embedded mode (under
``XRD_AGENT_HOME/tiled``), so runs written before are served and runs written
through the server are seen by embedded readers. Access needs an API key:
generated fresh at each start unless ``XRD_AGENT_TILED_API_KEY`` is set.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.catalog import API_KEY_ENV, URI_ENV, build_embedded_tree

#: Host every server of this project binds: never a public interface.
HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ServeInfo:
    """Where the server listens and how a client reaches it."""

    uri: str
    api_key: str

    def client_lines(self) -> str:
        """The exact lines a user copies to reach this server from Python and the shell."""
        return (
            f"Python:  from storage.catalog import open_catalog; "
            f"cat = open_catalog({self.uri!r}, api_key={self.api_key!r})\n"
            f"Shell:   export {URI_ENV}={self.uri} {API_KEY_ENV}={self.api_key}; xrd-agent runs"
        )


def generate_api_key() -> str:
    """A fresh 64-hex-character key (tiled accepts only [a-zA-Z0-9]+)."""
    return secrets.token_hex(32)


def free_port(host: str = HOST) -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def build_served_app(api_key: str, home: Path | None = None) -> Any:
    """The tiled ASGI app over the embedded catalog, requiring ``api_key``."""
    from tiled.config import Authentication
    from tiled.server.app import build_app

    return build_app(build_embedded_tree(home), authentication=Authentication(single_user_api_key=api_key))


def serve(port: int = DEFAULT_PORT, api_key: str | None = None, home: Path | None = None) -> None:
    """Serve the catalog on ``127.0.0.1:port`` until interrupted; prints the client lines first.

    Parameters
    ----------
    port : int
        TCP port; 0 picks a free one.
    api_key : str, optional
        Key clients must present; default ``$XRD_AGENT_TILED_API_KEY`` or a generated one.
    home : Path, optional
        Data directory; default ``XRD_AGENT_HOME``.
    """
    import uvicorn

    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    api_key = api_key or os.environ.get(API_KEY_ENV) or generate_api_key()
    if not api_key.isalnum():
        raise ValueError("the API key must be letters and digits only")
    port = port or free_port()
    app = build_served_app(api_key, home)
    info = ServeInfo(uri=f"http://{HOST}:{port}", api_key=api_key)
    print(f"tiled serving the xrd-agent catalog on {info.uri} (Ctrl-C stops it)", flush=True)
    print(info.client_lines(), flush=True)
    uvicorn.run(app, host=HOST, port=port, log_level="warning")
