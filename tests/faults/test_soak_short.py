"""A short soak (the full 200 scans: `xrd-agent bench soak`): consecutive adaptive scans in one process leak nothing."""

from __future__ import annotations

import pytest

from bench.soak import RSS_LIMIT_MB, soak


@pytest.mark.slow
def test_consecutive_adaptive_scans_leak_no_threads_files_sockets_or_points() -> None:
    result = soak(12, warmup=4)
    assert result["events_lost"] == 0 and result["runs_left_in_spool"] == 0, result
    assert result["threads_leaked"] == 0, result["leaked_thread_names"]
    assert result["fds_leaked"] == 0 and result["sockets_leaked"] == 0, result
    assert result["rss_growth_mb"] <= RSS_LIMIT_MB, result
