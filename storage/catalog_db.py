"""The embedded catalog's SQLite database, read and labelled without tiled's server stack.

Why: the embedded catalog is opened through tiled's in-process app, and building it imports
tiled's server (FastAPI, dask, pandas, xarray, SQLAlchemy, alembic: 4-10 s of CPU on two
cores). ``xrd-agent runs`` and ``xrd-agent label`` read and change only run metadata, and
must answer in under 3 s. The catalog's nodes, their metadata and the metadata revisions
are rows of tiled's SQL catalog (tables ``nodes`` and ``revisions``); the standard
library's :mod:`sqlite3` reads them in milliseconds.

A label is written the way tiled's own ``CatalogNodeAdapter.replace_metadata`` writes
metadata (tiled 0.2.20, ``tiled/catalog/adapter.py``), in one transaction: the node's
current metadata and specs become a new row of ``revisions`` (``revision_number`` one
above the last), then the node's metadata is replaced by the JSON merge patch
(RFC 7386, the ``json_merge_patch`` package tiled's server applies to a PATCH) of the old
metadata with the change. tiled's client, search and ``metadata_revisions`` then see the
label exactly as if it had been written through tiled (tests compare both routes).

Only a catalog whose schema revision is one this module was checked against is used
(:data:`KNOWN_SCHEMA_REVISIONS`, tiled's alembic revision); any other, or a served
catalog, goes through tiled itself (:func:`open_catalog_db` answers None).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

#: tiled catalog schema revisions (``alembic_version.version_num``) this module reads and writes:
#: the one tiled 0.2.20 creates.
KNOWN_SCHEMA_REVISIONS = frozenset({"917dbbcfc4b1"})
#: How long a write waits for another process's transaction (the session's writer), seconds.
BUSY_TIMEOUT_S = 10.0
#: The container of raw runs (``storage.catalog.RAW_CONTAINER``; repeated to keep this import light).
_RAW = "raw"
#: JSON as tiled's SQLAlchemy JSON columns store it on SQLite.
_SEPARATORS = (",", ":")


@dataclass(frozen=True)
class RunRow:
    """One run node of the catalog: tiled's node id, its key (the uid) and its metadata."""

    node_id: int
    key: str
    metadata: dict[str, Any]


class CatalogDB:
    """Run metadata of one embedded catalog (see the module docstring).

    Parameters
    ----------
    path : Path
        tiled's SQLite catalog database (``EmbeddedCatalogPaths.catalog_db``).
    raw_id : int
        Node id of the ``raw`` container.
    """

    def __init__(self, path: Path, raw_id: int) -> None:
        self.path = path
        self.raw_id = raw_id

    def _connect(self, write: bool = False) -> sqlite3.Connection:
        mode = "rw" if write else "ro"
        return sqlite3.connect(f"file:{self.path}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_S,
                               isolation_level=None)

    def _rows(self, where: str = "", params: Sequence[Any] = (), limit: int | None = None) -> list[RunRow]:
        sql = f"SELECT id, key, metadata FROM nodes WHERE parent = ? {where} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with _closing(self._connect()) as db:
            found = db.execute(sql, (self.raw_id, *params)).fetchall()
        return [RunRow(int(i), str(k), json.loads(md)) for i, k, md in found]

    def runs(self, labelled: bool | None = None, labelled_after: float | None = None,
             label_key: str = "xrd_label") -> list[RunRow]:
        """Every run, oldest first (node order), optionally only labelled / unlabelled / labelled after a time.

        Parameters
        ----------
        labelled : bool or None
            True: runs whose start metadata has ``label_key``; False: runs without; None: all.
        labelled_after : float, optional
            Only runs whose ``start.<label_key>.time`` is later than this, unix seconds.
        label_key : str
            Key of the label inside the start metadata.
        """
        clauses, params = [], []
        if labelled is not None:
            clauses.append(f"json_type(metadata, ?) IS {'NOT ' if labelled else ''}NULL")
            params.append(f"$.start.{label_key}")
        if labelled_after is not None:
            clauses.append("json_extract(metadata, ?) > ?")
            params += [f"$.start.{label_key}.time", float(labelled_after)]
        return self._rows("".join(f" AND {c}" for c in clauses), params)

    def by_uid(self, uid: str) -> list[RunRow]:
        """The run whose key is ``uid`` (a list of at most one)."""
        return self._rows("AND key = ?", (uid,))

    def by_uid_prefix(self, prefix: str, limit: int) -> list[RunRow]:
        """Runs whose uid starts with ``prefix`` (hex digits and dashes only: no LIKE wildcards), at most ``limit``."""
        if not prefix or any(c not in "0123456789abcdef-" for c in prefix):
            raise ValueError(f"a uid prefix is hex digits and dashes, got {prefix!r}")
        return self._rows("AND key LIKE ?", (f"{prefix}%",), limit)

    def by_scan_id(self, scan_id: int, limit: int) -> list[RunRow]:
        """Runs whose start document has this scan ID, at most ``limit``."""
        return self._rows("AND json_extract(metadata, '$.start.scan_id') = ?", (int(scan_id),), limit)

    def merge_metadata(self, node_ids: Sequence[int], patch: Mapping[str, Any]) -> None:
        """Apply one JSON merge patch to each node's metadata, keeping the previous metadata as a revision.

        All nodes change in one transaction: either every one is updated or none is.

        Raises
        ------
        KeyError
            A node no longer exists (nothing is written).
        sqlite3.OperationalError
            The database stayed locked for :data:`BUSY_TIMEOUT_S` (nothing is written).
        """
        from json_merge_patch import merge

        with _closing(self._connect(write=True)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for node_id in node_ids:
                    row = db.execute("SELECT metadata, specs FROM nodes WHERE id = ?", (node_id,)).fetchone()
                    if row is None:
                        raise KeyError(f"catalog node {node_id} no longer exists")
                    metadata, specs = row
                    (last,) = db.execute("SELECT max(revision_number) FROM revisions WHERE node_id = ?",
                                         (node_id,)).fetchone()
                    db.execute("INSERT INTO revisions (node_id, revision_number, metadata, specs) VALUES (?, ?, ?, ?)",
                               (node_id, (last or 0) + 1, metadata, specs))
                    updated = merge(json.loads(metadata), json.loads(json.dumps(patch)))
                    db.execute("UPDATE nodes SET metadata = ?, time_updated = CURRENT_TIMESTAMP WHERE id = ?",
                               (json.dumps(updated, separators=_SEPARATORS), node_id))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def last_row(self, node_id: int, stream: str, columns: Sequence[str]) -> tuple[Any, ...] | None:
        """The last event row of a run's event stream, ``columns`` only; None when the stream has none.

        Reads the SQL table tiled stores the stream's events in (``tables.sqlite`` of the embedded
        catalog, named by the stream node's data source); a stream stored otherwise answers None.
        """
        with _closing(self._connect()) as db:
            found = db.execute(
                "SELECT ds.parameters, a.data_uri FROM nodes s JOIN nodes t ON t.parent = s.id "
                "JOIN data_sources ds ON ds.node_id = t.id "
                "JOIN data_source_asset_association dsa ON dsa.data_source_id = ds.id "
                "JOIN assets a ON a.id = dsa.asset_id "
                "WHERE s.parent = ? AND s.key = ? AND t.key = 'internal' AND ds.mimetype = ?",
                (node_id, stream, "application/x-tiled-sql-table"),
            ).fetchone()
        if found is None or urlparse(str(found[1])).scheme != "sqlite":
            return None
        parameters = json.loads(found[0])
        # tiled writes "sqlite://localhost//abs/path" (host, then the absolute path after "/")
        tables = Path("/" + urlparse(str(found[1])).path.lstrip("/"))
        quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        table = '"' + str(parameters["table_name"]).replace('"', '""') + '"'
        with _closing(sqlite3.connect(f"file:{tables}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)) as db:
            try:
                return db.execute(f"SELECT {quoted} FROM {table} WHERE _dataset_id = ? ORDER BY rowid DESC LIMIT 1",
                                  (int(parameters["dataset_id"]),)).fetchone()
            except sqlite3.OperationalError:
                return None  # another layout (columns missing): the caller shows no class


@contextmanager
def _closing(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield db
    finally:
        db.close()


def open_catalog_db(catalog_db: Path) -> CatalogDB | None:
    """The embedded catalog's database, or None when it cannot be used directly.

    None when the file does not exist yet (tiled creates it on first use), its schema
    revision is not in :data:`KNOWN_SCHEMA_REVISIONS` (a newer tiled: go through tiled), or it
    has no ``raw`` container yet.
    """
    if not catalog_db.is_file():
        return None
    try:
        with _closing(sqlite3.connect(f"file:{catalog_db}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)) as db:
            revisions = {r for (r,) in db.execute("SELECT version_num FROM alembic_version")}
            raw = db.execute("SELECT n.id FROM nodes n JOIN nodes r ON n.parent = r.id "
                             "WHERE r.parent IS NULL AND n.key = ?", (_RAW,)).fetchone()
    except sqlite3.DatabaseError:
        return None  # not a catalog this module knows: tiled will say what is wrong
    if not revisions or not revisions <= KNOWN_SCHEMA_REVISIONS or raw is None:
        return None
    return CatalogDB(catalog_db, int(raw[0]))
