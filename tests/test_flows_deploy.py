"""The nightly deployment against a real `prefect server` on 127.0.0.1, and a manual run of it.

Starts `prefect server start --host 127.0.0.1 --port <free port>` and `xrd-agent flows serve`
as child processes; both are killed in `finally` whatever happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="xrd-agent-test-prefect-"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from flows.deploy import (  # noqa: E402
    DEPLOYMENT_NAME,
    NIGHTLY_CRON,
    api_is_healthy,
    local_api_url,
    nightly_schedule,
    start_prefect_server,
    stop_process,
    validate_timezone,
    wait_for_api,
)
from storage.server import free_port  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_schedule_and_timezone_validation() -> None:
    schedule = nightly_schedule("Europe/Berlin")
    assert schedule.cron == NIGHTLY_CRON == "0 2 * * *"
    assert schedule.timezone == "Europe/Berlin"
    with pytest.raises(ValueError, match="unknown time zone"):
        validate_timezone("Mars/Olympus_Mons")


def _api(method: str, url: str, timeout_s: float = 60.0, **kwargs) -> httpx.Response:
    """One Prefect API request, repeated while the server answers 503: a busy SQLite database
    ("database is locked") is a 503 there, and Prefect's own client retries it the same way."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.request(method, url, timeout=10, **kwargs)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(1.0)


def _poll(fetch, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fetch()
        if value is not None:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.mark.slow
def test_nightly_deployment_on_a_real_prefect_server(xrd_agent_home: Path, tmp_path: Path) -> None:
    from training.fit import TrainConfig, train_classifier
    from training.simulate import simulate_training_set
    from models.champion import promote

    # A champion in this test's registry, so the served run needs no shipped default model.
    values, labels, _ = simulate_training_set(2, seed=0)
    champion = train_classifier(
        (values, np.ones(values.shape, bool)), labels, task="space_group",
        config=TrainConfig(n_members=1, steps=1, width=4, batch_size=4, calibrate=False),
    )
    promote(champion, root=xrd_agent_home / "models")

    port = free_port()
    api = local_api_url(port)
    server = start_prefect_server(port, home=xrd_agent_home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    serve = None
    try:
        wait_for_api(api, timeout_s=180, process=server)
        health = httpx.get(f"{api}/health", timeout=10)
        assert health.status_code == 200 and health.json() is True
        assert api_is_healthy(api)

        env = {**os.environ, "XRD_AGENT_HOME": str(xrd_agent_home), "PREFECT_API_URL": api}
        env.pop("PREFECT_HOME", None)  # the served runs use XRD_AGENT_HOME/prefect like a user's would
        serve = subprocess.Popen(
            [sys.executable, "-m", "cli", "flows", "serve", "--api-url", api, "--timezone", "Europe/Berlin"],
            cwd=REPO_ROOT, env=env, start_new_session=True,
            stdout=open(tmp_path / "serve.log", "w"), stderr=subprocess.STDOUT,
        )

        def deployment():
            if serve.poll() is not None:
                raise AssertionError(f"`xrd-agent flows serve` exited: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            response = _api("GET", f"{api}/deployments/name/retrain/{DEPLOYMENT_NAME}")
            return response.json() if response.status_code == 200 else None

        found = _poll(deployment, 180, "the nightly deployment")
        schedules = [s["schedule"] for s in found["schedules"]]
        assert {"cron": NIGHTLY_CRON, "timezone": "Europe/Berlin"}.items() <= schedules[0].items()
        assert found["schedules"][0]["active"] is True

        # A manual run (what the UI's "Run" button does) is picked up and executed by the served process.
        created = _api("POST", f"{api}/deployments/{found['id']}/create_flow_run", json={})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]

        def finished():
            state = _api("GET", f"{api}/flow_runs/{run_id}").json()["state"]
            return state if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

        state = _poll(finished, 300, "the manual flow run")
        assert state["type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        if serve is not None:
            stop_process(serve)
        stop_process(server)
    assert server.poll() is not None and (serve is None or serve.poll() is not None)
    assert not api_is_healthy(api)
