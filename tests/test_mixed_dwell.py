"""Background steps counted shorter: every reader of the run puts the counts back on the run's dwell.

An adaptive scan counts its coarse steps over background for a fraction of the dwell
(`agent.policy.PolicyConfig.background_dwell`) and reads each point's dwell with it. A reader that
forgot to rescale would see the background four times lower than the peaks' surroundings: a silent
misread. With the detector's noise off, the counts on the run's dwell are known exactly (the
detector's expectation at that dwell), so each reader is checked against them point by point.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent.partial_scan import PartialScanBuilder
from agent.policy import DEFAULT_BACKGROUND_DWELL
from patterns.exposure import at_run_dwell, dwell_of_points, exposure

RUN_DWELL_S = 2.0


def test_counts_are_rescaled_to_the_run_dwell_and_a_dwell_of_zero_is_refused() -> None:
    np.testing.assert_allclose(at_run_dwell([10.0, 40.0], [0.5, 2.0], 2.0), [40.0, 40.0])
    np.testing.assert_allclose(exposure([0.5, 2.0], 2.0), [0.25, 1.0])
    for bad in (0.0, np.nan, -1.0):
        with pytest.raises(ValueError, match="positive number of seconds"):
            at_run_dwell([10.0], [bad], 2.0)
    with pytest.raises(ValueError, match="run's dwell"):
        at_run_dwell([10.0], [1.0], 0.0)


def test_a_run_that_names_a_dwell_field_it_does_not_hold_is_refused() -> None:
    start = {"uid": "u1", "adaptive": {"dwell_field": "det_dwell", "dwell_s": 1.0, "motor_field": "tth",
                                       "counts_field": "det_counts", "policy": {"start": 5.0, "stop": 60.0}}}
    assert dwell_of_points(start, ["tth", "det_counts", "det_dwell"]) == ("det_dwell", 1.0)
    assert dwell_of_points({"uid": "u2"}, ["tth", "det_counts"]) is None  # a plain scan: nothing to rescale
    with pytest.raises(ValueError, match="det_dwell"):
        dwell_of_points(start, ["tth", "det_counts"])
    builder = PartialScanBuilder(start)
    with pytest.raises(ValueError, match="det_dwell"):
        builder.descriptor({"uid": "d1", "name": "primary", "data_keys": {"tth": {}, "det_counts": {}}})
    from plans.run_record import RunCollector

    collector = RunCollector()  # the session's reader refuses it at the same document
    collector("start", start)
    with pytest.raises(ValueError, match="det_dwell"):
        collector("descriptor", {"uid": "d1", "run_start": "u1", "name": "primary",
                                 "data_keys": {"tth": {}, "det_counts": {}}})


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory):
    """One noiseless adaptive run over 20-26 deg into a real embedded catalog, with every
    in-process reader subscribed; returns (uid, catalog, readers, expected counts function)."""
    import torch
    from bluesky import RunEngine

    import models
    from agent.callback import LocalAgent
    from bench.loop_collector import PrimaryCollector
    from plans.adaptive import adaptive_scan
    from plans.run_record import RunCollector
    from sim_devices import make_beamline
    from sim_devices.physics import expected_counts
    from storage.catalog import open_catalog, subscribe_writer

    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XRD_AGENT_HOME", str(tmp_path_factory.mktemp("mixed-dwell-home")))
        catalog = open_catalog()
        beamline = make_beamline(sample="CsPbBr3", seed=0, noise="none")
        agent = LocalAgent(models.load_default("space_group", device="cpu"))
        RE = RunEngine({})
        subscribe_writer(RE, catalog)
        collector, primary = RunCollector(), PrimaryCollector()
        RE.subscribe(collector)
        RE.subscribe(primary)
        (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, agent=agent, start=20.0, stop=26.0,
                                  dwell=RUN_DWELL_S))
        detector = beamline.detector

        def expected(two_theta: np.ndarray) -> np.ndarray:
            return np.array([expected_counts(x, detector.acceptance.get(), RUN_DWELL_S, detector.current_sample)
                             for x in two_theta], dtype=float)

        yield uid, catalog, {"collector": collector, "primary": primary, "agent": agent}, expected, detector


def test_the_plan_counts_background_steps_shorter_and_says_so(mixed_run) -> None:
    uid, catalog, readers, _, detector = mixed_run
    record = readers["collector"].records[uid]
    adaptive = record.start["adaptive"]
    assert adaptive["dwell_field"] == "det_dwell" and adaptive["dwell_s"] == RUN_DWELL_S
    assert record.start["adaptive"]["policy"]["background_dwell"] == DEFAULT_BACKGROUND_DWELL
    decisions = record.decisions
    coarse = decisions["action"] == "coarse"
    assert set(decisions["dwell_fraction"][coarse]) <= {DEFAULT_BACKGROUND_DWELL, 1.0}  # the first point: full
    assert set(decisions["dwell_fraction"][~coarse]) == {1.0}  # peaks, fills and fine steps: the full dwell
    assert detector.dwell.get() == RUN_DWELL_S  # restored for the next scan


def test_every_reader_sees_the_counts_on_the_run_dwell(mixed_run) -> None:
    from plans.run_record import record_from_tiled
    from storage.scan_export import read_exported
    from storage.scans import scan_arrays

    uid, catalog, readers, expected, _ = mixed_run
    raw = catalog[uid]["primary"].read()
    dwells = np.asarray(raw["det_dwell"], dtype=float)
    assert set(np.round(dwells, 9)) == {RUN_DWELL_S, RUN_DWELL_S * DEFAULT_BACKGROUND_DWELL}  # both dwells were used
    x_raw, y_raw = np.asarray(raw["tth"], dtype=float), np.asarray(raw["det_counts"], dtype=float)
    truth = expected(x_raw)
    assert not np.allclose(y_raw, truth)  # the raw counts are not on one scale: rescaling is needed

    read: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "RunCollector": (readers["collector"].records[uid].two_theta, readers["collector"].records[uid].counts),
        "bench PrimaryCollector": (np.array(readers["primary"].two_theta), np.array(readers["primary"].counts)),
        "storage.scans.scan_arrays": scan_arrays(catalog[uid]),
        "record_from_tiled": (record_from_tiled(catalog[uid]).two_theta, record_from_tiled(catalog[uid]).counts),
    }
    for _ in range(60):  # the export is appended from the writer's thread after tiled took the run
        exported = read_exported(catalog.parent, [uid])
        if uid in exported:
            break
        time.sleep(0.5)
    read["scan export"] = exported[uid][:2]
    scan = readers["agent"].agent.run(uid).builder.scan  # what the model and the policy saw
    read["agent's partial scan"] = (scan.two_theta, scan.counts)
    for reader, (x, y) in read.items():
        np.testing.assert_allclose(x, x_raw, err_msg=reader)
        np.testing.assert_allclose(y, truth, rtol=1e-9, err_msg=reader)
