"""The facility deployment of docs/deployment.md, for real: tiled serving a catalog on PostgreSQL.

A throw-away PostgreSQL cluster (Debian's server binaries: ``initdb``, ``pg_ctl``) on 127.0.0.1,
``tiled catalog init`` and ``tiled serve catalog`` exactly as the document gives them; then a
bluesky run written through our writer, read back, labelled and listed by ``xrd-agent runs``.
Skipped cleanly where no PostgreSQL server can be started (no binaries; as root, PostgreSQL
refuses to run, so the cluster runs as the ``postgres`` system user through ``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from storage.server import free_port

REPO = Path(__file__).resolve().parent.parent
KEY = "pgtestkey1"


def _as_db_user() -> list[str] | None:
    """The prefix that runs PostgreSQL's programs: nothing, or runuser to ``postgres`` when root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None


@pytest.fixture(scope="module")
def postgres():
    prefix = _as_db_user()
    if prefix is None or not (shutil.which("initdb") and shutil.which("pg_ctl") and shutil.which("createdb")):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) to start a cluster with")
    # not under pytest's temporary folder: the postgres user could not enter root's private one
    root = Path(tempfile.mkdtemp(prefix="xrd-agent-postgresql-"))
    if prefix:
        shutil.chown(root, user="postgres")
    port = free_port()
    data = root / "data"
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    run("initdb", "-D", str(data), "-A", "trust", "-U", "tiled")
    run("pg_ctl", "-D", str(data), "-w", "-l", str(root / "server.log"),
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        for name in ("tiled_catalog", "tiled_tables"):
            run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "tiled", name)
        yield f"postgresql://tiled@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, "pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def served(postgres, tmp_path_factory):
    tiled = Path(sys.executable).with_name("tiled")
    files = tmp_path_factory.mktemp("tiled-files")
    subprocess.run([str(tiled), "catalog", "init", f"{postgres}/tiled_catalog"], check=True, capture_output=True, timeout=120)
    port = free_port()
    server = subprocess.Popen(
        [str(tiled), "serve", "catalog", f"{postgres}/tiled_catalog", "-w", str(files), "-w", f"{postgres}/tiled_tables",
         "--api-key", KEY, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "tiled serve exited"
            try:
                if httpx.get(f"{uri}/v1/", timeout=2, headers={"Authorization": f"Apikey {KEY}"}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tiled serve did not answer within 120 s"
            time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        server.wait(30)


def test_a_run_on_a_postgresql_catalog_is_stored_read_labelled_and_listed(served, monkeypatch) -> None:
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer
    from storage.labels import LABEL_KEY, label_runs
    from storage.scans import scan_arrays

    catalog = open_catalog(served, KEY)
    RE = RunEngine({})
    subscribe_writer(RE, catalog)
    beamline = make_beamline(sample="CsPbBr3", seed=1)
    (uid,) = RE(bp.scan([beamline.detector], beamline.motor, 10.0, 20.0, 26), sample="CsPbBr3")

    two_theta, counts = scan_arrays(open_catalog(served, KEY)[uid])
    np.testing.assert_allclose(two_theta, np.linspace(10.0, 20.0, 26))
    assert counts.shape == (26,) and np.all(counts >= 0)

    label_runs([uid[:8]], space_group="pm-3m", catalog=open_catalog(served, KEY))  # a uid prefix, a lower-case symbol
    assert open_catalog(served, KEY)[uid].metadata["start"][LABEL_KEY]["space_group"] == "Pm-3m"

    env = {**os.environ, "XRD_AGENT_TILED_URI": served, "XRD_AGENT_TILED_API_KEY": KEY}
    listed = subprocess.run([sys.executable, "-m", "cli", "runs", "--labelled"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert uid[:8] in listed.stdout and "Pm-3m" in listed.stdout
