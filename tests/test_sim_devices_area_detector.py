"""The simulated area detector: Debye-Scherrer frames, arcs, fabio files, pyFAI reduction, the model.

Acceptance (issue 12): the reduced pattern's peaks lie within 0.02 deg of the 1D simulation's.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from sim_devices import get_sample
from sim_devices.area_detector import ArcTexture, AreaDetector, expected_frame, make_geometry

SAMPLE = "CsPbBr3"
RANGE = (5.0, 60.0)


@pytest.fixture(scope="module")
def detector() -> AreaDetector:
    return AreaDetector(name="area", sample=SAMPLE, dwell=10.0, random_state=np.random.default_rng(0))


@pytest.fixture(scope="module")
def frame(detector) -> np.ndarray:
    detector.trigger()
    return detector.image.get()


def isolated_reference_peaks(name: str, low: float, high: float, *, separation: float = 0.4) -> np.ndarray:
    """Maxima of the sample's rate density (the 1D simulation) with no other maximum within `separation` deg."""
    sample = get_sample(name)
    inside = (sample.grid_deg > low) & (sample.grid_deg < high)
    x, y = sample.grid_deg[inside], sample.rate_density[inside]
    peaks, _ = find_peaks(y, prominence=0.02 * y.max())
    positions = x[peaks]
    gaps = np.diff(positions)
    alone = np.ones(positions.size, bool)
    alone[1:] &= gaps > separation
    alone[:-1] &= gaps > separation
    return positions[alone]


def peak_position(two_theta: np.ndarray, intensity: np.ndarray, near: float, half_window: float = 0.15) -> float:
    """The maximum near `near` deg, refined by a parabola through it and its two neighbours."""
    inside = np.flatnonzero(np.abs(two_theta - near) < half_window)
    top = inside[np.argmax(intensity[inside])]
    left, centre, right = intensity[top - 1 : top + 2]
    offset = 0.5 * (left - right) / (left - 2 * centre + right)
    return float(two_theta[top] + offset * (two_theta[top + 1] - two_theta[top]))


def test_arc_weight_averages_to_one_around_a_ring_and_peaks_at_its_centre():
    texture = ArcTexture(fraction=0.8, centre_deg=20.0, fwhm_deg=30.0)
    chi = np.linspace(-180, 180, 36001)[:-1]
    weight = texture.weight(chi)
    assert weight.mean() == pytest.approx(1.0, rel=1e-6)
    assert chi[np.argmax(weight)] == pytest.approx(20.0, abs=0.01)
    half = weight.min() + 0.5 * (weight.max() - weight.min())
    above = chi[weight >= half]
    assert above.max() - above.min() == pytest.approx(30.0, abs=0.1)  # the arc's FWHM
    assert np.allclose(ArcTexture(fraction=0.0).weight(chi), 1.0)


def test_frame_shows_rings_as_arcs_of_the_texture(detector):
    integrator = detector.integrator
    sample = detector.current_sample
    flat = expected_frame(integrator, sample, 1.0, ArcTexture(fraction=0.0))
    arcs = expected_frame(integrator, sample, 1.0, ArcTexture(fraction=0.9, centre_deg=0.0, fwhm_deg=30.0))
    two_theta = integrator.center_array(unit="2th_deg")
    chi = integrator.center_array(unit="chi_deg")
    peak = isolated_reference_peaks(SAMPLE, 14, 16)[0]
    ring = np.abs(two_theta - peak) < 0.02
    middle, edge = ring & (np.abs(chi) < 5), ring & (np.abs(chi) > 60)
    # along the ring: strong in the arc, weak outside; an untextured ring is even
    assert arcs[middle].mean() > 5 * arcs[edge].mean()
    assert flat[middle].mean() == pytest.approx(flat[edge].mean() * (
        integrator.solidAngleArray()[middle].mean() / integrator.solidAngleArray()[edge].mean()), rel=0.05)


def test_counts_are_poisson_around_the_expectation(detector, frame):
    expected = detector.expected()
    assert frame.dtype == np.int32 and frame.shape == expected.shape
    residual = (frame - expected) / np.sqrt(np.maximum(expected, 1.0))
    assert abs(residual.mean()) < 0.01 and residual.std() == pytest.approx(1.0, abs=0.02)


def test_reduced_peak_positions_match_the_1d_simulation_within_0_02_deg(detector, frame):
    from patterns.frames import reduce_frame

    pattern = reduce_frame(frame, detector.integrator, radial_range_deg=RANGE)
    references = isolated_reference_peaks(SAMPLE, RANGE[0] + 0.5, RANGE[1] - 0.5)
    assert references.size >= 8
    offsets = np.array([peak_position(pattern.two_theta, pattern.intensity, r) - r for r in references])
    assert np.max(np.abs(offsets)) < 0.02, dict(zip(references.round(3), offsets.round(4)))


def test_frame_file_round_trip_with_fabio_and_poni(tmp_path, detector, frame):
    import fabio

    from patterns.frames import read_frame, reduce_frame, write_frame

    path = write_frame(tmp_path / "frame.edf", frame, {"sample": SAMPLE, "dwell_s": 10.0})
    poni = tmp_path / "geometry.poni"
    detector.integrator.save(str(poni))
    image = fabio.open(str(path))
    assert np.array_equal(image.data, frame) and image.header["sample"] == SAMPLE
    from_file = read_frame(path, poni, radial_range_deg=RANGE)
    direct = reduce_frame(frame, detector.integrator, radial_range_deg=RANGE)
    assert np.allclose(from_file.two_theta, direct.two_theta) and np.allclose(from_file.intensity, direct.intensity)
    assert from_file.metadata["wavelength_source"] == "file" and from_file.metadata["converted_from"] is None


def test_reading_names_the_missing_or_unreadable_file(tmp_path, detector, frame):
    from patterns.frames import read_frame, reduce_frame

    poni = tmp_path / "geometry.poni"
    detector.integrator.save(str(poni))
    with pytest.raises(FileNotFoundError, match="absent.edf"):
        read_frame(tmp_path / "absent.edf", poni)
    junk = tmp_path / "junk.edf"
    junk.write_bytes(b"not a frame")
    with pytest.raises(ValueError, match="junk.edf"):
        read_frame(junk, poni)
    with pytest.raises(ValueError, match="frame shape"):
        reduce_frame(frame[:10], detector.integrator)
    from patterns import read_pattern

    with pytest.raises(ValueError, match="--poni"):  # the 1D readers point to the frame path
        read_pattern(junk)


@pytest.mark.parametrize("name", [SAMPLE, "auto-xrd/MASnI3_2-Theta_Omega"])
def test_a_powder_frame_gets_the_agents_answer_for_the_1d_scan(name):
    """Untextured rings: the model answers the reduced frame as it answers the point-detector scan.

    (Arcs seen over part of the azimuth change the rings' relative intensities -- the mean of
    the arc weight over the covered azimuths differs from ring to ring -- so a textured frame
    may be classified differently; its peak positions are still right, see the test above.)
    """
    import models
    from patterns.frames import reduce_frame
    from sim_devices.physics import expected_counts

    classifier = models.load_default(task="space_group")
    grid = np.round(np.arange(RANGE[0], RANGE[1] + 1e-9, 0.04), 6)
    one_d = classifier.predict(grid, expected_counts(grid, 0.04, 1.0, get_sample(name)))
    powder = AreaDetector(name="area", sample=name, dwell=10.0, texture=ArcTexture(fraction=0.0),
                          random_state=np.random.default_rng(2))
    powder.trigger()
    pattern = reduce_frame(powder.image.get(), powder.integrator, radial_range_deg=RANGE)
    two_d = classifier.predict(pattern.two_theta, pattern.intensity)
    assert two_d.label == one_d.label
    assert two_d.confidence == pytest.approx(one_d.confidence, abs=0.05)
    assert two_d.coverage > 0.99


def test_a_small_area_detector_runs_in_a_bluesky_plan():
    import bluesky.plans as bp
    from bluesky import RunEngine

    small = AreaDetector(name="area", sample=SAMPLE, integrator=make_geometry(shape=(32, 400), pixel_m=300e-6),
                         random_state=np.random.default_rng(1))
    documents = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    RE(bp.count([small]))
    descriptor = next(d for n, d in documents if n == "descriptor")
    assert descriptor["data_keys"]["area_image"]["shape"] == [32, 400]
    assert '"fwhm_deg": 40.0' in descriptor["configuration"]["area"]["data"]["area_texture"]
    event = next(d for n, d in documents if n == "event")
    assert np.asarray(event["data"]["area_image"]).sum() > 0


def test_classify_reads_frames_with_their_poni(tmp_path, capsys):
    """``xrd-agent classify FRAME --poni GEOMETRY``: the user's path for detector images."""
    import json

    from cli.main import main
    from patterns.frames import write_frame

    powder = AreaDetector(name="area", sample=SAMPLE, dwell=10.0, texture=ArcTexture(fraction=0.0),
                          random_state=np.random.default_rng(3))
    powder.trigger()
    frame = write_frame(tmp_path / "frame.edf", powder.image.get())
    poni = tmp_path / "geometry.poni"
    powder.integrator.save(str(poni))
    assert main(["classify", str(frame), "--poni", str(poni), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    import models
    from sim_devices.physics import expected_counts

    grid = np.round(np.arange(RANGE[0], RANGE[1] + 1e-9, 0.04), 6)
    one_d = models.load_default("space_group").predict(grid, expected_counts(grid, 0.04, 1.0, get_sample(SAMPLE)))
    assert answer["label"] == one_d.label and answer["wavelength_source"] == "file" and answer["coverage"] > 0.99
    assert main(["classify", str(frame), "--poni", str(poni), "--anode", "Co"]) == 2
    assert "--poni states the wavelength" in capsys.readouterr().err
