"""Finding a run the way a beamline names it: a full uid, a unique uid prefix or a scan ID.

databroker accepts all three (``cat["6f84d"]``, ``cat[42]``); bluesky-tiled-plugins' own
partial-uid lookup does not work on our catalog (its spec-version check sends a query the
SQL catalog refuses), so the prefix is searched here with tiled's ``Like`` query on
``start.uid``, and the scan ID with ``Eq`` on ``start.scan_id``, both server-side.

Unlike databroker, an ambiguous key is an error that lists the candidates: a RunEngine
started afresh counts scan IDs from 1 again, and labelling the latest of several runs
with scan ID 3 by guess would put a label on the wrong pattern.

:func:`resolve_key` holds the rules; :func:`resolve_run` applies them to a tiled catalog, and
:mod:`storage.labels` to the embedded catalog's database (:mod:`storage.catalog_db`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

#: A full bluesky uid (uuid4 text).
UID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: A uid prefix: hex digits and dashes only (also keeps SQL LIKE wildcards out of the query).
_PREFIX_PATTERN = re.compile(r"^[0-9a-f][0-9a-f-]{0,35}$")
#: Candidates named in an ambiguity error.
_MAX_LISTED = 10


def _describe(key: str, metadata: Any) -> str:
    start = metadata.get("start", {}) or {}
    when = datetime.fromtimestamp(float(start.get("time", 0.0)), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{key} (scan {start.get('scan_id', '?')}, {when} UTC, sample {start.get('sample') or '-'})"


def _candidates(catalog: Any, query: Any) -> list[tuple[str, Any]]:
    # head() asks the server for one page: enough to tell unique from ambiguous.
    return [(k, v.metadata) for k, v in catalog.search(query).items().head(_MAX_LISTED + 1)]


def _unique(key: str, what: str, found: list[tuple[str, Any, Any]]) -> tuple[str, Any, Any]:
    if not found:
        raise KeyError(f"no run with {what} {key!r} in the catalog (see `xrd-agent runs`)")
    if len(found) > 1:
        listed = "\n  ".join(_describe(k, md) for k, md, _ in found[:_MAX_LISTED])
        more = " (and more)" if len(found) > _MAX_LISTED else ""
        raise ValueError(f"{what} {key!r} matches several runs{more}; give more of the uid:\n  {listed}")
    return found[0]


#: A lookup of candidates: (key, metadata, handle) per run, at most ``limit`` of them.
Lookup = Callable[[Any, int], list[tuple[str, Any, Any]]]


def resolve_key(key: str | int, by_uid: Lookup, by_scan_id: Lookup, by_uid_prefix: Lookup) -> tuple[str, Any, Any]:
    """The one candidate ``(uid, metadata, handle)`` named by ``key``, whatever the catalog behind the lookups.

    Parameters
    ----------
    key : str or int
        A full uid, a uid prefix or a scan ID (see :func:`resolve_run`).
    by_uid, by_scan_id, by_uid_prefix : callable
        ``lookup(value, limit)`` -> candidates: exact uid (str), scan ID (int), uid prefix (str).

    Raises KeyError and ValueError as :func:`resolve_run` does.
    """
    text = str(key).strip().lower()
    if UID_PATTERN.match(text):
        found = by_uid(text, 1)
        if not found:
            raise KeyError(f"no run with uid {text} in the catalog (see `xrd-agent runs`)")
        return found[0]
    if text.isdigit() and int(text) > 0:
        found = by_scan_id(int(text), _MAX_LISTED + 1)
        if found or not _PREFIX_PATTERN.match(text):
            return _unique(text, "scan ID", found)
    if not _PREFIX_PATTERN.match(text):
        raise ValueError(f"{key!r} is neither a uid, a uid prefix (hex digits) nor a scan ID (see `xrd-agent runs`)")
    return _unique(text, "uid prefix", by_uid_prefix(text, _MAX_LISTED + 1))


def resolve_run(catalog: Any, key: str | int) -> Any:
    """The one run named by ``key``.

    Parameters
    ----------
    catalog : CatalogOfBlueskyRuns
        From :func:`storage.catalog.open_catalog`.
    key : str or int
        A full uid; a uid prefix (hex digits, e.g. the 8 characters `xrd-agent runs` shows);
        or a scan ID (a positive integer, or its decimal text). Digits-only text is a scan ID
        first, and a uid prefix only when no run has that scan ID.

    Returns
    -------
    BlueskyRun
        The run's tiled node.

    Raises
    ------
    KeyError
        No run matches.
    ValueError
        The key is malformed, or it matches several runs (the message lists them).
    """
    from tiled.queries import Eq, Like

    from storage.catalog import get_run

    def by_uid(uid: str, limit: int) -> list[tuple[str, Any, Any]]:
        try:
            run = get_run(catalog, uid)
        except KeyError:
            return []
        return [(uid, run.metadata, run)]

    def search(query: Any) -> list[tuple[str, Any, Any]]:
        return [(k, md, None) for k, md in _candidates(catalog, query)]

    uid, _, run = resolve_key(key, by_uid, lambda n, _: search(Eq("start.scan_id", n)),
                              lambda p, _: search(Like("start.uid", f"{p}%")))
    return run if run is not None else get_run(catalog, uid)


def resolve_in_catalog_db(db: Any, key: str | int) -> tuple[str, Any, int]:
    """:func:`resolve_key` on the embedded catalog's database (:class:`storage.catalog_db.CatalogDB`):
    (uid, metadata, tiled node id). Raises as :func:`resolve_run` does."""

    def rows(found: list[Any]) -> list[tuple[str, Any, Any]]:
        return [(r.key, r.metadata, r.node_id) for r in found]

    return resolve_key(key, lambda uid, _: rows(db.by_uid(uid)), lambda n, limit: rows(db.by_scan_id(n, limit)),
                       lambda prefix, limit: rows(db.by_uid_prefix(prefix, limit)))


def run_uid(run: Any) -> str:
    """The full uid of a run node (its start document's)."""
    return str(run.metadata["start"]["uid"])
