"""The simulated diffractometer IOC and the EPICS device classes, over real Channel Access.

One IOC process (``xrd-agent ioc``, caproto) per module on 127.0.0.1 and a random free port;
the ophyd devices here connect to it through the caproto client exactly as they would to a
beamline's IOC. The Channel Access environment is set before the first client context exists.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agent.policy import DEFAULT_BACKGROUND_DWELL, DEFAULT_COARSE_STEP

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "beamline.example.toml"
PREFIX = "XRDTEST:"
SPEEDUP = 50.0
SAMPLE = "CsPbBr3"
SEED = 7


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (Channel Access uses the same number for both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port on 127.0.0.1")


@pytest.fixture(scope="module")
def ioc() -> dict[str, str]:
    """An ``xrd-agent ioc`` process on a random port; the test process' CA environment points at it."""
    port = free_port()
    ca_env = {"EPICS_CA_SERVER_PORT": str(port), "EPICS_CA_ADDR_LIST": "127.0.0.1",
              "EPICS_CA_AUTO_ADDR_LIST": "NO", "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1"}
    os.environ.update(ca_env)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "ioc", "--prefix", PREFIX, "--sample", SAMPLE, "--seed", str(SEED),
         "--speedup", str(SPEEDUP), "--port", str(port)],
        cwd=ROOT, env={**os.environ, **ca_env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = process.stdout.readline()  # the IOC's one 'serving' line, or its error
        assert line.startswith("xrd-agent ioc: serving"), line + process.stdout.read() if process.poll() else line
        assert "127.0.0.1" in line and str(port) in line
        yield {"port": str(port), "prefix": PREFIX}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        process.stdout.close()


@pytest.fixture(scope="module")
def config(ioc):
    from epics_devices import load_beamline_file

    example = load_beamline_file(EXAMPLE)
    return replace(
        example,
        motor=replace(example.motor, pv=f"{PREFIX}tth"),
        detector=replace(example.detector, prefix=f"{PREFIX}det:"),
        timeout_s=10.0,  # the loaded 2-core machine: connecting ~25 PVs can take seconds
    )


@pytest.fixture(scope="module")
def beamline(config):
    from epics_devices import connect_beamline

    return connect_beamline(config)


def run_plan(plan):
    from bluesky import RunEngine

    RE = RunEngine({})
    documents: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    RE(plan)
    return documents


def events(documents, stream: str = "primary") -> list[dict]:
    descriptors = {d["uid"] for n, d in documents if n == "descriptor" and d["name"] == stream}
    return [d for n, d in documents if n == "event" and d["descriptor"] in descriptors]


# ---------------------------------------------------------------- the configuration file


def test_example_file_reads_and_names_its_devices():
    from epics_devices import load_beamline_file

    config = load_beamline_file(EXAMPLE)
    assert config.motor.pv == "XRD:tth" and config.motor.limits_deg == (2.0, 80.0)
    assert (config.detector.prefix, config.detector.acquire, config.detector.counts) == ("XRD:det:", "Acquire", "Counts")
    assert config.detector.dwell_s == 1.0 and config.timeout_s == 2.0
    assert config.beam.wavelength_A == 1.540598 and config.beam.anode is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[motor]\npv='A:m'\n", "needs a [detector] table"),
        ("[motor]\npv='A:m'\nspeed=3\n[detector]\nprefix='A:'\n", "[motor]: unknown keys ['speed']"),
        ("[motor]\nname='tth'\n[detector]\nprefix='A:'\n", "[motor]: missing ['pv']"),
        ("[motor]\npv='A:m'\nlimits_deg=[80, 2]\n[detector]\nprefix='A:'\n", "limits_deg must be [low, high]"),
        ("[motor]\npv='A:m'\n[detector]\nprefix='A:'\ndwell_s=0\n", "[detector] dwell_s must be a positive"),
        ("[motor]\npv=''\n[detector]\nprefix='A:'\n", "pv must be a non-empty string"),
        ("[motor\npv='A:m'\n", "not valid TOML"),
        ("[motor]\npv='A:m'\n[detector]\nprefix='A:'\n[beam]\nwavelength_A=0.71\nanode='Mo'\n",
         "[beam]: give wavelength_A or anode, not both"),
        ("[motor]\npv='A:m'\n[detector]\nprefix='A:'\n[beam]\nwavelength_A=154\n", "[beam] wavelength_A must be"),
        ("[motor]\npv='A:m'\n[detector]\nprefix='A:'\n[beam]\nenergy_keV=17\n", "[beam]: unknown keys ['energy_keV']"),
    ],
)
def test_bad_files_are_refused_naming_file_table_and_key(tmp_path, text, message):
    from epics_devices import load_beamline_file

    path = tmp_path / "beamline.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_beamline_file(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_file_is_named(tmp_path):
    from epics_devices import load_beamline_file

    with pytest.raises(FileNotFoundError, match="nowhere.toml"):
        load_beamline_file(tmp_path / "nowhere.toml")


FIELD_CASES = Path(__file__).resolve().parent / "data" / "field-cases"


def classify_json(*args: str, capsys) -> list[dict]:
    import json

    from cli.main import main

    status = main(["classify", "--json", *args])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()] + [{"status": status}]


def test_files_measured_at_the_beamline_are_read_with_its_wavelength(tmp_path, monkeypatch, capsys):
    from patterns import read_pattern

    beamline_file = tmp_path / "beamline.toml"
    beamline_file.write_text(EXAMPLE.read_text().replace("wavelength_A = 1.540598", 'anode = "Co"'))
    monkeypatch.setenv("XRD_AGENT_BEAMLINE_FILE", str(beamline_file))
    co, mo, status = classify_json(str(FIELD_CASES / "13-co-radiation.xy"), str(FIELD_CASES / "07-mo-radiation.xrdml"),
                                   capsys=capsys)
    # a file that states nothing was measured here: Co K-alpha1, converted like `--anode Co`
    declared = read_pattern(FIELD_CASES / "13-co-radiation.xy", anode="Co")
    assert (co["wavelength_A"], co["wavelength_source"]) == (pytest.approx(1.788965), "beamline")
    assert co["converted_from"] == declared.metadata["converted_from"] and "Co K-alpha1" in co["converted_from"]
    assert co["label"] == "I4/mcm"  # the reference measurement's class
    # a file that states its wavelength keeps it, without an error about the beamline's
    assert (mo["wavelength_A"], mo["wavelength_source"], mo["error"]) == (pytest.approx(0.709317), "file", None)
    # the command line wins over the beamline file
    (co_cu, _) = classify_json("--anode", "Cu", str(FIELD_CASES / "13-co-radiation.xy"), capsys=capsys)
    assert (co_cu["wavelength_source"], co_cu["converted_from"]) == ("user", None)


def test_an_unknown_anode_in_the_beamline_file_is_one_error_naming_it(tmp_path, monkeypatch, capsys):
    from cli.main import main

    beamline_file = tmp_path / "beamline.toml"
    beamline_file.write_text(EXAMPLE.read_text().replace("wavelength_A = 1.540598", 'anode = "Xx"'))
    monkeypatch.setenv("XRD_AGENT_BEAMLINE_FILE", str(beamline_file))
    assert main(["classify", str(FIELD_CASES / "00-reference.xy")]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and str(beamline_file) in error[0] and "unknown anode 'Xx'" in error[0]


# ---------------------------------------------------------------- the IOC's motor record


def test_motor_record_fields_match_the_simulated_axis(beamline):
    motor = beamline.motor
    assert motor.high_limit_travel.get() == 90.0 and motor.low_limit_travel.get() == 0.0  # .HLM .LLM
    assert motor.limits == (2.0, 80.0)  # narrowed by the file's limits_deg
    assert motor.velocity.get() == 2.0 and motor.motor_egu.get() == "deg"  # .VELO .EGU
    assert motor.motor_done_move.get() == 1  # .DMOV at rest


def test_move_takes_instrument_time_and_reports_done(beamline):
    from ophyd import EpicsSignalRO

    motor = beamline.motor
    sim_time = EpicsSignalRO(f"{PREFIX}SimTime", name="sim_time")
    sim_time.wait_for_connection(timeout=10)
    motor.move(10.0, wait=True, timeout=30)
    before = sim_time.get()
    moving_seen = []
    motor.motor_done_move.subscribe(lambda value, **kw: moving_seen.append(value), run=False)
    status = motor.move(14.0, wait=False)
    status.wait(30)
    assert motor.position == pytest.approx(14.0) and motor.user_readback.get() == pytest.approx(14.0)
    assert 0 in moving_seen and moving_seen[-1] == 1  # .DMOV went 0 then back to 1
    # 4 deg at .VELO 2 deg/s plus the 0.05 s settle time of the simulated axis
    assert sim_time.get() - before == pytest.approx(4.0 / 2.0 + 0.05, abs=1e-6)
    motor.velocity.set(8.0).wait(10)  # a client's .VELO is the axis' speed from the next move
    try:
        before = sim_time.get()
        motor.move(10.0, wait=True, timeout=30)
        assert sim_time.get() - before == pytest.approx(4.0 / 8.0 + 0.05, abs=1e-6)
    finally:
        motor.velocity.set(2.0).wait(10)


def test_stop_ends_a_move_short_of_its_target(beamline):
    motor = beamline.motor
    motor.move(5.0, wait=True, timeout=30)
    motor.velocity.set(0.5).wait(10)  # 140 s of instrument time: 2.8 s here, ample on a loaded machine
    try:
        status = motor.move(75.0, wait=False)
        time.sleep(0.25)
        motor.stop()
        status.wait(30) if not status.done else None
        time.sleep(0.1)
        assert 5.0 < motor.position < 75.0
        assert motor.motor_done_move.get() == 1
    finally:
        motor.velocity.set(2.0).wait(10)


def test_a_target_beyond_the_record_limits_is_refused_by_the_ioc(beamline):
    from ophyd import EpicsSignal

    val = EpicsSignal(f"{PREFIX}tth", name="raw_val")  # the bare .VAL: no client-side check
    hlm = EpicsSignal(f"{PREFIX}tth.HLM", name="hlm")
    lvio = EpicsSignal(f"{PREFIX}tth.LVIO", name="lvio")
    for signal in (val, hlm, lvio):
        signal.wait_for_connection(timeout=10)
    beamline.motor.move(12.0, wait=True, timeout=30)
    with pytest.raises(Exception):
        val.put(95.0, wait=True, timeout=10)  # beyond the control limits the IOC publishes
    hlm.put(40.0, wait=True)
    try:
        with pytest.raises(Exception):
            val.put(45.0, wait=True, timeout=10)  # beyond an .HLM a client just lowered
        assert lvio.get() == 1
    finally:
        hlm.put(90.0, wait=True)
    assert beamline.motor.position == pytest.approx(12.0)


# ---------------------------------------------------------------- the IOC's detector


def test_counts_follow_the_same_physics_as_the_ophyd_simulation(beamline):
    from sim_devices import get_sample
    from sim_devices.physics import expected_counts

    sample = get_sample(SAMPLE)
    peak = float(sample.grid_deg[np.argmax(np.where(sample.grid_deg > 12, sample.rate_density, 0))])
    detector, motor = beamline.detector, beamline.motor
    detector.dwell.set(2.0).wait(10)
    for position in (round(peak, 2), 18.0):
        motor.move(position, wait=True, timeout=30)
        counts = []
        for _ in range(5):
            detector.trigger().wait(30)
            counts.append(detector.counts.get())
        expected = float(expected_counts(position, 0.04, 2.0, sample))
        # the mean of 5 Poisson draws within 5 standard errors of the physics' expectation
        assert abs(np.mean(counts) - expected) < 5 * np.sqrt(expected / 5) + 1, (position, counts, expected)
    detector.dwell.set(1.0).wait(10)


def test_acquire_completes_only_after_the_exposure(beamline):
    detector = beamline.detector
    detector.dwell.set(10.0).wait(10)  # 10 s of instrument time: 0.2 s of wall time here
    started = time.monotonic()
    detector.trigger().wait(30)
    assert time.monotonic() - started >= 10.0 / SPEEDUP * 0.9
    detector.dwell.set(1.0).wait(10)


# ---------------------------------------------------------------- connection errors


def test_an_unreachable_pv_is_named_within_the_timeout_before_any_motion(config, beamline):
    from epics_devices import UnreachablePVError, connect_beamline

    beamline.motor.move(20.0, wait=True, timeout=30)
    broken = replace(config, detector=replace(config.detector, counts="NoSuchCounts"), timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(UnreachablePVError) as error:
        connect_beamline(broken)
    elapsed = time.monotonic() - started
    assert f"{PREFIX}det:NoSuchCounts" in str(error.value)
    assert f"{PREFIX}det:Acquire," not in str(error.value)  # only the PV that did not answer
    assert elapsed < 1.5 + 2.0, elapsed
    assert beamline.motor.position == pytest.approx(20.0)


# ---------------------------------------------------------------- whole bluesky scans


def test_bluesky_scan_over_channel_access_sees_the_peak(beamline):
    import bluesky.plans as bp

    from sim_devices import get_sample

    sample = get_sample(SAMPLE)
    window = (sample.grid_deg > 20) & (sample.grid_deg < 23)
    peak = float(sample.grid_deg[window][np.argmax(sample.rate_density[window])])
    documents = run_plan(bp.scan([beamline.detector], beamline.motor, 20.0, 23.0, 31))
    rows = events(documents)
    assert len(rows) == 31
    positions = np.array([row["data"]["tth"] for row in rows])
    counts = np.array([row["data"]["det_counts"] for row in rows])
    assert np.allclose(positions, np.linspace(20.0, 23.0, 31), atol=1e-6)
    assert abs(positions[np.argmax(counts)] - peak) <= 0.1  # the 0.1 deg grid's nearest point
    descriptor = next(d for n, d in documents if n == "descriptor")
    assert descriptor["data_keys"]["det_counts"]["source"] == f"PV:{PREFIX}det:Counts"
    assert {row["data"]["det_dwell"] for row in rows} == {1.0}  # the exposure-time PV, read with each point
    assert next(d for n, d in documents if n == "stop")["exit_status"] == "success"


def test_list_scan_outside_the_configured_limits_fails_before_moving(beamline):
    import bluesky.plans as bp
    from ophyd.utils import LimitError

    beamline.motor.move(30.0, wait=True, timeout=30)
    with pytest.raises(LimitError, match="outside the limits"):
        run_plan(bp.list_scan([beamline.detector], beamline.motor, [31.0, 85.0]))
    # the first point was measured; the 85 deg one never reached .VAL
    assert beamline.motor.user_setpoint.get() == pytest.approx(31.0)


# ---------------------------------------------------------------- the closed loop over Channel Access


def test_adaptive_scan_runs_unchanged_over_channel_access(beamline):
    """The project's plan, the shipped model and the EPICS devices: the whole loop over CA."""
    import torch

    import models
    from agent.callback import LocalAgent
    from plans.adaptive import adaptive_scan
    from plans.decision_stream import DECISIONS_STREAM

    torch.set_num_threads(1)
    classifier = models.load_default("space_group")
    started = time.monotonic()
    documents = run_plan(adaptive_scan(
        [beamline.detector], beamline.motor, start=10.0, stop=40.0, dwell=0.5, timeout=10.0,
        agent=LocalAgent(classifier),
    ))
    wall = time.monotonic() - started
    stop = next(d for n, d in documents if n == "stop")
    assert stop["exit_status"] == "success" and "fallback points: 0" in (stop.get("reason") or "")  # agent answered every point
    positions = np.array([row["data"]["tth"] for row in events(documents)])
    counts = np.array([row["data"]["det_counts"] for row in events(documents)])
    assert positions.min() == pytest.approx(10.0) and positions.max() <= 40.0 + 1e-6
    steps = np.round(np.diff(np.sort(positions)), 3)
    assert {DEFAULT_COARSE_STEP, 0.04} <= set(steps)  # coarse on background, fine where the agent asked
    assert counts.max() > 10 * np.median(counts)  # the peaks came through Channel Access
    decisions = events(documents, DECISIONS_STREAM)
    assert decisions and not any(row["data"]["decision_fallback"] for row in decisions)
    assert decisions[-1]["data"]["decision_label"] in classifier.classes
    # set over CA by the plan, point by point: the run's 0.5 s, background steps a fraction of it
    dwells = {row["data"]["det_dwell"] for row in events(documents)}
    assert dwells == {0.5, 0.5 * DEFAULT_BACKGROUND_DWELL}
    assert beamline.detector.dwell.get() == 0.5  # restored at the end of the run
    print(f"adaptive_scan over CA: {positions.size} points, {len(decisions)} decisions in {wall:.1f} s wall")


def test_the_configured_file_is_the_environments_then_the_data_directorys(tmp_path, monkeypatch):
    from epics_devices import configured_beamline_file

    monkeypatch.delenv("XRD_AGENT_BEAMLINE_FILE", raising=False)
    assert configured_beamline_file(tmp_path) is None  # no file: the simulated beamline
    (tmp_path / "beamline.toml").write_text(EXAMPLE.read_text())
    assert configured_beamline_file(tmp_path) == tmp_path / "beamline.toml"
    monkeypatch.setenv("XRD_AGENT_BEAMLINE_FILE", str(EXAMPLE))
    assert configured_beamline_file(tmp_path) == EXAMPLE
    monkeypatch.setenv("XRD_AGENT_BEAMLINE_FILE", str(tmp_path / "gone.toml"))
    with pytest.raises(FileNotFoundError, match="gone.toml"):
        configured_beamline_file(tmp_path)


def write_beamline_file(directory: Path, prefix: str, timeout_s: float) -> Path:
    """The example file with its PV prefix replaced (the IOC's, or one nobody serves)."""
    text = EXAMPLE.read_text().replace('"XRD:', f'"{prefix}').replace("timeout_s = 2.0", f"timeout_s = {timeout_s}")
    path = directory / "beamline.toml"
    path.write_text(text)
    return path


def test_the_session_uses_the_beamline_files_epics_devices(ioc, xrd_agent_home):
    """``$XRD_AGENT_HOME/beamline.toml`` present: the session's tth/det are EPICS devices, and
    the configured ``adaptive_scan()`` runs on them."""
    import torch

    import models
    from agent.callback import LocalAgent
    from epics_devices import CountingDetector, TwoThetaAxis
    from plans import beamline as configured
    from plans.startup import build_session

    torch.set_num_threads(1)
    write_beamline_file(xrd_agent_home, PREFIX, 10.0)
    configured.reset()
    try:
        session = build_session(store=False)
        assert isinstance(session["tth"], TwoThetaAxis) and session["tth"].prefix == f"{PREFIX}tth"
        assert isinstance(session["det"], CountingDetector)
        assert session["det"].dwell.get() == 1.0  # the file's dwell_s, written on connection
        plan = session["adaptive_scan"](agent=LocalAgent(models.load_default("space_group")),
                                        start=12.0, stop=16.0, early_stop=False, timeout=10.0)
        documents = run_plan(plan)
        assert next(d for n, d in documents if n == "stop")["exit_status"] == "success"
        positions = [row["data"]["tth"] for row in events(documents)]
        assert min(positions) == pytest.approx(12.0) and max(positions) == pytest.approx(16.0, abs=0.05)
    finally:
        configured.reset()


def test_a_beamline_file_with_an_unreachable_pv_stops_the_session_naming_it(ioc, xrd_agent_home):
    from epics_devices import UnreachablePVError
    from plans import beamline as configured

    path = write_beamline_file(xrd_agent_home, "NOBODY:", 1.0)
    configured.reset()
    started = time.monotonic()
    try:
        with pytest.raises(UnreachablePVError) as error:
            configured.get_beamline()
    finally:
        configured.reset()
    assert "NOBODY:tth" in str(error.value) and str(path) in str(error.value)
    assert time.monotonic() - started < 1.0 + 2.0


def test_a_missing_record_is_named_once_with_its_fields_folded():
    from epics_devices.connection import summarise_pvs

    fields = [f"B:tth.{name}" for name in ("RBV", "VAL", "DMOV", "HLM", "LLM")]
    assert summarise_pvs([*fields, "B:det:Counts", "B:m2.VAL"]) == [
        "B:tth (.RBV .VAL .DMOV and 2 more fields)", "B:det:Counts", "B:m2.VAL"]


def test_the_shell_refuses_an_unreachable_beamline_in_one_line(ioc, xrd_agent_home, capsys):
    from cli.main import main
    from plans import beamline as configured

    write_beamline_file(xrd_agent_home, "NOBODY:", 1.0)
    configured.reset()
    try:
        assert main(["shell", "--no-store"]) == 2
    finally:
        configured.reset()
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("xrd-agent shell: error: could not connect within 1 s")
    assert "NOBODY:tth (.RBV" in error
