"""`xrd-agent scan` in a real child process, killed (SIGKILL) or interrupted (SIGINT, SIGTERM) mid-scan.

The child paces the simulated instrument in wall-clock time (``--speedup``) so that the kill
lands mid-scan; its LiveTable rows (read as they are printed) say which points were measured
when. The kill test prints ``{"killed_at_point", "points_on_disk"}``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cli.main import main
from storage.catalog import get_run, open_catalog
from storage.spool import read_spool_file, spool_dir
from tests.faults.thread_signals import signal_worker_thread

REPO_ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\|\s+(\d+) \|\s+[\d:.]+ \|\s+[-\d.]+ \|\s+[-\d.]+ \|\s+[-\d.]+ \|$")  # seq_num | time | tth | det_counts | det_dwell
SIGNAL_AT_POINT = 40


class ScanProcess:
    """`xrd-agent scan` in a child process; records when each LiveTable row (primary seq_num) was printed."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "XRD_AGENT_HOME": str(home), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "scan", "--sample", "CsPbBr3", "--seed", "0", "--speedup", "20",
             "--no-early-stop"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.rows: list[tuple[float, int]] = []  # (monotonic time printed, seq_num)
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            match = ROW.match(line.strip())
            if match:
                self.rows.append((time.monotonic(), int(match.group(1))))

    def signal_at(self, point: int, sig: int, timeout: float = 180.0, to_worker_thread: bool = False) -> float:
        """Send ``sig`` once row ``point`` is printed and at least 1.5 s after the first row; the send time.

        ``to_worker_thread``: to one thread of the child other than its main thread (``tgkill``), as
        the kernel may deliver a process's signal; Python still runs the handler in the main thread.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "".join(self.stdout) + self.proc.stderr.read()
            if self.rows and self.rows[-1][1] >= point and time.monotonic() - self.rows[0][0] >= 1.5:
                sent = time.monotonic()
                if to_worker_thread:
                    signal_worker_thread(self.proc.pid, sig)
                else:
                    self.proc.send_signal(sig)
                return sent
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError(f"no row {point} within {timeout} s:\n" + "".join(self.stdout[-20:]))

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """Exit code and stderr of the child."""
        try:
            stderr = self.proc.communicate(timeout=timeout)[1]
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(5)
        return self.proc.returncode, stderr


def _primary_seq_nums(docs: list[tuple[str, dict]]) -> list[int]:
    primary = {doc["uid"] for name, doc in docs if name == "descriptor" and doc.get("name") == "primary"}
    return [doc["seq_num"] for name, doc in docs if name == "event" and doc["descriptor"] in primary]


def _stored_seq_nums(run) -> list[int]:
    return [int(s) for s in run["primary"].base["internal"].read()["seq_num"]]


@pytest.mark.slow
def test_sigkill_mid_scan_keeps_every_point_and_replays_once(xrd_agent_home: Path, capsys) -> None:
    scan = ScanProcess(xrd_agent_home)
    killed = scan.signal_at(SIGNAL_AT_POINT, signal.SIGKILL)
    code, _ = scan.finish()
    assert code == -signal.SIGKILL

    (path,) = spool_dir().glob("*.jsonl")
    on_disk = _primary_seq_nums(read_spool_file(path))
    assert len(on_disk) == len(set(on_disk)), "a point is spooled twice"
    before_last_second = {seq for printed, seq in scan.rows if printed < killed - 1.0}
    assert before_last_second, "the kill came too early to test anything"
    assert before_last_second <= set(on_disk), f"lost: {sorted(before_last_second - set(on_disk))}"
    report = {"killed_at_point": max(seq for _, seq in scan.rows), "points_on_disk": len(on_disk)}
    with capsys.disabled():
        print(json.dumps(report))

    assert main(["spool", "replay"]) == 0
    assert "1 run(s) replayed; 0 left" in capsys.readouterr().out
    run = get_run(open_catalog(), path.stem)
    assert run.metadata["stop"]["exit_status"] == "abort"
    assert sorted(_stored_seq_nums(run)) == sorted(on_disk)
    assert not list(spool_dir().glob("*.jsonl"))
    assert main(["spool", "replay"]) == 0  # nothing left: a second replay writes nothing twice
    assert sorted(_stored_seq_nums(get_run(open_catalog(), path.stem))) == sorted(on_disk)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "to_worker_thread"), [(signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["SIGINT", "SIGTERM-on-a-worker-thread"])
def test_interrupted_scan_closes_the_run_in_one_line(xrd_agent_home: Path, sig: int, to_worker_thread: bool) -> None:
    scan = ScanProcess(xrd_agent_home)
    scan.signal_at(SIGNAL_AT_POINT, sig, to_worker_thread=to_worker_thread)
    code, stderr = scan.finish()
    lines = [line for line in stderr.splitlines() if line.strip() and "Tiled version" not in line]
    assert code == 130, stderr
    assert "Traceback" not in stderr and "RE.resume" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith(f"xrd-agent scan: {signal.Signals(sig).name}: run "), stderr

    uid = re.search(r"run ([0-9a-f-]{36})", lines[0]).group(1)
    run = get_run(open_catalog(), uid)
    stop = run.metadata["stop"]
    assert stop["exit_status"] == "abort", (stop, lines)
    stored = _stored_seq_nums(run)
    printed = {seq for _, seq in scan.rows}
    assert len(stored) == stop["num_events"]["primary"] == len(set(stored))
    assert printed <= set(stored) and len(stored) >= SIGNAL_AT_POINT
    assert not list(spool_dir().glob("*.jsonl")), "the run reached tiled: nothing should be left in the spool"
