"""Finding a run the way a beamline names it: a full uid, a unique uid prefix or a scan ID.

databroker accepts all three (``cat["6f84d"]``, ``cat[42]``); bluesky-tiled-plugins' own
partial-uid lookup does not work on our catalog (its spec-version check sends a query the
SQL catalog refuses), so the prefix is searched here with tiled's ``Like`` query on
``start.uid``, and the scan ID with ``Eq`` on ``start.scan_id``, both server-side.

Unlike databroker, an ambiguous key is an error that lists the candidates: a RunEngine
started afresh counts scan IDs from 1 again, and labelling the latest of several runs
with scan ID 3 by guess would put a label on the wrong pattern.
"""

from __future__ import annotations

import re
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


def _unique(catalog: Any, key: str, what: str, found: list[tuple[str, Any]]) -> Any:
    if not found:
        raise KeyError(f"no run with {what} {key!r} in the catalog (see `xrd-agent runs`)")
    if len(found) > 1:
        listed = "\n  ".join(_describe(k, md) for k, md in found[:_MAX_LISTED])
        more = " (and more)" if len(found) > _MAX_LISTED else ""
        raise ValueError(f"{what} {key!r} matches several runs{more}; give more of the uid:\n  {listed}")
    from storage.catalog import get_run

    return get_run(catalog, found[0][0])


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

    text = str(key).strip().lower()
    if UID_PATTERN.match(text):
        try:
            return get_run(catalog, text)
        except KeyError:
            raise KeyError(f"no run with uid {text} in the catalog (see `xrd-agent runs`)") from None
    if text.isdigit() and int(text) > 0:
        found = _candidates(catalog, Eq("start.scan_id", int(text)))
        if found or not _PREFIX_PATTERN.match(text):
            return _unique(catalog, text, "scan ID", found)
    if not _PREFIX_PATTERN.match(text):
        raise ValueError(f"{key!r} is neither a uid, a uid prefix (hex digits) nor a scan ID (see `xrd-agent runs`)")
    return _unique(catalog, text, "uid prefix", _candidates(catalog, Like("start.uid", f"{text}%")))


def run_uid(run: Any) -> str:
    """The full uid of a run node (its start document's)."""
    return str(run.metadata["start"]["uid"])
