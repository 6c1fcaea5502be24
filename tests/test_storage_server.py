"""`xrd-agent tiled serve` on 127.0.0.1 with a generated key; runs written and labelled through it.

The server is a child process, always killed in `finally`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.main import main
from storage.catalog import open_catalog, subscribe_writer
from storage.labels import LABEL_KEY
from storage.server import ServeInfo, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_client_lines_name_uri_and_key() -> None:
    lines = ServeInfo(uri="http://127.0.0.1:8123", api_key="abc123").client_lines()
    assert "open_catalog('http://127.0.0.1:8123', api_key='abc123')" in lines
    assert "XRD_AGENT_TILED_URI=http://127.0.0.1:8123 XRD_AGENT_TILED_API_KEY=abc123" in lines


@pytest.mark.slow
def test_served_catalog_round_trip(xrd_agent_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline

    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "XRD_AGENT_HOME": str(xrd_agent_home)}
    env.pop("XRD_AGENT_TILED_API_KEY", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "tiled", "serve", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        key = None
        while key is None and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            match = re.search(r"api_key='([0-9a-f]{64})'", log.read_text())
            key = match.group(1) if match else None
            time.sleep(0.5)
        assert key is not None, log.read_text()
        uri = f"http://127.0.0.1:{port}"
        catalog = None
        while catalog is None and time.monotonic() < deadline:
            try:
                catalog = open_catalog(uri, api_key=key)
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.5)
        assert catalog is not None

        # A plan's documents go over HTTP to the served catalog and read back with every event.
        RE = RunEngine({})
        subscribe_writer(RE, catalog)
        bl = make_beamline(sample="CsPbBr3", seed=0)
        (uid,) = RE(bp.scan([bl.detector], bl.motor, 20.0, 25.0, 26), sample="CsPbBr3")
        assert catalog[uid].primary.read()["det_counts"].shape == (26,)

        # The CLI labels and lists through the server; a bad class writes nothing and exits 2.
        assert main(["label", uid, "--space-group", "P4/nmm", "--uri", uri, "--api-key", key]) == 2
        assert "unknown space group 'P4/nmm'" in capsys.readouterr().err
        assert LABEL_KEY not in catalog[uid].metadata["start"]
        assert main(["runs", "--unlabelled", "--uri", uri, "--api-key", key]) == 0
        assert uid[:8] in capsys.readouterr().out  # `runs` names a run by its first 8 uid characters
        assert main(["label", uid, "--space-group", "Pm-3m", "--by", "alice", "--uri", uri, "--api-key", key]) == 0
        assert "labelled" in capsys.readouterr().out
        assert catalog[uid].metadata["start"][LABEL_KEY]["by"] == "alice"
        assert main(["runs", "--labelled", "--uri", uri, "--api-key", key]) == 0
        listing = capsys.readouterr().out
        assert uid[:8] in listing and "Pm-3m / 3D by alice" in listing

        # Through a served catalog too, the metadata commands import no heavy stack.
        from tests.test_storage_catalog_db import command_modules

        for argv in (["runs", "--uri", uri, "--api-key", key],
                     ["label", uid[:8], "--space-group", "Pm-3m", "--by", "bob", "--uri", uri, "--api-key", key]):
            code, heavy, err = command_modules(argv)
            assert code == 0 and heavy == [], (argv, err, sorted({m.split(".")[0] for m in heavy}))
        assert catalog[uid].metadata["start"][LABEL_KEY]["by"] == "bob"

        # The served catalog is the embedded one: an embedded reader sees the label too.
        assert open_catalog()[uid].metadata["start"][LABEL_KEY]["space_group"] == "Pm-3m"

        # Without the key nothing is served.
        with pytest.raises(Exception):
            open_catalog(uri, api_key="0" * 64)[uid]
    finally:
        if server.poll() is None:
            import signal

            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=15)
    assert server.poll() is not None
