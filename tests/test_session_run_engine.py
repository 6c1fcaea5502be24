"""The session's RunEngine: scan IDs kept on disk, one summary line per adaptive run, one-line errors."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from bluesky import plans as bp
from ophyd.sim import det as sim_det

from agent.callback import LocalAgent
from plans.adaptive import adaptive_scan
from plans.run_metadata import PersistentMetadata, make_run_engine
from plans.startup import AdaptiveRunSummary, is_user_error, quiet_libraries
from sim_devices import make_beamline

REPO = Path(__file__).resolve().parent.parent

SUMMARY = re.compile(
    r"^adaptive_scan (?P<scan_id>\d+) \[[0-9a-f]{8}\](?: of .+?)?: (?P<answer>\S+, confidence (?P<conf>0\.\d{3}) \(calibrated\)"
    r"|no class), (?P<points>\d+) points, (?P<seconds>[\d.]+) s simulated acquisition, stopped: (?P<why>.+), "
    r"(?P<fallback>no fallback|fallback on \d+ of \d+ decisions \(first: .+\))$"
)


@pytest.fixture(scope="module")
def classifier():
    import torch

    import models

    torch.set_num_threads(1)
    return models.load_default("space_group")


def test_scan_ids_continue_across_run_engines_on_the_same_store(tmp_path: Path) -> None:
    first = make_run_engine(tmp_path)
    first(bp.count([sim_det]))
    first(bp.count([sim_det]))
    assert first.md["scan_id"] == 2
    second = make_run_engine(tmp_path)  # a new session: reads the store
    (uid,) = second(bp.count([sim_det]))
    assert second.md["scan_id"] == 3
    first(bp.count([sim_det]))  # a session still open continues after the other one's scan
    assert first.md["scan_id"] == 4
    assert make_run_engine(tmp_path).md["scan_id"] == 4
    assert make_run_engine(tmp_path / "elsewhere").md.get("scan_id") is None
    assert "bluesky" in make_run_engine(tmp_path).md["versions"]


def test_processes_running_at_once_never_share_a_scan_id(tmp_path: Path) -> None:
    # three processes: three runs each through the RunEngine, then 300 quick increments each,
    # so that their read-modify-write steps overlap
    code = (
        "import sys; from pathlib import Path; from bluesky import plans as bp; from ophyd.sim import det\n"
        "from plans.run_metadata import make_run_engine\n"
        "RE = make_run_engine(Path(sys.argv[1]))\n"
        "for _ in range(3): RE(bp.count([det]), lambda name, doc: name == 'start' and print(doc['scan_id']))\n"
        "for _ in range(300): print(RE.md.next_scan_id())\n"
    )
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
            for _ in range(3)]
    ids = [int(line) for run in runs for line in run.communicate(timeout=120)[0].split()]
    assert all(run.returncode == 0 for run in runs)
    assert sorted(ids) == list(range(1, 3 * 303 + 1))
    assert PersistentMetadata(tmp_path / "run_engine_md.msgpack")["scan_id"] == 3 * 303


def test_a_damaged_store_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "run_engine_md.msgpack").write_bytes(b"\xc1 not msgpack")
    with pytest.raises(ValueError, match="run_engine_md.msgpack: not a RunEngine metadata file"):
        make_run_engine(tmp_path)


def test_an_adaptive_run_ends_with_one_summary_line_from_its_documents(classifier, tmp_path: Path) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    RE = make_run_engine(tmp_path)
    summary = AdaptiveRunSummary(clock=beamline.clock, out=open(os.devnull, "w"))
    RE.subscribe(summary)
    RE(bp.count([sim_det]))  # not an adaptive run: no line
    began = beamline.clock.time()
    (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, start=10.0, stop=25.0,
                              agent=LocalAgent(classifier)))
    assert len(summary.lines) == 1
    match = SUMMARY.match(summary.lines[0])
    assert match, summary.lines[0]
    assert match["scan_id"] == "2" and uid.startswith(summary.lines[0].split("[")[1][:8])
    assert f"] of {beamline.detector.sample.get()}: " in summary.lines[0]  # which sample, from the start document
    assert float(match["seconds"]) == pytest.approx(beamline.clock.time() - began, abs=0.1)
    assert int(match["points"]) > 20 and match["fallback"] == "no fallback"


def test_a_fallback_and_its_reason_are_in_the_summary(classifier, tmp_path: Path) -> None:
    def diverge(two_theta, intensity):
        raise FloatingPointError("model diverged")

    # the real classifier's identity with a predict that fails: every decision falls back
    broken = SimpleNamespace(version=classifier.version, classes=classifier.classes, task=classifier.task,
                             predict=diverge)
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    RE = make_run_engine(tmp_path)
    summary = AdaptiveRunSummary(clock=beamline.clock, out=open(os.devnull, "w"))
    RE.subscribe(summary)
    RE(adaptive_scan([beamline.detector], beamline.motor, stop=9.0, agent=LocalAgent(broken)))
    match = SUMMARY.match(summary.lines[0])
    assert match, summary.lines[0]
    assert match["fallback"].startswith("fallback on ") and "model diverged" in match["fallback"]


def test_bad_input_is_a_user_error_and_its_aborted_run_logs_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert is_user_error(ValueError("scan range 70..95 deg lies outside the limits"))
    assert is_user_error(TypeError("adaptive_scan() got an unexpected keyword argument 'bogus'"))
    assert not is_user_error(TypeError("unsupported operand type(s) for +: 'int' and 'str'"))  # a bug: full traceback
    assert not is_user_error(ZeroDivisionError("division by zero"))
    quiet_libraries()
    RE = make_run_engine(Path(os.environ["XRD_AGENT_HOME"]))
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    with caplog.at_level(logging.ERROR, logger="bluesky"), pytest.raises(ValueError, match="outside the limits"):
        RE(adaptive_scan([beamline.detector], beamline.motor, start=70.0, stop=95.0, agent=None))
    assert not [r for r in caplog.records if r.getMessage() == "Run aborted"]
