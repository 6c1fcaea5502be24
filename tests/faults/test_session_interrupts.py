"""Ctrl-C in a real `xrd-agent ipython` session, typed into a pseudo-terminal (issue 11 case 7).

The session runs in a pty (pexpect, which IPython itself depends on), so Ctrl-C is the terminal's
interrupt character turned into SIGINT by the line discipline, exactly as at a keyboard; bluesky's
own handler then asks for a pause. The simulated instrument is paced in wall-clock time by typing
``bl.clock.real_time = True`` into the session, so the Ctrl-C lands mid-scan. IPython's simple
prompt (``IPY_TEST_SIMPLE_PROMPT``) keeps the transcript free of prompt_toolkit's escape codes;
the Ctrl-C path (a RunEngine call in the foreground) is the same with either prompt.

Checked: what the pause and the abort print (one line each, no traceback), and the run in the
session's tiled catalog (read from this process): its exit_status, as many stored rows as its
stop document counts, no seq_num twice, every point printed before the Ctrl-C stored.
"""

from __future__ import annotations

import io
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plans.startup import PAUSED_LINE
from storage.catalog import get_run, open_catalog
from tests.faults.thread_signals import signal_worker_thread

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parents[2]
XRD_AGENT = REPO / ".venv" / "bin" / "xrd-agent"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ROW = re.compile(r"^\|\s+(\d+) \|\s+[\d:.]+ \|\s+[-\d.]+ \|\s+[-\d.]+ \|\s+[-\d.]+ \|$", re.MULTILINE)  # seq_num|time|tth|counts|dwell
PROMPT = r"In \[\d+\]: "
UID = re.compile(r"Out ?\[\d+\]: \('([0-9a-f-]{36})',\)")
TABLE_LINE = ("|", "+", "generator ")  # the LiveTable's rows, its closing rule, and its "generator ..." footer


class Session:
    """`xrd-agent ipython` in a pty; ``text`` is everything it printed so far (escape codes removed)."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "XRD_AGENT_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
               "IPY_TEST_SIMPLE_PROMPT": "1"}
        env.pop("PYTHONWARNINGS", None)  # the user's warning filters, not pytest's
        self._log = io.StringIO()
        self.child = pexpect.spawn(str(XRD_AGENT), ["ipython"], cwd=str(REPO), env=env, encoding="utf-8",
                                   timeout=180, dimensions=(50, 200))
        self.child.logfile_read = self._log
        self.child.expect(PROMPT)

    @property
    def text(self) -> str:
        # the terminal echoes Ctrl-C as "^C" wherever the cursor is, possibly inside a table row
        return ANSI.sub("", self._log.getvalue()).replace("\r\n", "\n").replace("^C", "")

    def type(self, line: str, timeout: float = 180) -> str:
        """Type ``line``, wait for the next prompt; what the session printed in between (not the echo)."""
        mark = len(self.text)
        self.child.sendline(line)
        self.child.expect(PROMPT, timeout=timeout)
        echo, _, printed = self.text[mark:].partition("\n")
        assert echo.strip() == line, echo
        return printed

    def start(self, line: str) -> int:
        """Type ``line`` and return at once (a scan in the foreground); the transcript mark before it."""
        mark = len(self.text)
        self.child.sendline(line)
        return mark

    def scan_until_row(self, speedup: float, start: float, stop: float, row: int, timeout: float = 240) -> int:
        """Pace the simulated beamline ``speedup`` times faster than the instrument, start an adaptive
        scan of ``start``-``stop`` degrees to the end of the range, and return once row ``row`` is
        printed; the transcript mark before the scan."""
        self.type(f"bl.clock.real_time = True; bl.clock.speedup = {speedup}")
        mark = self.start(f"RE(adaptive_scan(start={start}, stop={stop}, early_stop=False))")
        self.child.expect(rf"\|\s+{row} \|", timeout=timeout)
        return mark

    def close(self) -> None:
        self.child.sendline("exit")
        self.child.expect(pexpect.EOF, timeout=60)
        self.child.close()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Path]]:
    if not XRD_AGENT.exists():
        pytest.skip("the project is not installed in .venv")
    home = tmp_path_factory.mktemp("session-home")
    shell = Session(home)
    try:
        yield shell, home
    finally:
        if shell.child.isalive():
            shell.child.terminate(force=True)


def _stored_run(home: Path, uid: str, monkeypatch: pytest.MonkeyPatch, timeout: float = 60.0):
    """The run from the session's catalog once its stop document is there (tiled is written from a thread)."""
    monkeypatch.setenv("XRD_AGENT_HOME", str(home))
    deadline = time.monotonic() + timeout
    while True:
        try:
            run = get_run(open_catalog(), uid)
            if run.metadata.get("stop"):
                return run
        except KeyError:
            pass
        assert time.monotonic() < deadline, f"run {uid} has no stop document in the catalog after {timeout} s"
        time.sleep(0.5)


def _stored_seq_nums(run) -> list[int]:
    return [int(s) for s in run["primary"].base["internal"].read()["seq_num"]]


def _rows(text: str) -> list[int]:
    return [int(m.group(1)) for m in ROW.finditer(text)]


def _said(text: str) -> list[str]:
    """The lines the session printed that are not the LiveTable, IPython's Out[] echo or a blank."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith(TABLE_LINE) and not re.match(r"(In|Out) ?\[\d+\]", line)]


@pytest.mark.slow
def test_ctrl_c_then_abort_closes_the_run_as_abort_with_every_printed_point(session, monkeypatch) -> None:
    shell, home = session
    mark = shell.scan_until_row(20, 8, 30, row=30)  # ~0.06 s of wall clock per point
    printed_before = set(_rows(shell.text[mark:]))
    shell.child.sendintr()  # Ctrl-C: bluesky's deferred pause, at the next checkpoint
    shell.child.expect(PROMPT, timeout=120)
    paused = shell.text[mark:]
    assert "Traceback" not in paused, paused[-3000:]
    assert PAUSED_LINE in paused and "Pausing..." in paused, paused[-3000:]

    aborted = shell.type("RE.abort()")
    assert "Traceback" not in aborted and "Run aborted" not in aborted, aborted
    said = _said(aborted)
    # bluesky's one line, then the session's summary of the run it closed
    assert said[:1] == ["Aborting: running cleanup and marking exit_status as 'abort'..."], aborted
    assert len(said) == 2 and re.match(r"adaptive_scan \d+ \[[0-9a-f]{8}\](?: of .+?)?: .+stopped: abort", said[1]), aborted

    run = _stored_run(home, UID.search(aborted).group(1), monkeypatch)
    stop = run.metadata["stop"]
    stored = _stored_seq_nums(run)
    assert stop["exit_status"] == "abort", stop
    assert len(stored) == stop["num_events"]["primary"] == len(set(stored)), (stop, stored)
    assert printed_before <= set(stored), f"printed but not stored: {sorted(printed_before - set(stored))}"
    assert set(stored) == set(_rows(shell.text[mark:])) == set(range(1, len(stored) + 1))


@pytest.mark.slow
def test_a_sigint_landing_on_a_worker_thread_still_pauses_the_run_at_once(session, monkeypatch) -> None:
    # the kernel may hand a process's SIGINT to any thread; the session's main thread must still wake
    shell, home = session
    mark = shell.scan_until_row(20, 8, 30, row=10)
    signal_worker_thread(shell.child.pid, signal.SIGINT)
    shell.child.expect(PROMPT, timeout=120)
    assert PAUSED_LINE in shell.text[mark:], shell.text[mark:][-3000:]
    aborted = shell.type("RE.abort()")
    stop = _stored_run(home, UID.search(aborted).group(1), monkeypatch).metadata["stop"]
    assert stop["exit_status"] == "abort" and stop["num_events"]["primary"] < 100, stop


@pytest.mark.slow
def test_ctrl_c_twice_pauses_at_once_and_resume_runs_to_the_end_with_each_point_once(session, monkeypatch) -> None:
    shell, home = session
    # ~2 s of wall clock per point: both Ctrl-Cs land after the agent's answer to row 2 (the
    # checkpoint) and before the next point's, so the second one pauses mid-point
    mark = shell.scan_until_row(0.5, 8, 9, row=2)
    time.sleep(0.6)
    shell.child.sendintr()
    time.sleep(0.15)  # bluesky counts a second Ctrl-C only 100 ms or more after the first
    shell.child.sendintr()  # Ctrl-C twice: bluesky's immediate ("hard") pause
    shell.child.expect(PROMPT, timeout=120)
    paused = shell.text[mark:]
    assert "A 'hard pause' has been requested." in paused, paused[-3000:]
    assert "Traceback" not in paused and PAUSED_LINE in paused, paused[-3000:]

    resumed = shell.type("RE.resume()", timeout=300)
    assert "Traceback" not in resumed, resumed
    run = _stored_run(home, UID.search(resumed).group(1), monkeypatch)
    stop = run.metadata["stop"]
    stored = _stored_seq_nums(run)
    assert stop["exit_status"] == "success", stop
    assert len(stored) == stop["num_events"]["primary"] == len(set(stored)), (stop, stored)
    assert set(stored) == set(_rows(shell.text[mark:])) == set(range(1, len(stored) + 1))
    assert float(run["primary"].read()["tth"].max()) >= 8.8, "resume did not run to the end of the range"
    shell.close()
