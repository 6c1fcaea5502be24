"""The agent in another process: `xrd-agent serve-agent` started with subprocess, real zmq sockets on
127.0.0.1, documents over bluesky's Publisher/Proxy and our DocumentReader with msgpack, decisions over
REQ/REP -- and the agent killed mid-scan, after which the scan finishes at fine steps (the fault
cases of issue 11 are in tests/faults/test_agent_remote.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq
from bluesky import RunEngine

from agent.decision import ActionKind
from agent.remote import AgentTimeout, RemoteAgent, loopback_address, pack, unpack
from plans.adaptive import adaptive_scan
from plans.run_record import RunCollector
from sim_devices import make_beamline

REPO = Path(__file__).resolve().parent.parent
XRD_AGENT = str(REPO / ".venv" / "bin" / "xrd-agent") if (REPO / ".venv" / "bin" / "xrd-agent").exists() else "xrd-agent"
STARTUP_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedAgent:
    """A `xrd-agent serve-agent` process on three free loopback ports."""

    def __init__(self) -> None:
        ports = [free_port() for _ in range(3)]
        self.documents_in, self.documents_out, self.decisions = (f"tcp://127.0.0.1:{p}" for p in ports)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [XRD_AGENT, "serve-agent", "--documents-in", self.documents_in, "--documents-out", self.documents_out,
             "--decisions", self.decisions],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        lines = []
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("serve-agent ready"):
                return
        self.kill()
        raise RuntimeError("serve-agent did not start:\n" + "".join(lines))

    def client(self, **kwargs) -> RemoteAgent:
        return RemoteAgent(self.decisions, self.documents_in, **kwargs)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture(scope="module")
def served() -> Iterator[ServedAgent]:
    agent = ServedAgent()
    yield agent
    agent.kill()


def run_scan(agent: RemoteAgent, *, stop: float, timeout: float = 1.0, sample: str = "CsPbBr3", hook=None):
    beamline = make_beamline(sample=sample, seed=1)
    RE = RunEngine({})
    collector = RunCollector()
    RE.subscribe(collector)
    if hook is not None:
        RE.subscribe(hook)
    (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, stop=stop, agent=agent, timeout=timeout))
    return collector.records[uid]


def test_remote_loop_across_two_processes(served: ServedAgent) -> None:
    client = served.client()
    try:
        info = client.describe(timeout=5.0)
        assert info["model_version"] and info["agent"] == "remote"
        record = run_scan(client, stop=30.0)
    finally:
        client.close()
    assert record.stop["exit_status"] == "success"
    assert not record.fallback_used(), record.stop.get("reason")
    assert record.start["adaptive"]["model_version"] == info["model_version"]
    decisions = record.decisions
    assert len(decisions["action"]) >= 1 and set(decisions["model_version"]) == {info["model_version"]}
    # the remote agent really classified: labels from the model's classes, probabilities sum to 1
    labelled = decisions["label"] != ""
    assert labelled.any()
    assert set(decisions["label"][labelled]) <= set(info["classes"])
    assert np.allclose(decisions["probabilities"][labelled].sum(axis=1), 1.0, atol=1e-3)
    # a coarse step was taken somewhere: the agent, not the fallback, steered
    assert "coarse" in set(decisions["action"])
    assert np.all((record.two_theta >= 5.0 - 1e-9) & (record.two_theta <= 30.0 + 1e-9))


def test_agent_killed_mid_scan_scan_completes_at_fine_steps(served: ServedAgent) -> None:
    victim = ServedAgent()  # its own process: the module's agent stays up for the other tests
    client = victim.client()
    killed_at: list[int] = []

    def kill_after_20_points(name: str, doc: dict) -> None:
        if name == "event" and doc["seq_num"] == 20 and not killed_at and "tth" in doc["data"]:
            victim.kill()
            killed_at.append(doc["seq_num"])

    try:
        started = time.monotonic()
        record = run_scan(client, stop=12.0, timeout=0.5, hook=kill_after_20_points)
        elapsed = time.monotonic() - started
    finally:
        client.close()
        victim.kill()
    assert killed_at, "the agent was never killed"
    assert record.stop["exit_status"] == "success"
    fallback = record.decisions["fallback"].astype(bool)
    assert all("agent failed" in reason for reason in record.decisions["reason"][fallback])  # why, in the run
    assert fallback.any() and not fallback[:10].any()
    # after the first fallback every step is a fine step forward, to the end of the range
    first = int(np.argmax(fallback))
    assert set(record.decisions["action"][first + 1 :]) <= {ActionKind.FINE.value, ActionKind.STOP.value}
    tail = np.sort(record.two_theta)[-20:]
    assert np.allclose(np.diff(tail), 0.04, atol=1e-6)
    assert record.two_theta.max() == pytest.approx(12.0)
    assert elapsed < 60  # one timeout, not one per point


def test_dead_agent_at_start_falls_back_without_hanging() -> None:
    client = RemoteAgent(f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}", connect_wait=0.0)
    try:
        started = time.monotonic()
        record = run_scan(client, stop=7.0, timeout=0.3)
        assert time.monotonic() - started < 20
    finally:
        client.close()
    assert record.stop["exit_status"] == "success"
    reasons = record.decisions["reason"]
    assert all("agent failed" in reason or "asked again" in reason for reason in reasons)
    assert "(from point 1 to the end: agent unavailable at start" in record.stop["reason"]
    assert record.decisions["fallback"].all()
    assert "fallback points" in record.stop["reason"] and "class none" in record.stop["reason"]
    assert np.allclose(np.diff(np.sort(record.two_theta)), 0.04, atol=1e-6)


def test_request_timeout_recreates_the_req_socket() -> None:
    """A REP that never answers: the client times out twice without locking up."""
    context = zmq.Context()
    silent = context.socket(zmq.REP)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    client = RemoteAgent(f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{free_port()}", connect_wait=0.0)
    try:
        for _ in range(2):
            with pytest.raises(AgentTimeout):
                client.describe(timeout=0.2)
    finally:
        client.close()
        silent.close(linger=0)
        context.term()


def test_server_answers_garbage_and_pickle_with_an_error(served: ServedAgent) -> None:
    import pickle

    context = zmq.Context()
    req = context.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(served.decisions)
    try:
        for payload in (pickle.dumps({"op": "hello"}), b"\xc1 not msgpack", pack(["op"]), pack({"op": "nope"}),
                        pack({"op": "decide", "run_uid": "no-such-run", "n_points": 1, "timeout": 0.1})):
            req.send(payload)
            assert req.poll(5000), "no answer"
            reply = unpack(req.recv())
            assert reply["ok"] is False and reply["error"]
    finally:
        req.close()
        context.term()


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:5579", "tcp://*:5579", "5579", "tcp://127.0.0.1:0", "ipc:///tmp/x"])
def test_only_loopback_addresses_are_accepted(address: str) -> None:
    with pytest.raises(ValueError):
        loopback_address(address)


def test_serve_agent_rejects_a_public_address() -> None:
    result = subprocess.run([XRD_AGENT, "serve-agent", "--decisions", "tcp://0.0.0.0:5999"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "127.0.0.1" in result.stderr
    assert sys.executable  # the test ran in the project's interpreter
