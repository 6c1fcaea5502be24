"""Pause and resume (deferred and immediate) and abort mid adaptive scan: each point stored once.

An immediate pause rewinds the plan to its last checkpoint, so the point in progress is measured
again under the same ``seq_num``; the spooled writer keeps the first and drops the repeat.
The pause is requested from another thread, as a Ctrl-C handler or a second session would.
"""

from __future__ import annotations

import logging
import threading

import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from agent.callback import LocalAgent
from plans.adaptive import adaptive_scan
from plans.interrupts import quiet_requested_interrupts
from sim_devices import make_beamline
from storage.catalog import get_run, open_catalog, subscribe_writer

PAUSE_AT = 30


@pytest.fixture(scope="module")
def classifier():
    import torch

    import models

    torch.set_num_threads(1)
    return models.load_default("space_group")


def _paused_scan(classifier, defer: bool):
    """An adaptive scan paused from another thread at primary point PAUSE_AT; (RE, catalog, emitted seq_nums)."""
    catalog = open_catalog()
    RE = RunEngine({})
    subscribe_writer(RE, catalog)
    primary: set[str] = set()
    emitted: list[int] = []

    def pause_once(name: str, doc: dict) -> None:
        if name == "descriptor" and doc["name"] == "primary":
            primary.add(doc["uid"])
        if name == "event" and doc["descriptor"] in primary:
            emitted.append(doc["seq_num"])
            if len(emitted) == PAUSE_AT:  # request_pause waits on the RunEngine's loop: not from its thread
                threading.Thread(target=RE.request_pause, kwargs={"defer": defer}).start()

    RE.subscribe(pause_once)
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    with pytest.raises(RunEngineInterrupted):
        RE(adaptive_scan([beamline.detector], beamline.motor, start=10.0, stop=25.0, agent=LocalAgent(classifier)))
    assert RE.state == "paused"
    return RE, catalog, emitted


def _stored(catalog, uid: str) -> tuple[list[int], dict]:
    run = get_run(catalog, uid)
    return [int(s) for s in run["primary"].base["internal"].read()["seq_num"]], run.metadata["stop"]


@pytest.mark.parametrize("defer", [True, False], ids=["deferred", "immediate"])
def test_pause_then_resume_stores_every_point_once(classifier, defer: bool) -> None:
    RE, catalog, emitted = _paused_scan(classifier, defer)
    (uid,) = RE.resume()
    stored, stop = _stored(catalog, uid)
    assert stop["exit_status"] == "success"
    assert len(stored) == len(set(stored)) == stop["num_events"]["primary"]
    assert set(stored) == set(emitted) == set(range(1, max(emitted) + 1))
    if not defer:
        assert len(emitted) == len(stored) + 1, "the immediate pause re-measures one point (rewind)"


def test_abort_while_paused_closes_the_run_with_its_points_in_one_line(classifier, caplog, capsys) -> None:
    RE, catalog, emitted = _paused_scan(classifier, defer=False)
    quiet_requested_interrupts()  # what a session and `xrd-agent scan` do at start
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="bluesky"):
        (uid,) = RE.abort(reason="aborted by the user")
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [line for line in printed if not line.startswith(("|", "+", "generator"))] == [
        "Aborting: running cleanup and marking exit_status as 'abort'..."]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING], caplog.text
    stored, stop = _stored(catalog, uid)
    assert stop["exit_status"] == "abort"
    assert len(stored) == len(set(stored)) == stop["num_events"]["primary"]
    assert set(stored) == set(emitted)
