"""Issue 11, the remote agent's side: `xrd-agent serve-agent` in a subprocess, real zmq sockets on
127.0.0.1, the real RunEngine and ophyd sim devices. A late answer (the agent process stopped with
SIGSTOP for 1.5 s) costs one point (case 2); garbage, oversized and wrong-schema messages on both
sockets are dropped while the agent keeps serving, and its health names every thread (case 4); a
bad model file asked for keeps the previous model (case 11); the agent killed mid-scan is warned
about at once, the stop document says from which point the plan fell back, and no stale class is
reported (case 1). One agent process serves the module; the kill test kills it, so it runs last."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from agent.remote import MAX_DOCUMENT_BYTES, MAX_REQUEST_BYTES, AgentError, pack, unpack
from tests.test_remote_agent import ServedAgent, run_scan

LATE_S = 1.5
"""How long the agent is stopped: an answer 1.5 s late, the issue's figure."""


@pytest.fixture(scope="module")
def served() -> Iterator[ServedAgent]:
    agent = ServedAgent()
    yield agent
    agent.kill()


def primary_point(doc: dict, n: int) -> bool:
    return doc.get("seq_num") == n and "tth" in doc.get("data", {})


def test_a_late_answer_costs_one_point_and_the_agent_steers_again(served: ServedAgent) -> None:
    stopped: list[float] = []

    def stall_at_point_30(name: str, doc: dict) -> None:
        if name == "event" and primary_point(doc, 30) and not stopped:
            os.kill(served.process.pid, signal.SIGSTOP)
            stopped.append(time.monotonic())
            threading.Timer(LATE_S, os.kill, (served.process.pid, signal.SIGCONT)).start()

    client = served.client()
    try:
        record = run_scan(client, stop=25.0, timeout=1.0, hook=stall_at_point_30)
    finally:
        os.kill(served.process.pid, signal.SIGCONT)
        client.close()
    assert stopped, "the agent was never stopped"
    fallback = record.decisions["fallback"].astype(bool)
    assert 1 <= fallback.sum() <= 3, record.decisions["reason"][fallback]  # one point, two on a loaded machine
    assert record.decisions["n_fallback"][-1] == fallback.sum()
    last = int(np.flatnonzero(fallback)[-1])
    after = record.decisions["action"][last + 1:]
    assert len(after) > 10 and "coarse" in set(after)  # adaptivity came back for the rest of the run
    assert f"fallback points: {fallback.sum()} (first at point" in record.stop["reason"]


GARBAGE_DOCUMENTS = [
    b"x bogus y",  # an unknown document name (killed bluesky's RemoteDispatcher)
    b"no-spaces-at-all",
    b"p start \xc1\xc1\xc1",  # not msgpack
    b"p start " + pack([1, 2, 3]),  # not a document
    b"p start " + pack({"adaptive": {"policy": {}}}),  # wrong schema: no uid, no fields
    b"p event " + b"\x00" * (MAX_DOCUMENT_BYTES + 1),  # oversized
]


def test_garbage_on_both_sockets_is_dropped_and_the_agent_keeps_serving(served: ServedAgent) -> None:
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    publisher.setsockopt(zmq.LINGER, 0)
    publisher.connect(served.documents_in)
    request = context.socket(zmq.REQ)
    request.setsockopt(zmq.LINGER, 0)
    request.connect(served.decisions)

    def ask(payload: bytes) -> dict:
        request.send(payload)
        assert request.poll(10_000), "no answer"
        return unpack(request.recv())

    try:
        time.sleep(0.5)  # a PUB socket drops what it sends before its connection is up
        before = ask(pack({"op": "health"}))["documents_dropped"]
        for message in GARBAGE_DOCUMENTS:
            publisher.send(message)
        deadline = time.monotonic() + 20
        while (health := ask(pack({"op": "health"})))["documents_dropped"] < before + len(GARBAGE_DOCUMENTS):
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        for payload in (b"\x00" * (MAX_REQUEST_BYTES + 1), pickle.dumps({"op": "hello"}), pack({"op": 7})):
            reply = ask(payload)
            assert reply["ok"] is False and reply["error"]
    finally:
        publisher.close()
        request.close()
        context.term()
    assert health["healthy"] and health["threads"] == {"proxy": True, "documents": True, "decisions": True}
    client = served.client()
    try:
        record = run_scan(client, stop=10.0)  # the agent still steers the next scan
    finally:
        client.close()
    assert not record.fallback_used() and record.final()["label"]


def test_a_bad_model_asked_for_leaves_the_previous_model_serving(served: ServedAgent, tmp_path: Path) -> None:
    import models

    client = served.client()
    try:
        before = client.health(timeout=5.0)["model_version"]
        broken = tmp_path / "truncated"
        shutil.copytree(models.default_model_dir("space_group"), broken)
        weights = broken / "weights.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
        for bad in (broken, tmp_path / "no-such-model", models.default_model_dir("dimensionality")):
            with pytest.raises(AgentError, match=f"still serving {before}"):
                client.load_model(str(bad), timeout=60.0)
            assert client.health(timeout=5.0)["model_version"] == before
        record = run_scan(client, stop=10.0)
    finally:
        client.close()
    assert not record.fallback_used() and set(record.decisions["model_version"]) == {before}


def test_the_agent_killed_mid_scan_is_warned_at_once_and_leaves_no_stale_class(
    served: ServedAgent, caplog: pytest.LogCaptureFixture
) -> None:
    killed: list[float] = []

    def kill_at_point_20(name: str, doc: dict) -> None:
        if name == "event" and primary_point(doc, 20) and not killed:
            served.kill()
            killed.append(time.time())

    client = served.client()
    try:
        with caplog.at_level(logging.WARNING, logger="plans.adaptive"):
            started = time.monotonic()
            record = run_scan(client, stop=10.0, timeout=1.0, hook=kill_at_point_20)
            elapsed = time.monotonic() - started
    finally:
        client.close()
    assert killed, "the agent was never killed"
    warnings = [r for r in caplog.records if r.name == "plans.adaptive" and "decides alone" in r.getMessage()]
    assert warnings and warnings[-1].created - killed[0] < 1.0 + 2.0  # at the first ask after the kill
    assert "point 20" in warnings[-1].getMessage()
    reason = record.stop["reason"]
    assert record.stop["exit_status"] == "success"
    assert reason.startswith("class none") and "(from point 20 to the end: agent failed at point 20" in reason
    assert record.final() == {"label": "", "confidence": pytest.approx(float("nan"), nan_ok=True)}
    fallback = record.decisions["fallback"].astype(bool)
    assert fallback[int(np.argmax(fallback)):].all()  # every decision after the kill is the plan's own
    assert np.allclose(np.diff(np.sort(record.two_theta))[-20:], 0.04, atol=1e-6)
    assert record.two_theta.max() == pytest.approx(10.0)
    assert elapsed < 60  # some timeouts of 1 s (it asks again less and less often), not one per point
