"""A short soak (the full 200 scans: `xrd-agent bench soak`): consecutive adaptive scans in one process leak nothing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from bench.soak import RSS_LIMIT_MB, soak
from storage.catalog import embedded_paths, open_catalog


@pytest.mark.slow
def test_consecutive_adaptive_scans_leak_no_threads_files_sockets_or_points() -> None:
    result = soak(12, warmup=4)
    assert result["events_lost"] == 0 and result["runs_left_in_spool"] == 0, result
    assert result["threads_leaked"] == 0, result["leaked_thread_names"]
    assert result["fds_leaked"] == 0 and result["sockets_leaked"] == 0, result
    assert result["rss_growth_mb"] <= RSS_LIMIT_MB, result


def _catalog_handles(db: Path) -> int:
    """File descriptors of this process open on the catalog's SQLite file."""
    handles = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            handles += Path(os.readlink(f"/proc/self/fd/{fd}")) == db
        except OSError:  # closed between the listing and the readlink
            pass
    return handles


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_overlapping_catalog_requests_leave_no_sqlite_connection_open() -> None:
    # what the 200-scan soak found: a run's writer thread and a reader overlapping grew tiled's
    # connection pool, one file handle (and one thread) for the rest of the process
    catalog = open_catalog()
    len(catalog)
    db = embedded_paths().catalog_db.resolve()
    before = _catalog_handles(db)

    def read() -> None:
        for _ in range(15):
            len(catalog)
            list(catalog.keys()[:5])

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert before >= 1 and _catalog_handles(db) == before
