"""The simulated devices: clock, motor limits and timing, detector statistics, isolation."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from ophyd.utils import LimitError, ReadOnlyError

from sim_devices import SimClock, make_beamline
from sim_devices.physics import expected_counts

# ------------------------------------------------------------------------------------ clock


def test_clock_advances_without_sleeping_and_refuses_bad_durations() -> None:
    clock = SimClock()
    done: list[float] = []
    start = time.perf_counter()
    clock.elapse(3600.0, lambda: done.append(clock.time()))
    assert done == [3600.0] and time.perf_counter() - start < 0.5
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="SimClock"):
            clock.advance(bad)
    with pytest.raises(ValueError, match="speedup"):
        SimClock(speedup=0)


def test_real_time_clock_paces_on_a_thread() -> None:
    clock = SimClock(real_time=True, speedup=10.0)  # 1 s of instrument time = 0.1 s wall
    finished: list[float] = []
    start = time.perf_counter()
    clock.elapse(1.0, lambda: finished.append(time.perf_counter() - start))
    assert finished == [] and clock.time() == 1.0  # returned at once, callback pending
    deadline = time.perf_counter() + 5.0
    while not finished and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert finished and finished[0] >= 0.09


# ------------------------------------------------------------------------------------ motor


def test_motor_move_time_is_distance_over_velocity_plus_settle() -> None:
    bl = make_beamline(velocity=2.0, settle_time=0.5, position=10.0)
    status = bl.motor.set(30.0)
    assert status.done and status.success
    assert bl.motor.position == 30.0 and bl.motor.read()["tth"]["value"] == 30.0
    assert bl.clock.time() == pytest.approx(20.0 / 2.0 + 0.5)
    bl.motor.set(30.0)  # no move, no time
    assert bl.clock.time() == pytest.approx(10.5)


@pytest.mark.parametrize("target", [-0.1, 90.5, 120.0, float("nan"), "far"])
def test_motor_refuses_targets_outside_limits_with_a_clear_error(target: object) -> None:
    bl = make_beamline(position=20.0)
    with pytest.raises(LimitError, match=r"tth: target .* (outside the soft limits \[0, 90\]|not a number)"):
        bl.motor.set(target)
    assert bl.motor.position == 20.0 and bl.clock.time() == 0.0  # nothing moved, no time spent
    assert isinstance(LimitError("x"), ValueError)


def test_motor_config_is_validated_and_readback_read_only() -> None:
    bl = make_beamline()
    with pytest.raises(ValueError, match="velocity"):
        bl.motor.velocity.put(0.0)
    with pytest.raises(ValueError, match="settle_time"):
        bl.motor.settle_time.put(-1.0)
    with pytest.raises(ReadOnlyError):
        bl.motor.readback.put(3.0)
    with pytest.raises(ValueError, match="limits"):
        make_beamline(limits=(50.0, 10.0))
    assert set(bl.motor.read_configuration()) == {
        "tth_velocity", "tth_settle_time", "tth_low_limit", "tth_high_limit"
    }


# --------------------------------------------------------------------------------- detector


def test_poisson_statistics_at_a_fixed_position() -> None:
    bl = make_beamline(sample="CsPbBr3", seed=1, dwell=1.0, position=30.44)
    expected = bl.detector.expected()
    assert expected > 500  # on the strongest peak
    counts = np.empty(2000)
    for i in range(counts.size):
        bl.detector.trigger()
        counts[i] = bl.detector.counts.get()
    ratio = counts.var(ddof=1) / counts.mean()
    print(f"var/mean over 2000 reads = {ratio:.4f} (mean {counts.mean():.1f}, expected {expected:.1f})")
    assert abs(ratio - 1.0) < 0.10
    assert abs(counts.mean() - expected) < 4 * np.sqrt(expected / counts.size)
    assert np.all(counts == np.round(counts))
    assert bl.clock.time() == pytest.approx(2000.0)


def test_counts_scale_linearly_with_dwell() -> None:
    bl = make_beamline(sample="CsPbBr3", seed=2, position=21.5)
    dwells = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    expected = []
    means = []
    for dwell in dwells:
        bl.detector.dwell.put(dwell)
        expected.append(bl.detector.expected())
        reads = []
        for _ in range(400):
            bl.detector.trigger()
            reads.append(bl.detector.counts.get())
        means.append(np.mean(reads))
    expected_arr, means_arr = np.array(expected), np.array(means)
    np.testing.assert_allclose(expected_arr / dwells, expected_arr[2], rtol=1e-12)  # exact model
    slope, intercept = np.polyfit(dwells, means_arr, 1)
    print(f"mean counts vs dwell: slope {slope:.2f}/s, intercept {intercept:.2f}; means {means_arr}")
    assert abs(intercept) < 0.02 * means_arr[-1]
    np.testing.assert_allclose(means_arr / dwells, slope, rtol=0.03)
    assert bl.clock.time() == pytest.approx(400 * dwells.sum())


def test_noise_none_records_the_expectation_and_seed_reproduces() -> None:
    bl = make_beamline(noise="none", position=30.0)
    bl.detector.trigger()
    assert bl.detector.counts.get() == pytest.approx(
        float(expected_counts(30.0, 0.04, 1.0, bl.sample))
    )
    runs = []
    for _ in range(2):
        seeded = make_beamline(seed=7, position=30.0)
        values = []
        for _ in range(5):
            seeded.detector.trigger()
            values.append(seeded.detector.counts.get())
        runs.append(values)
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="noise model"):
        bl.detector.noise.put("gaussian")


def test_detector_configuration_records_sample_acceptance_and_noise_and_each_reading_its_dwell() -> None:
    bl = make_beamline(sample="CsPbBr3-textured", dwell=0.5, acceptance=0.02)
    config = {k: v["value"] for k, v in bl.detector.read_configuration().items()}
    assert bl.detector.read()["det_dwell"]["value"] == 0.5 and config["det_acceptance"] == 0.02
    assert config["det_noise"] == "poisson" and config["det_sample"] == "CsPbBr3-textured"
    info = json.loads(config["det_sample_info"])
    assert info["label"] == "Pm-3m" and info["film"]["march_r"] == 0.5
    assert info["film"]["preferred_hkl"] == [1, 0, 0]
    with pytest.raises(ValueError, match="dwell"):
        bl.detector.dwell.put(-1.0)
    with pytest.raises(ValueError, match="acceptance"):
        bl.detector.acceptance.put(0.0)
    with pytest.raises(ReadOnlyError):
        bl.detector.counts.put(5)


def test_set_sample_swaps_the_sample_and_rejects_unknown_names() -> None:
    bl = make_beamline(sample="CsPbBr3")
    sample = bl.set_sample("auto-xrd/MASnI3_2-Theta_Omega")
    assert sample.label == "I4/mcm" and bl.detector.sample.get() == "auto-xrd/MASnI3_2-Theta_Omega"
    with pytest.raises(ValueError, match="unknown sample 'no-such-thing'"):
        bl.set_sample("no-such-thing")
    assert bl.detector.sample.get() == "auto-xrd/MASnI3_2-Theta_Omega"  # unchanged


def test_sim_devices_imports_neither_bluesky_nor_torch() -> None:
    code = (
        "import sys, sim_devices; sim_devices.make_beamline(sample='CsPbBr3');"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bluesky', 'torch'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
