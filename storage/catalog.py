"""Where runs live: an embedded tiled catalog (nothing to start) or a served one.

The embedded catalog is a tiled SQLite catalog plus SQLite tabular storage and a
data directory, all under :func:`xrd_agent_home` ``/ "tiled"``. It is opened
in-process through tiled's ASGI app (no sockets), so a plain Python session, the
command line and a Prefect flow all see the same runs without a server. A served
tiled (``xrd-agent tiled serve``, or a facility server on PostgreSQL) is reached
by URI and API key instead. Either way the caller gets the container of raw runs
as databroker v2 presents it (bluesky-tiled-plugins' ``CatalogOfBlueskyRuns``).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patterns.data_home import xrd_agent_home

if TYPE_CHECKING:  # heavy imports only for type checkers
    from bluesky import RunEngine

#: Name of the container that holds raw bluesky runs (databroker's convention).
RAW_CONTAINER = "raw"
#: Environment variables a served catalog can be named with instead of arguments.
URI_ENV = "XRD_AGENT_TILED_URI"
API_KEY_ENV = "XRD_AGENT_TILED_API_KEY"
#: SQLite connections the embedded catalog keeps open between requests (see `build_embedded_tree`).
EMBEDDED_POOL_SIZE = 1

logger = logging.getLogger("xrd_agent.storage")


@dataclass(frozen=True)
class EmbeddedCatalogPaths:
    """Files of the embedded catalog under one directory.

    Attributes
    ----------
    root : Path
        The directory holding everything below.
    catalog_db : Path
        SQLite database of tiled's catalog (nodes, metadata, revisions).
    data_dir : Path
        Writable file storage (array chunks written by tiled).
    tables_db : Path
        SQLite database for tabular storage: TiledWriter appends event rows here.
    """

    root: Path

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.db"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def tables_db(self) -> Path:
        return self.root / "tables.sqlite"

    @property
    def catalog_uri(self) -> str:
        return f"sqlite:///{self.catalog_db}"

    @property
    def tables_uri(self) -> str:
        return f"sqlite:///{self.tables_db}"


def embedded_paths(home: Path | None = None) -> EmbeddedCatalogPaths:
    """Return the paths of the embedded catalog under ``home`` (default :func:`xrd_agent_home`)."""
    root = (home if home is not None else xrd_agent_home(create=True)) / "tiled"
    return EmbeddedCatalogPaths(root=root)


def build_embedded_tree(home: Path | None = None) -> Any:
    """Open (and create on first use) the embedded tiled catalog adapter.

    Parameters
    ----------
    home : Path, optional
        Data directory; default :func:`xrd_agent_home`.

    Returns
    -------
    tiled.catalog.adapter.CatalogContainerAdapter
        The server-side tree, ready for ``tiled.server.app.build_app``.
    """
    from tiled.catalog import from_uri as catalog_from_uri

    paths = embedded_paths(home)
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    # Initialising runs `python -m tiled catalog init` in a subprocess (about a
    # second): only pay that when the database does not exist yet.
    return catalog_from_uri(
        paths.catalog_uri,
        writable_storage=[str(paths.data_dir), paths.tables_uri],
        init_if_not_exists=not paths.catalog_db.exists(),
        # tiled keeps up to 5 SQLite connections (a file handle and a thread each) once requests
        # overlapped, e.g. a run's writer thread and a reader: a long session held more handles
        # after each busy moment (issue 11 case 13). One is kept; the overflow is closed on return.
        catalog_pool_size=EMBEDDED_POOL_SIZE,
    )


def _ensure_raw_container(client: Any) -> Any:
    """Return ``client["raw"]``, creating it with the CatalogOfBlueskyRuns spec if missing."""
    if RAW_CONTAINER not in client:
        try:
            client.create_container(RAW_CONTAINER, specs=["CatalogOfBlueskyRuns"])
        except Exception:
            # Another process may have created it between the check and the call.
            if RAW_CONTAINER not in client:
                raise
    return client[RAW_CONTAINER]


def open_root_client(uri: str | None = None, api_key: str | None = None) -> Any:
    """Open the root tiled client: a served catalog by URI, else the embedded one.

    Parameters
    ----------
    uri : str, optional
        Address of a tiled server (``http://127.0.0.1:8000``). Defaults to
        ``$XRD_AGENT_TILED_URI``; when neither is given the embedded catalog is used.
    api_key : str, optional
        API key of the served catalog; defaults to ``$XRD_AGENT_TILED_API_KEY``.

    Returns
    -------
    tiled.client.container.Container
        The root node of the catalog.
    """
    from tiled.client import from_context, from_uri

    uri = uri or os.environ.get(URI_ENV) or None
    if uri is not None:
        api_key = api_key or os.environ.get(API_KEY_ENV) or None
        if not uri.startswith(("http://", "https://")):
            raise ValueError(f"tiled URI must start with http:// or https://, got {uri!r}")
        return from_uri(uri, api_key=api_key)

    # One in-process app per data directory and process: tiled keeps the single-user key of the
    # app built last, so a second app would leave every client of the first one at 401 (the
    # session's TiledWriter among them).
    home = embedded_paths().root.resolve()
    if home not in _EMBEDDED_CLIENTS:
        from tiled.client.context import Context
        from tiled.config import Authentication
        from tiled.server.app import build_app

        # The in-process app is reachable only from this process: a fresh random
        # key per process keeps tiled in its single-user mode without a shared secret.
        key = secrets.token_hex(32)
        app = build_app(build_embedded_tree(), authentication=Authentication(single_user_api_key=key))
        _EMBEDDED_CLIENTS.clear()  # an app of another data directory no longer authenticates either
        _EMBEDDED_CLIENTS[home] = from_context(Context.from_app(app, api_key=key))
    return _EMBEDDED_CLIENTS[home]


_EMBEDDED_CLIENTS: dict[Path, Any] = {}
"""The root client of this process's embedded catalog, by data directory (see :func:`open_root_client`)."""


def open_catalog(uri: str | None = None, api_key: str | None = None) -> Any:
    """Open the container of raw bluesky runs (databroker v2's Broker).

    Parameters
    ----------
    uri : str, optional
        A served tiled catalog; default the embedded one under ``XRD_AGENT_HOME``.
    api_key : str, optional
        API key for a served catalog.

    Returns
    -------
    bluesky_tiled_plugins.clients.catalog_of_bluesky_runs.CatalogOfBlueskyRuns
        Supports ``cat[uid]`` (full uids), ``cat[-1]``, ``cat.search(query)``;
        ``run.primary.read()`` gives an xarray Dataset.
    """
    return _ensure_raw_container(open_root_client(uri, api_key))


def _generic_structure_clients() -> Any:
    """tiled's own client classes by structure family, without the spec-named ones of plugins.

    bluesky-tiled-plugins registers ``BlueskyRun`` and friends as tiled client entry points;
    importing them pulls in its writer's validator (pandas, dask, xarray: seconds). Metadata
    needs none of it: runs are then plain containers, streams tiled's composite clients.
    """
    from tiled.client.container import DEFAULT_STRUCTURE_CLIENT_DISPATCH
    from tiled.utils import OneShotCachedMap

    generic = DEFAULT_STRUCTURE_CLIENT_DISPATCH["numpy"]
    families = ("container", "composite", "array", "table", "dataframe", "awkward", "sparse", "xarray_dataset")
    return OneShotCachedMap({name: (lambda name=name: generic[name]) for name in families})


def open_metadata_catalog(uri: str | None = None, api_key: str | None = None) -> Any:
    """The container of raw runs of a served catalog, opened with tiled's generic client classes.

    For commands that read or write run metadata only (``xrd-agent runs``, ``label``): the same
    node as :func:`open_catalog`, but a run is a plain ``tiled.client.container.Container``
    (``.metadata``, ``.search``, ``.update_metadata``, ``.metadata_revisions``), which spares
    importing bluesky-tiled-plugins' run classes. Without a URI (argument or
    ``$XRD_AGENT_TILED_URI``) this is :func:`open_catalog` (the embedded catalog).

    Raises
    ------
    ValueError
        The URI is not http(s).
    """
    from tiled.client import from_uri

    uri = uri or os.environ.get(URI_ENV) or None
    if uri is None:
        return open_catalog()
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    if not uri.startswith(("http://", "https://")):
        raise ValueError(f"tiled URI must start with http:// or https://, got {uri!r}")
    # Plain http has no TLS to verify; verify=True would still load the CA bundle (about 0.2 s of
    # CPU). An https URI keeps full verification.
    verify = not uri.startswith("http://")
    return _ensure_raw_container(from_uri(uri, api_key=api_key, verify=verify,
                                          structure_clients=_generic_structure_clients()))


#: Events TiledWriter buffers before one write. One request per event costs tens of
#: milliseconds on a busy machine (a 276-point scan: 19 s with 1, 1.8 s with 100). Nothing
#: waits on it: every document is in the local spool (`storage.spool`) the moment it is
#: emitted, and tiled is written from a thread.
DEFAULT_WRITER_BATCH = 100


def subscribe_writer(RE: RunEngine, catalog: Any, batch_size: int = DEFAULT_WRITER_BATCH,
                     spool: Path | None = None) -> int:
    """Store every run of ``RE`` in ``catalog`` through the local spool; replay runs spooled before.

    Runs left in the spool by an earlier process (killed, or tiled was down) are written to
    ``catalog`` first, each announced on stderr; if tiled cannot take them now they stay, with
    one warning. Then a :class:`storage.spool.SpooledWriter` is subscribed; its writer thread hands
    each run to a :class:`storage.scan_export.ScanExportWriter` (the closed run's scan into the
    columnar export).

    Parameters
    ----------
    RE : bluesky.RunEngine
        The run engine whose documents are written.
    catalog : CatalogOfBlueskyRuns
        The container returned by :func:`open_catalog`.
    batch_size : int, optional
        Events TiledWriter buffers before a write (default :data:`DEFAULT_WRITER_BATCH`).
    spool : Path, optional
        Spool folder; default ``XRD_AGENT_HOME/spool``.

    Returns
    -------
    int
        The subscription token (``RE.unsubscribe(token)`` removes the writer).

    Raises
    ------
    ValueError
        ``batch_size`` below 1.
    """
    from storage.scan_export import ScanExportWriter
    from storage.spool import SpooledWriter, replay_pending, spool_dir

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    directory = spool if spool is not None else spool_dir()
    try:
        for done in replay_pending(catalog, directory):
            if done.error is None:
                state = "closed" if done.closed else "closed now (exit_status abort)"
                print(f"xrd-agent: replayed spooled run {done.uid} into the catalog: {done.events} points, {state}",
                      file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - tiled unreachable: the runs wait in the spool
        logger.warning("spooled runs in %s not replayed now (%s: %s)", directory, type(exc).__name__, exc)
    # Each run's scan also goes to the columnar export (storage.scan_export), from the writer
    # thread once tiled has the run: a retrain then reads thousands of runs in two requests.
    return RE.subscribe(SpooledWriter(catalog, directory, batch_size=batch_size,
                                      after_write=lambda: ScanExportWriter(catalog)))


def get_run(catalog: Any, uid: str) -> Any:
    """Return the run with exactly this full uid.

    ``catalog[uid]`` falls back to a partial-uid search when the exact key is
    missing, and that search is broken in tiled 0.2.20 (it matches every run):
    look the key up with the plain container API instead.

    Raises
    ------
    KeyError
        No run has this uid.
    """
    from tiled.client.container import Container

    return Container.__getitem__(catalog, uid)
