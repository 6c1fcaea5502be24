"""Every server binds 127.0.0.1, tiled wants its API key, nothing is unpickled from the wire.

Real child processes (`xrd-agent tiled serve`, `xrd-agent serve-agent`, `xrd-agent ioc`); their
listening sockets are read from the operating system (psutil), requests go over real sockets.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgpack
import psutil
import pytest
import zmq

from agent.remote import pack, unpack
from storage.catalog import API_KEY_ENV
from storage.server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "securitytestkey42"


class _CreatesFile:
    """Unpickling this creates ``path``: the proof that something was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _start(args: list[str], home: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "XRD_AGENT_HOME": str(home), API_KEY_ENV: KEY, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=REPO_ROOT, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(server: subprocess.Popen, log: Path, text: str, timeout: float = 400.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)


def _listening(pid: int, udp_ports: tuple[int, ...] = ()) -> set[str]:
    """Addresses the process (and its children) serves on: TCP listening sockets, UDP sockets on ``udp_ports``.

    Other UDP sockets are a client's (caproto's beacon sender binds an ephemeral port and only sends).
    """
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    addresses = set()
    for proc in procs:
        for conn in proc.net_connections(kind="inet"):
            udp_server = conn.type == socket.SOCK_DGRAM and conn.laddr and conn.laddr.port in udp_ports
            if conn.status == psutil.CONN_LISTEN or udp_server:
                addresses.add(conn.laddr.ip)
    return addresses


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


@pytest.mark.slow
def test_tiled_listens_on_loopback_only_and_refuses_a_request_without_the_key(xrd_agent_home, tmp_path) -> None:
    port, log = free_port(), tmp_path / "tiled.log"
    server = _start(["tiled", "serve", "--port", str(port)], xrd_agent_home, log)
    try:
        _wait_for(server, log, "tiled serving")
        url = f"http://127.0.0.1:{port}/api/v1/metadata/"
        deadline = time.monotonic() + 60
        while True:
            try:
                anonymous = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert _listening(server.pid) == {"127.0.0.1"}
        assert anonymous.status_code == 401
        assert httpx.get(url, headers={"Authorization": "Apikey wrongkey1"}, timeout=5).status_code == 401
        assert httpx.get(url, params={"api_key": "wrongkey1"}, timeout=5).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Apikey {KEY}"}, timeout=5).status_code == 200
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory):
    """`xrd-agent serve-agent` on three free loopback ports: (process, documents_in, decisions)."""
    tmp = tmp_path_factory.mktemp("agent")
    ports = [free_port() for _ in range(3)]
    documents_in, documents_out, decisions = (f"tcp://127.0.0.1:{p}" for p in ports)
    log = tmp / "agent.log"
    server = _start(["serve-agent", "--documents-in", documents_in, "--documents-out", documents_out,
                     "--decisions", decisions], tmp, log)
    try:
        _wait_for(server, log, "serve-agent ready")
        yield server, documents_in, decisions
    finally:
        _stop(server)


def _request(address: str, payload: bytes) -> dict:
    context = zmq.Context.instance()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    try:
        socket.send(payload)
        assert socket.poll(10_000), "the agent did not answer"
        return unpack(socket.recv())
    finally:
        socket.close()


def _publish(address: str, messages: list[bytes]) -> None:
    socket = zmq.Context.instance().socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 1000)
    socket.connect(address)
    time.sleep(0.5)  # a PUB socket drops messages until its connection is up
    for message in messages:
        socket.send(message)
    time.sleep(0.5)
    socket.close()


@pytest.mark.slow
def test_agent_listens_on_loopback_only_and_refuses_pickle(agent_server, tmp_path) -> None:
    server, documents_in, decisions = agent_server
    assert _listening(server.pid) == {"127.0.0.1"}
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(_CreatesFile(marker))
    reply = _request(decisions, evil)
    assert reply["ok"] is False
    _publish(documents_in, [b"prefix event " + evil, b"prefix start " + evil])
    health = _request(decisions, pack({"op": "health"}))
    assert not marker.exists(), "a pickle sent to the agent was unpickled"
    assert health["healthy"] and health["documents_dropped"] >= 2, health


@pytest.mark.slow
def test_agent_never_unpickles_a_pickle_hidden_in_msgpack(agent_server, tmp_path) -> None:
    server, documents_in, decisions = agent_server
    marker = tmp_path / "unpickled-from-msgpack"
    hidden = msgpack.packb({b"nd": True, b"kind": b"O", b"data": pickle.dumps(_CreatesFile(marker))},
                           use_bin_type=True)
    _request(decisions, hidden)
    _publish(documents_in, [b"prefix event " + hidden])
    _request(decisions, pack({"op": "health"}))
    assert not marker.exists(), "a pickle inside a msgpack payload was unpickled by the agent"


@pytest.mark.slow
def test_ioc_listens_on_loopback_only(tmp_path) -> None:
    log, port = tmp_path / "ioc.log", free_port()
    server = _start(["ioc", "--port", str(port), "--speedup", "50"], tmp_path, log)
    try:
        _wait_for(server, log, "127.0.0.1")
        time.sleep(1.0)
        addresses = _listening(server.pid, udp_ports=(port, 5064, 5065))  # the CA server, search and repeater
        assert addresses == {"127.0.0.1"}, addresses
    finally:
        _stop(server)


@pytest.mark.slow
def test_prefect_server_listens_on_loopback_only(tmp_path) -> None:
    # the server `flows run`, `flows serve` and `prefect-ui` start, started the same way
    from flows.prefect_server import local_api_url, start_prefect_server, stop_process, wait_for_api

    port = free_port()
    server = start_prefect_server(port, home=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_api(local_api_url(port), timeout_s=300, process=server)
        assert _listening(server.pid) == {"127.0.0.1"}
    finally:
        stop_process(server)
