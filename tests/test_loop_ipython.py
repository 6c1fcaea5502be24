"""`RE(adaptive_scan())` in an IPython session started the documented way prints a LiveTable."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IPYTHON = REPO / ".venv" / "bin" / "ipython"


@pytest.mark.slow
def test_adaptive_scan_in_ipython_prints_a_live_table(xrd_agent_home: Path) -> None:
    if not IPYTHON.exists():
        pytest.skip("IPython is not installed in .venv")
    session = "uid, = RE(adaptive_scan())\nprint('RUN-UID', uid)\nprint('STORED', uid in catalog)\nexit\n"
    result = subprocess.run(
        [str(IPYTHON), "-i", "-m", "plans.startup", "--no-banner", "--colors=NoColor", "--simple-prompt"],
        input=session, capture_output=True, text=True, timeout=600, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Try: RE(adaptive_scan())" in output
    # the LiveTable: a header row naming the motor and the detector, then numbered rows
    header = [line for line in output.splitlines() if re.match(r"^\|\s+seq_num\s+\|", line)]
    assert header and "tth" in header[0] and "det_counts" in header[0], output[-3000:]
    rows = [line for line in output.splitlines() if re.match(r"^\|\s+\d+\s+\|", line)]
    assert len(rows) >= 20
    assert re.search(r"RUN-UID [0-9a-f-]{36}", output)
    assert "STORED True" in output
    assert "Traceback" not in output
