"""The IPython session driven as a user does: `printf 'RE(adaptive_scan())\\nexit\\n' | xrd-agent ipython`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
XRD_AGENT = REPO / ".venv" / "bin" / "xrd-agent"
IPYTHON = REPO / ".venv" / "bin" / "ipython"
SUMMARY = re.compile(
    r"^adaptive_scan (\d+) \[[0-9a-f]{8}\](?: of .+?)?: (\S+, confidence 0\.\d{3} \(calibrated\)|no class), \d+ points, "
    r"[\d.]+ s simulated acquisition, stopped: .+, (no fallback|fallback on .+)$", re.MULTILINE)


def session(command: list[str], lines: str) -> str:
    # the user's environment: Python's default warning filters (pytest's are not inherited)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    result = subprocess.run(command, input=lines, capture_output=True, text=True, timeout=600, cwd=REPO,
                            env={**env, "OMP_NUM_THREADS": "1"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_a_session_prints_the_live_table_and_a_summary_line_and_scan_ids_continue_in_the_next() -> None:
    if not XRD_AGENT.exists():
        pytest.skip("the project is not installed in .venv")
    first = session([str(XRD_AGENT), "ipython"],
                    "uid, = RE(adaptive_scan())\nprint('STORED', uid in catalog)\nexit\n")
    assert "Try: RE(adaptive_scan())" in first
    # the LiveTable: a header row naming the motor and the detector, then numbered rows
    header = [line for line in first.splitlines() if re.match(r"^\|\s+seq_num\s+\|", line)]
    assert header and "tth" in header[0] and "det_counts" in header[0] and "det_dwell" in header[0], first[-3000:]
    assert len([line for line in first.splitlines() if re.match(r"^\|\s+\d+\s+\|", line)]) >= 20
    summary = SUMMARY.search(first)
    assert summary, first[-3000:]
    assert "STORED True" in first
    # quiet: no banner, no warning, no traceback
    for noise in ("Tiled version", "Warning", "Traceback"):
        assert noise not in first, first[-3000:]

    second = session([str(IPYTHON), "-i", "-m", "plans.startup", "--no-banner", "--simple-prompt"],
                     "RE(bp.count([det]))\nprint('SCAN-ID', RE.md['scan_id'])\n"
                     "RE(adaptive_scan(start=70, stop=95))\nRE(adaptive_scan(bogus=1))\nexit\n")
    assert f"SCAN-ID {int(summary.group(1)) + 1}" in second, second[-3000:]
    # bad arguments: one line each, naming the problem; no traceback
    assert re.search(r"^(In \[\d+\]: )?ScanRangeError: scan range 70.0..95.0 deg lies outside the limits .+ "
                     r"\(%tb: traceback\)$", second, re.MULTILINE), second[-3000:]
    assert "TypeError: adaptive_scan() got an unexpected keyword argument 'bogus'" in second
    assert "Traceback" not in second and "Run aborted" not in second
