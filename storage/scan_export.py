"""Every run's scan in one columnar table in tiled, so a retrain reads thousands of runs in one request.

Reading a run back from tiled costs several requests (the run, its stream, the event table:
about 0.2 s each on two busy cores, 16 minutes for 5,000 runs). So the writer also appends each
run's scan, when the run closes, to an export kept in the same catalog, beside ``raw``:

``exports/scan_points``
    one row per measured point: ``run`` (int64, :func:`run_key` of the uid), ``seq`` (int64,
    measurement order), ``two_theta`` (float64, degrees), ``intensity`` (float64, counts on the run's dwell: `patterns.exposure`);
``exports/scan_runs``
    one row per exported run: ``run``, ``uid``, ``sample`` ("" when none), ``points`` (int64).

Both are tiled appendable tables (tiled's SQL table storage), written through tiled's client.
A run's export is used only when it is whole and unambiguous: exactly one ``scan_runs`` row and
exactly that many points. Anything else (a run written before the export existed, by another
program, replayed from the spool, or exported twice) is read from the run itself: the export
can make a read faster, never different.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from patterns.exposure import at_run_dwell, dwell_of_points
from storage.run_fields import detector_field, motor_field, sample_of

logger = logging.getLogger("xrd_agent.storage")

#: Container of exports at the catalog's root, and its two tables.
EXPORT_CONTAINER = "exports"
POINTS_TABLE = "scan_points"
RUNS_TABLE = "scan_runs"


def run_key(uid: str) -> int:
    """A 56-bit integer naming a run in the points table (blake2b of the uid; collisions ~1 in 10^16 pairs)."""
    return int.from_bytes(hashlib.blake2b(uid.encode(), digest_size=7).digest(), "big")


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    return {
        POINTS_TABLE: pa.schema([("run", pa.int64()), ("seq", pa.int64()), ("two_theta", pa.float64()),
                                 ("intensity", pa.float64())]),
        RUNS_TABLE: pa.schema([("run", pa.int64()), ("uid", pa.string()), ("sample", pa.string()),
                               ("points", pa.int64())]),
    }


def _child(parent: Any, key: str, create: Any) -> Any:
    """``parent[key]``, created by ``create()`` when missing (another process may win the race)."""
    if key in parent:
        return parent[key]
    try:
        return create()
    except Exception:
        if key not in parent:
            raise
        return parent[key]


def export_tables(root: Any, create: bool = True) -> tuple[Any, Any] | None:
    """The (points, runs) table clients under ``root``; None when absent and ``create`` is False."""
    if not create and EXPORT_CONTAINER not in root:
        return None
    exports = _child(root, EXPORT_CONTAINER, lambda: root.create_container(EXPORT_CONTAINER))
    schemas = _schemas()
    tables = []
    for name in (POINTS_TABLE, RUNS_TABLE):
        if not create and name not in exports:
            return None
        tables.append(_child(exports, name, lambda name=name: exports.create_appendable_table(schemas[name], key=name)))
    return tables[0], tables[1]


def append_scans(root: Any, scans: Sequence[tuple[str, np.ndarray, np.ndarray, str | None]]) -> None:
    """Append runs to the export under ``root`` (the catalog's root node): points first, then one row per run.

    Parameters
    ----------
    root : tiled.client.container.Container
        The root of the catalog (``open_catalog().parent``).
    scans : sequence of (uid, two_theta, intensity, sample)
        Each run's positions (degrees) and counts, in measurement order, and its sample name.
    """
    import pyarrow as pa

    if not scans:
        return
    points, runs = export_tables(root)
    keys = [run_key(uid) for uid, *_ in scans]
    lengths = [len(x) for _, x, _, _ in scans]
    schemas = _schemas()
    points.append_partition(0, pa.table({
        "run": np.repeat(np.array(keys, dtype=np.int64), lengths),
        "seq": np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]),
        "two_theta": np.concatenate([np.asarray(x, dtype=np.float64) for _, x, _, _ in scans]),
        "intensity": np.concatenate([np.asarray(y, dtype=np.float64) for _, _, y, _ in scans]),
    }, schema=schemas[POINTS_TABLE]))
    runs.append_partition(0, pa.table({
        "run": np.array(keys, dtype=np.int64), "uid": [uid for uid, *_ in scans],
        "sample": [sample or "" for *_, sample in scans], "points": np.array(lengths, dtype=np.int64),
    }, schema=schemas[RUNS_TABLE]))


def read_exported(root: Any, uids: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray, str | None]]:
    """The exported scans of ``uids`` that are whole: uid -> (two_theta, intensity, sample). Two requests.

    A uid without exactly one ``scan_runs`` row, or whose points do not number as that row says,
    is left out (the caller reads that run itself).
    """
    tables = export_tables(root, create=False) if uids else None
    if tables is None:
        return {}
    points_table, runs_table = tables
    runs = runs_table.read()
    wanted = set(uids)
    rows: dict[str, list[tuple[int, str, int]]] = {}
    for key, uid, sample, n in zip(runs["run"], runs["uid"], runs["sample"], runs["points"]):
        if uid in wanted:
            rows.setdefault(str(uid), []).append((int(key), str(sample), int(n)))
    single = {uid: found[0] for uid, found in rows.items() if len(found) == 1}
    if not single:
        return {}
    points = points_table.read()
    key_col = points["run"].to_numpy(dtype=np.int64)
    order = np.lexsort((points["seq"].to_numpy(dtype=np.int64), key_col))
    key_sorted = key_col[order]
    x_sorted = points["two_theta"].to_numpy(dtype=np.float64)[order]
    y_sorted = points["intensity"].to_numpy(dtype=np.float64)[order]
    found: dict[str, tuple[np.ndarray, np.ndarray, str | None]] = {}
    for uid, (key, sample, n) in single.items():
        lo, hi = np.searchsorted(key_sorted, key, "left"), np.searchsorted(key_sorted, key, "right")
        if hi - lo == n:
            found[uid] = (x_sorted[lo:hi].copy(), y_sorted[lo:hi].copy(), sample or None)
    return found


class ScanExportWriter:
    """Document callback of one run: collects its primary (2-theta, counts), appends them to the export at stop.

    Fed by the spooled writer's thread after tiled took each document
    (``storage.spool.SpooledWriter(after_write=...)``), so the RunEngine never waits on it and a
    run tiled refused is not exported. Never raises: a failed export is logged and costs only a
    slower read later (the run is in ``raw`` either way).

    Parameters
    ----------
    catalog : CatalogOfBlueskyRuns
        The container of raw runs (``storage.catalog.open_catalog``); the export goes beside it,
        under its parent (asked for at the first export: subscribing needs no tiled).
    """

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self._root: Any = None
        self._start: Mapping[str, Any] | None = None
        self._primary: str | None = None
        self._fields: tuple[str, str] | None = None
        self._dwell: tuple[str, float] | None = None  # (field, run dwell s) of a run that varies it
        self._sample: str | None = None
        self._points: dict[int, tuple[float, float]] = {}

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        try:
            self._take(name, doc)
        except Exception as exc:  # noqa: BLE001 - the export is an accelerator, never a reason to fail a scan
            logger.info("run %s not exported (%s: %s); a retrain reads it from the run itself",
                           (self._start or {}).get("uid"), type(exc).__name__, exc)
            self._start = None

    def _take(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "start":
            self._start, self._primary, self._fields, self._points = doc, None, None, {}
            self._sample = sample_of(doc)
        elif self._start is None:
            return
        elif name == "descriptor" and doc.get("name") == "primary":
            self._primary = doc["uid"]
            fields = list(doc.get("data_keys") or {})
            x = motor_field(self._start)
            self._fields = (x, detector_field(self._start, doc, fields)) if x in fields else None
            self._dwell = dwell_of_points(self._start, fields)
            self._sample = sample_of(self._start, doc.get("configuration"))
        elif name == "event" and doc.get("descriptor") == self._primary and self._fields is not None:
            # a re-measured point keeps its first reading, as the spooled writer does
            data = doc["data"]
            self._points.setdefault(int(doc["seq_num"]), self._point(
                data[self._fields[0]], data[self._fields[1]], data[self._dwell[0]] if self._dwell else None))
        elif name == "event_page" and doc.get("descriptor") == self._primary and self._fields is not None:
            data = doc["data"]
            dwells = data[self._dwell[0]] if self._dwell else [None] * len(doc["seq_num"])
            for seq, x, y, dwell in zip(doc["seq_num"], data[self._fields[0]], data[self._fields[1]], dwells):
                self._points.setdefault(int(seq), self._point(x, y, dwell))
        elif name == "stop":
            self._export(str(self._start["uid"]))

    def _point(self, x: Any, counts: Any, dwell: Any) -> tuple[float, float]:
        """(2-theta, counts on the run's dwell) of one point; `dwell` None when the run keeps one dwell."""
        if dwell is None:
            return float(x), float(counts)
        return float(x), float(at_run_dwell(float(counts), float(dwell), self._dwell[1]))

    def _export(self, uid: str) -> None:
        self._start = None
        if not self._points:
            return
        ordered = [self._points[s] for s in sorted(self._points)]
        scan = (uid, np.array([p[0] for p in ordered]), np.array([p[1] for p in ordered]), self._sample)
        if self._root is None:
            self._root = self.catalog.parent
        append_scans(self._root, [scan])
