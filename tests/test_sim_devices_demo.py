"""The first `xrd-agent demo` and its reusable uniform-scan functions (plans.uniform)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from plans.uniform import plot_uniform_scans, points_for_step, run_uniform_scan
from sim_devices import make_beamline


def test_points_for_step() -> None:
    assert points_for_step(5.0, 60.0, 0.04) == 1376
    assert points_for_step(5.0, 60.0, 0.16) == 344
    with pytest.raises(ValueError, match="step > 0"):
        points_for_step(5.0, 60.0, 0.0)


def test_uniform_scan_records_positions_counts_and_time(tmp_path: Path) -> None:
    beamline = make_beamline(sample="CsPbBr3", seed=3, position=29.0)
    scan = run_uniform_scan(beamline, 29.0, 32.0, 0.16)
    assert scan.points == 19 and scan.uid
    np.testing.assert_allclose(scan.two_theta, 29.0 + 0.16 * np.arange(19), atol=1e-9)
    assert scan.acq_time_s >= 19 * 1.0 and np.all(scan.counts >= 0)
    png = plot_uniform_scans([scan], tmp_path / "one.png")
    assert png.stat().st_size > 10_000


def test_demo_command_prints_both_scans_and_writes_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--uniform", "--sample", "CsPbBr3", "--start", "28", "--stop", "33", "--out", str(tmp_path)])
    output = capsys.readouterr().out
    assert code == 0
    assert "step 0.16 deg:    32 points" in output and "step 0.04 deg:   126 points" in output
    assert "simulated acquisition" in output and "wall" in output
    assert (tmp_path / "uniform-scans-CsPbBr3.png").stat().st_size > 10_000


def test_demo_rejects_an_unknown_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--uniform", "--sample", "no-such-sample", "--out", str(tmp_path)]) == 2
    assert "unknown sample 'no-such-sample'" in capsys.readouterr().err
    assert main(["demo", "--samples", "CsPbBr3", "no-such-sample", "--out", str(tmp_path)]) == 2
    assert "unknown sample 'no-such-sample'" in capsys.readouterr().err


def test_adaptive_demo_stores_its_run_and_prints_the_next_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--samples", "auto-xrd/MASnI3_2-Theta_Omega", "--start", "10", "--stop", "20",
                 "--out", str(tmp_path)])
    output = capsys.readouterr().out
    assert code == 0
    assert "of uniform 0.04 (251 pts" in output
    assert "(calibrated)" in output and ("stopped: settled" in output or "stopped: range complete" in output)  # how it ended
    # the answer marked against the known label, and counted in the summary
    marked = re.search(r"MASnI3\S* +(\S+) +(right|WRONG \(true I4/mcm\))", output)
    assert marked and (marked.group(2) == "right") == (marked.group(1) == "I4/mcm")
    assert f"{int(marked.group(2) == 'right')} of 1 answers right" in output
    assert "xrd-agent label" in output and "xrd-agent flows run" in output and "prefect-ui" in output
    assert len(list(tmp_path.glob("*.png"))) == 1
    from storage.catalog import open_catalog

    assert len(open_catalog()) == 1
