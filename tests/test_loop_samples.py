"""Samples the user brings: a measured file or a CIF as the simulated beamline's sample (issue 10 item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bluesky import RunEngine

from plans import beamline as configured
from plans.run_record import RunCollector
from sim_devices import get_sample, make_beamline
from sim_devices.samples import sample_from_file

REPO = Path(__file__).resolve().parent.parent
FIELD_CASES = REPO / "tests" / "data" / "field-cases"
CIF = REPO / "data" / "cifs" / "PyXtal" / "pyxtal" / "database" / "cifs" / "3-G139.cif"


@pytest.fixture(autouse=True)
def forget_configured_beamline():
    configured.reset()
    yield
    configured.reset()


@pytest.mark.parametrize("name", ["00-reference.xy", "09-attenuator.xrdml"])
def test_a_measured_file_is_replayed_with_its_counts(name: str) -> None:
    from patterns import read_pattern

    path = FIELD_CASES / name
    sample = get_sample(str(path))
    assert sample.kind == "measured" and sample.name == str(path) and sample.label is None
    assert sample.params["source"] == str(path)
    # a uniform scan at the file's own step and 1 s dwell gives the file's counts on average
    pattern = read_pattern(path)
    beamline = make_beamline(sample=sample, noise="none")
    inside = (pattern.two_theta > 10) & (pattern.two_theta < 50)
    x, expected = pattern.two_theta[inside][::50], pattern.intensity[inside][::50]
    beamline.detector.acceptance.put(float(np.median(np.diff(pattern.two_theta))))
    measured = []
    for position in x:
        beamline.motor.set(float(position)).wait()
        beamline.detector.trigger().wait()
        measured.append(beamline.detector.read()["det_counts"]["value"])
    assert np.allclose(measured, expected, rtol=0.05, atol=5.0)


def test_a_cif_is_simulated_as_a_film_with_spglibs_label() -> None:
    sample = sample_from_file(CIF)
    assert sample.kind == "simulated" and sample.label == "Fm-3m" and sample.name == str(CIF)
    assert sample.rate_density.max() > 10 * np.median(sample.rate_density)  # peaks above background


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_sample(str(tmp_path / "scan.xy"))
    bad = tmp_path / "broken.cif"
    bad.write_text("not a cif\n")
    with pytest.raises(ValueError, match="broken.cif"):
        get_sample(str(bad))
    with pytest.raises(ValueError, match="unknown sample"):
        get_sample("no-such-structure")
    (tmp_path / "scans.xy").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory; give one pattern or CIF file in it"):
        get_sample(str(tmp_path / "scans.xy"))


def test_a_file_measured_with_another_radiation_is_refused_until_converted(tmp_path: Path) -> None:
    # the header names Co but the reader trusts no wavelength: replayed as Cu, every peak would sit at
    # the wrong angle and the scan would give a confident wrong class without a word
    from patterns import read_pattern, write_xy

    co = FIELD_CASES / "13-co-radiation.xy"
    with pytest.raises(ValueError, match=r"header names Co K-alpha.*write_xy\(read_pattern\(.*anode='Co'\)"):
        get_sample(str(co))
    converted = write_xy(read_pattern(co, anode="Co"), tmp_path / "13-co-radiation-cu.xy")  # what the message says
    assert read_pattern(converted).metadata["wavelength_source"] == "file"  # the copy states Cu: no flag, no refusal
    sample = get_sample(str(converted))
    reference = get_sample(str(FIELD_CASES / "00-reference.xy"))  # the same measurement, measured with Cu
    strongest = reference.grid_deg[np.argmax(reference.rate_density)]
    assert abs(sample.grid_deg[np.argmax(sample.rate_density)] - strongest) < 0.05


def test_the_configured_scan_takes_the_sample_from_the_environment_and_the_risk(monkeypatch) -> None:
    path = FIELD_CASES / "00-reference.xy"
    monkeypatch.setenv("XRD_AGENT_SAMPLE", str(path))
    RE = RunEngine({})
    collector = RunCollector()
    RE.subscribe(collector)
    (uid,) = RE(configured.configured_adaptive_scan(start=20.0, stop=24.0, risk=0.3))
    start = collector.records[uid].start
    assert start["sample"] == str(path)
    assert start["adaptive"]["policy"]["risk"] == 0.3
    assert start["adaptive"]["policy"]["confidence"] == pytest.approx(0.7)
    # sample= puts another file in the beam for the next scan
    (uid,) = RE(configured.configured_adaptive_scan(start=20.0, stop=22.0, sample=str(CIF)))
    assert collector.records[uid].start["sample"] == str(CIF)
