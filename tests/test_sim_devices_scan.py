"""Plain bluesky plans on the simulated diffractometer."""

from __future__ import annotations

import time
from typing import Any

import bluesky.plans as bp
import pytest
from bluesky import RunEngine
from ophyd.utils import LimitError

from sim_devices import make_beamline


@pytest.fixture
def run_engine() -> tuple[RunEngine, list[tuple[str, dict[str, Any]]]]:
    engine = RunEngine({}, context_managers=[])  # no SIGINT handler: tests may run off the main thread
    documents: list[tuple[str, dict[str, Any]]] = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    return engine, documents


def test_full_scan_reports_instrument_time_and_every_point(run_engine: tuple) -> None:
    engine, documents = run_engine
    bl = make_beamline(sample="CsPbBr3", seed=0, dwell=1.0)
    start = time.perf_counter()
    engine(bp.scan([bl.detector], bl.motor, 5, 60, 1376))
    wall = time.perf_counter() - start
    events = [doc for name, doc in documents if name == "event"]
    print(f"1376-point scan at 1 s dwell: simulated {bl.clock.time():.1f} s, wall {wall:.2f} s")
    assert len(events) == 1376
    assert bl.clock.time() >= 1376.0
    assert events[-1]["data"]["det_sim_time"] == pytest.approx(bl.clock.time())
    first, last = events[0]["data"], events[-1]["data"]
    assert first["tth"] == pytest.approx(5.0) and last["tth"] == pytest.approx(60.0)
    sim_times = [e["data"]["det_sim_time"] for e in events]
    assert all(b - a >= 1.0 for a, b in zip(sim_times, sim_times[1:], strict=False))
    descriptor = next(doc for name, doc in documents if name == "descriptor")
    config = descriptor["configuration"]["det"]["data"]
    assert config["det_sample"] == "CsPbBr3" and {e["data"]["det_dwell"] for e in events} == {1.0}
    assert config["det_acceptance"] == 0.04 and config["det_noise"] == "poisson"
    assert descriptor["data_keys"]["tth"]["units"] == "deg"
    assert descriptor["hints"]["det"]["fields"] == ["det_counts", "det_dwell"]  # counts first: the field readers take
    stop = next(doc for name, doc in documents if name == "stop")
    assert stop["exit_status"] == "success" and stop["num_events"]["primary"] == 1376


def test_a_move_outside_the_limits_fails_the_run_but_closes_it(run_engine: tuple) -> None:
    engine, documents = run_engine
    bl = make_beamline()
    with pytest.raises(LimitError, match="outside the soft limits"):
        engine(bp.scan([bl.detector], bl.motor, 80, 100, 11))
    names = [name for name, _ in documents]
    assert names[0] == "start" and names[-1] == "stop"
    stop = documents[-1][1]
    assert stop["exit_status"] == "fail" and "soft limits" in stop["reason"]
    assert stop["num_events"]["primary"] == 6  # 80, 82, ..., 90 measured; the move to 92 refused


def test_real_time_pacing_makes_the_scan_take_instrument_time(run_engine: tuple) -> None:
    engine, documents = run_engine
    speedup = 50.0
    bl = make_beamline(real_time=True, speedup=speedup, dwell=1.0, settle_time=0.0, position=30.0)
    start = time.perf_counter()
    engine(bp.scan([bl.detector], bl.motor, 30.0, 30.4, 6))
    wall = time.perf_counter() - start
    simulated = bl.clock.time()
    assert simulated == pytest.approx(6 * 1.0 + 0.4 / 2.0)  # exposures + moves at 2 deg/s
    assert wall >= simulated / speedup  # paced: ~0.12 s here
    assert [name for name, _ in documents].count("event") == 6
