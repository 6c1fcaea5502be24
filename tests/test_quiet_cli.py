"""Quiet by default: no library banner or warning on a plain command, bad arguments in one line,
Prefect's telemetry off in our own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
XRD_AGENT = REPO / ".venv" / "bin" / "xrd-agent"


def plain_env(**extra: str) -> dict[str, str]:
    """A user's shell environment: Python's default warning filters, no CI markers (Prefect's list)."""
    dropped = {"PYTHONWARNINGS", "DO_NOT_TRACK", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TRAVIS",
               "CIRCLECI", "BUILDKITE", "TF_BUILD", "CODEBUILD_BUILD_ID", "BITBUCKET_COMMIT", "TEAMCITY_VERSION",
               "DRONE", "SEMAPHORE", "APPVEYOR", "BUDDY", "CI_NAME", "PREFECT_SERVER_ANALYTICS_ENABLED"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, "OMP_NUM_THREADS": "1", **extra}


def xrd_agent(*args: str, home: Path) -> subprocess.CompletedProcess:
    if not XRD_AGENT.exists():
        pytest.skip("the project is not installed in .venv")
    return subprocess.run([str(XRD_AGENT), *args], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env=plain_env(XRD_AGENT_HOME=str(home)))


def test_a_command_opening_the_catalog_prints_no_banner_and_no_warning(xrd_agent_home: Path) -> None:
    result = xrd_agent("runs", home=xrd_agent_home)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # was: "Tiled version 0.2.20" and starlette's httpx warning


@pytest.mark.parametrize(("args", "expected"), [
    (("scan", "--seed", "x"), "xrd-agent scan: error: argument --seed: invalid int value: 'x'"),
    (("bogus",), "xrd-agent: error: argument COMMAND: invalid choice: 'bogus'"),
    (("scan", "--start", "70", "--stop", "95", "--no-store"),
     "xrd-agent scan: error: scan range 70.0..95.0 deg lies outside the limits"),
])
def test_bad_arguments_are_one_line(args: tuple[str, ...], expected: str, xrd_agent_home: Path) -> None:
    result = xrd_agent(*args, home=xrd_agent_home)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr


def test_prefect_telemetry_is_off_in_our_environment(xrd_agent_home: Path) -> None:
    code = ("import flows, prefect\n"
            "from prefect._internal.analytics import is_telemetry_enabled\n"
            "from prefect.settings import get_current_settings\n"
            "print(is_telemetry_enabled(), get_current_settings().server.analytics_enabled)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=plain_env(XRD_AGENT_HOME=str(xrd_agent_home),
                                          PREFECT_HOME=str(xrd_agent_home / "prefect")))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"], result.stdout
