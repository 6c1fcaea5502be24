"""A local, append-only spool of every document, so no measured point depends on tiled being up.

:class:`SpooledWriter` is the RunEngine callback that stores runs. For each run it

1. drops an event whose (descriptor, ``seq_num``) it has already passed on (an immediate pause
   rewinds the plan to its last checkpoint and re-measures a point under the same ``seq_num``:
   the first measurement is kept, so the catalog has exactly one row per ``seq_num``);
2. appends the document as one JSON line to ``<spool>/<start uid>.jsonl`` with a single
   ``write`` (on disk for the operating system at once: a killed process loses nothing it
   emitted; ``fsync`` at most once a second and at the stop document, against power loss);
3. hands the document to a per-run thread that feeds bluesky's ``TiledWriter``. The RunEngine
   never waits on tiled during the run: a tiled server that goes down costs the scan nothing.

When the stop document has reached tiled the spool file is deleted. If tiled fails, the thread
logs one warning and drops the rest of the run (the spool has it); the file stays and
:func:`replay_pending` (``xrd-agent spool replay``, and every :func:`storage.catalog.subscribe_writer`
at start-up) writes it again: a run partly written before is deleted from the catalog first, so
nothing is duplicated, and a run whose process died before its stop document gets one
(``exit_status="abort"``). A live run's file is locked (``flock``), so a replay in another
process leaves it alone; the lock goes with the process, however it dies.

Bluesky's own ``TiledWriter(backup_directory=...)`` was not enough: it writes its JSON-lines
backup only after tiled has failed (a killed process still loses its buffered events), and it
keeps calling tiled synchronously for every later document (about 45 s of retries each).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patterns.data_home import xrd_agent_home

logger = logging.getLogger("xrd_agent.storage")

#: Folder of the spool under the data directory.
SPOOL_DIRNAME = "spool"
#: Seconds without progress after which the stop document stops waiting for tiled (a healthy
#: server takes about 2 s for the last batch, a loaded machine several times that; one that went
#: away is retried for 45 s).
DEFAULT_STOP_WAIT_S = 20.0
#: Longest time a spooled document stays only in the operating system's cache.
FSYNC_INTERVAL_S = 1.0
#: Reason written into the stop document of a run recovered without one.
RECOVERED_REASON = "the process ended before the run closed; recovered from the local spool"


def spool_dir(home: Path | None = None) -> Path:
    """The spool folder, ``<home>/spool`` (default home :func:`xrd_agent_home`), created if missing."""
    path = (home if home is not None else xrd_agent_home(create=True)) / SPOOL_DIRNAME
    path.mkdir(parents=True, exist_ok=True)
    return path


def spool_file(directory: Path, uid: str) -> Path:
    """The spool file of run ``uid``: ``<uid>.jsonl`` for a plain uid, a hash of it otherwise.

    The uid comes from a document: one that is not letters, digits, ``-`` and ``_`` (``../x``,
    an absolute path) never becomes part of a path, so no run writes outside ``directory``.
    """
    import hashlib
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", uid):
        uid = "run-" + hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()
    return directory / f"{uid}.jsonl"


def _encode(name: str, doc: dict[str, Any]) -> bytes:
    from event_model import NumpyEncoder

    return (json.dumps([name, doc], cls=NumpyEncoder, separators=(",", ":")) + "\n").encode()


def _events(name: str, doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """An event page as its events (so de-duplication sees every ``seq_num``); other documents as they are."""
    if name == "event_page":
        from event_model import unpack_event_page

        for event in unpack_event_page(doc):
            yield "event", event
    else:
        yield name, doc


class _SeqNumFilter:
    """Passes each (descriptor, seq_num) once."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, int]] = set()

    def first(self, event: dict[str, Any]) -> bool:
        key = (event["descriptor"], int(event["seq_num"]))
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


#: One run at a time goes to tiled in this process: a run whose writer is still busy when the next
#: run starts (a slow server) must not write beside it (SQLite answers "database is locked").
_TILED_WRITES = threading.Lock()


class _Run:
    """One run on its way: its locked spool file and the thread that writes it to tiled."""

    def __init__(self, uid: str, directory: Path, catalog: Any, batch_size: int,
                 after_write: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.uid = uid
        self._after_write = after_write
        self.path = spool_file(directory, uid)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._last_sync = time.monotonic()
        self.filter = _SeqNumFilter()
        self.failed = False
        self.done = threading.Event()
        self.progress = time.monotonic()  # when the thread last finished a document
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self._catalog = catalog
        self._batch_size = batch_size
        self._thread = threading.Thread(target=self._feed_tiled, name=f"tiled-writer-{uid[:8]}", daemon=True)
        self._thread.start()

    def append(self, name: str, doc: dict[str, Any]) -> None:
        os.write(self._fd, _encode(name, doc))
        now = time.monotonic()
        if name == "stop" or now - self._last_sync >= FSYNC_INTERVAL_S:
            os.fsync(self._fd)
            self._last_sync = now
        self._queue.put((name, doc))

    def wait(self, stall_s: float) -> bool:
        """Wait until the run is in tiled, it failed, or the thread made no progress for ``stall_s``; True if in tiled."""
        while not self.done.wait(0.1):
            if self.failed or time.monotonic() - self.progress > stall_s:
                return False
        return not self.failed

    def _feed_tiled(self) -> None:
        from bluesky.callbacks.tiled_writer import TiledWriter

        writer = TiledWriter(self._catalog, batch_size=self._batch_size)
        with _TILED_WRITES:
            while True:
                name, doc = self._queue.get()
                if not self.failed:
                    try:
                        writer(name, doc)
                        if self._after_write is not None:
                            self._after_write(name, doc)
                    except Exception as exc:  # noqa: BLE001 - any tiled failure: the spool keeps the run
                        self.failed = True
                        logger.warning(
                            "tiled did not take run %s (%s: %s); its documents are kept in %s; "
                            "`xrd-agent spool replay` writes them when tiled is back",
                            self.uid, type(exc).__name__, exc, self.path,
                        )
                self.progress = time.monotonic()
                if name == "stop":
                    break
        if not self.failed:
            self.path.unlink(missing_ok=True)  # in tiled now: the spool copy is no longer needed
        os.close(self._fd)  # releases the lock: a failed run is replayable from here on
        self.done.set()


class SpooledWriter:
    """RunEngine callback: every document to the local spool at once, and on to tiled from a thread.

    Runs are assumed one at a time (as the RunEngine makes them); documents outside a run are ignored.

    Parameters
    ----------
    catalog : CatalogOfBlueskyRuns
        Where runs go (``storage.catalog.open_catalog``).
    directory : Path, optional
        Spool folder; default :func:`spool_dir`.
    batch_size : int
        Events the ``TiledWriter`` buffers per write (the spool is written per document anyway).
    stop_wait_s : float
        The stop document waits for the run to be in tiled (so a caller reading the catalog
        right after the scan finds it) until the writer thread has made no progress for this
        long; then the scan returns and a warning says the run is in the spool.
    after_write : callable, optional
        Makes, for each run, a callback that the writer thread hands every document once tiled
        has it (``storage.scan_export.ScanExportWriter``); it must not raise.
    """

    def __init__(self, catalog: Any, directory: Path | None = None, batch_size: int = 100,
                 stop_wait_s: float = DEFAULT_STOP_WAIT_S,
                 after_write: Callable[[], Callable[[str, dict[str, Any]], None]] | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.catalog = catalog
        self.directory = directory if directory is not None else spool_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.stop_wait_s = stop_wait_s
        self.after_write = after_write
        self._run: _Run | None = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self._run = _Run(str(doc["uid"]), self.directory, self.catalog, self.batch_size,
                             self.after_write() if self.after_write is not None else None)
        run = self._run
        if run is None:
            return
        for one_name, one_doc in _events(name, doc):
            if one_name == "event" and not run.filter.first(one_doc):
                logger.info("run %s: dropped a repeated event (seq_num %s)", run.uid, one_doc["seq_num"])
                continue
            run.append(one_name, one_doc)
        if name == "stop":
            self._run = None
            if not run.wait(self.stop_wait_s) and not run.failed:
                logger.warning("run %s is not in tiled yet (no progress for %.0f s); it is written in the "
                               "background and kept in %s until it is", run.uid, self.stop_wait_s, run.path)


@dataclass(frozen=True)
class Replayed:
    """One spooled run written to the catalog.

    Attributes
    ----------
    uid : str
        The run's start uid.
    events : int
        Events written (one per (stream, seq_num)).
    closed : bool
        Whether the spool held the run's stop document (False: one was written, exit_status "abort").
    error : str or None
        Why the run could not be written (it stays in the spool); None when it was.
    """

    uid: str
    events: int
    closed: bool
    error: str | None = None


def read_spool_file(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The documents of one spool file, in order; a last line cut short by a killed process is dropped.

    Raises
    ------
    ValueError
        A line other than the last is not a JSON ``[name, document]`` pair (not a spool file).
    """
    lines = path.read_bytes().split(b"\n")
    docs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            name, doc = json.loads(line)
        except ValueError:
            if number == len(lines):  # the tail of a write the kill interrupted
                break
            raise ValueError(f"{path}:{number}: not a spooled document") from None
        docs.append((str(name), doc))
    return docs


def _closed(docs: list[tuple[str, dict[str, Any]]]) -> tuple[list[tuple[str, dict[str, Any]]], bool, int]:
    """The run's documents, de-duplicated and ending with a stop document; whether it had one; events."""
    import uuid

    seq = _SeqNumFilter()
    kept, streams, stop = [], {}, None
    for name, doc in docs:
        if name == "descriptor":
            streams[doc["uid"]] = doc.get("name", "primary")
        if name == "event" and not seq.first(doc):
            continue
        if name == "stop":
            stop = doc
        kept.append((name, doc))
    counts: dict[str, int] = {}
    for name, doc in kept:
        if name == "event":
            stream = streams.get(doc["descriptor"], "primary")
            counts[stream] = counts.get(stream, 0) + 1
    if stop is None:
        start = kept[0][1]
        last = max((doc.get("time", start["time"]) for _, doc in kept), default=start["time"])
        kept.append(("stop", {
            "uid": str(uuid.uuid4()), "run_start": start["uid"], "time": float(last),
            "exit_status": "abort", "reason": RECOVERED_REASON, "num_events": counts,
        }))
    return kept, stop is not None, counts.get("primary", 0)


def replay_file(path: Path, catalog: Any) -> Replayed | None:
    """Write one spooled run to ``catalog`` (replacing a partial copy there); None if the run is live.

    The file is deleted once the run is written; on any error it stays, and the error is raised.
    """
    from bluesky.callbacks.tiled_writer import TiledWriter

    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live process is still writing this run
        docs = read_spool_file(path)
        if not docs or docs[0][0] != "start":
            raise ValueError(f"{path}: does not begin with a start document")
        kept, closed, events = _closed(docs)
        uid = kept[0][1]["uid"]
        if uid in catalog:  # written in part before tiled went away: write it whole, once
            catalog.delete_contents(uid, recursive=True, external_only=False)
        writer = TiledWriter(catalog, batch_size=max(events, 1))
        for name, doc in kept:
            writer(name, doc)
        path.unlink()
        return Replayed(uid=uid, events=events, closed=closed)
    finally:
        os.close(fd)


def replay_pending(catalog: Any, directory: Path | None = None) -> list[Replayed]:
    """Write every spooled run not being written by a live process to ``catalog``, oldest first.

    A run tiled refuses (or a damaged file) is reported with its ``error`` and left in the spool;
    the others are still written.

    Raises
    ------
    httpx.TransportError
        tiled is unreachable: nothing more can be written now; the runs stay in the spool.
    """
    import httpx

    directory = directory if directory is not None else spool_dir()
    results = []
    for path in sorted(directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
        try:
            done = replay_file(path, catalog)
        except httpx.TransportError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad run must not keep the others out of the catalog
            logger.warning("spooled run %s not replayed: %s: %s", path, type(exc).__name__, exc)
            done = Replayed(uid=path.stem, events=0, closed=False, error=f"{type(exc).__name__}: {exc}")
        if done is not None:
            results.append(done)
    return results
