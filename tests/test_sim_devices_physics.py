"""Physics of the simulated diffractometer: the sample library and window integration."""

from __future__ import annotations

import numpy as np
import pytest

from crystals.profiles import pseudo_voigt
from patterns import load_space_group_set
from sim_devices import Sample, ThinFilm, get_sample, list_samples, replay_measured, simulate_thin_film
from sim_devices.physics import cumulative_rate_at, expected_counts
from sim_devices.samples import sample_library
from sim_devices.thin_film import thin_film_peaks

FINE_GRID = np.round(np.arange(0.0, 95.0, 0.001), 6)


def single_peak_sample(center: float, fwhm: float, area: float = 1.0e4, flat: float = 200.0) -> Sample:
    density = flat + area * pseudo_voigt(FINE_GRID, center, fwhm, 0.5)
    return Sample("test-peak", None, "simulated", FINE_GRID, density, {"center": center, "fwhm": fwhm})


# ---------------------------------------------------------------------- window integration


def test_window_integral_is_exact_for_a_linear_density() -> None:
    grid = np.array([0.0, 10.0, 20.0])
    sample = Sample("ramp", None, "simulated", grid, np.array([0.0, 100.0, 100.0]), {})
    # density 10 x on [0, 10], flat 100 above: integral over [4, 6] = 10 * (36 - 16) / 2 = 100
    assert float(expected_counts(5.0, 2.0, 1.0, sample)) == pytest.approx(100.0)
    assert float(expected_counts(10.0, 2.0, 3.0, sample)) == pytest.approx(3 * (95.0 + 100.0))
    # beyond the grid the edge value continues: [19, 23] -> 4 deg x 100 /s/deg
    assert float(expected_counts(21.0, 4.0, 1.0, sample)) == pytest.approx(400.0)
    vector = expected_counts(np.array([5.0, 10.0, 21.0]), 2.0, 1.0, sample)
    scalars = [float(expected_counts(x, 2.0, 1.0, sample)) for x in (5.0, 10.0, 21.0)]
    np.testing.assert_allclose(vector, scalars)
    np.testing.assert_allclose(cumulative_rate_at([-1.0, 25.0], sample), [0.0, 1500.0 + 500.0])


@pytest.mark.parametrize(("acceptance", "dwell"), [(0.0, 1.0), (-0.1, 1.0), (0.04, -1.0), (np.nan, 1.0)])
def test_expected_counts_rejects_bad_arguments(acceptance: float, dwell: float) -> None:
    with pytest.raises(ValueError, match="expected_counts"):
        expected_counts(30.0, acceptance, dwell, get_sample("CsPbBr3"))


def test_counts_scale_with_dwell_and_with_acceptance_on_flat_background() -> None:
    sample = single_peak_sample(30.0, 0.05)
    base = float(expected_counts(50.0, 0.04, 1.0, sample))
    assert base == pytest.approx(0.04 * 200.0, rel=1e-3)  # far from the peak: flat background
    assert float(expected_counts(50.0, 0.04, 2.5, sample)) == pytest.approx(2.5 * base)
    assert float(expected_counts(50.0, 0.16, 1.0, sample)) == pytest.approx(4 * base, rel=1e-3)


# --------------------------------------------------------------- under-sampling of a narrow peak


def test_narrow_peak_loses_measured_height_at_a_coarse_step() -> None:
    """FWHM 0.05 deg peak: a 0.16 deg step measures less peak height than a 0.04 deg step."""
    fine = np.round(5.0 + 0.04 * np.arange(1376), 6)
    coarse = np.round(5.0 + 0.16 * np.arange(344), 6)  # a subset of the fine points
    fixed_window, tiling_window = [], []
    for offset in np.linspace(0.0, 0.16, 16, endpoint=False):  # peak positions across one step
        sample = single_peak_sample(30.0 + offset, fwhm=0.05)
        # (a) fixed detector acceptance 0.04 deg: a 0.16 step leaves 0.12 deg gaps
        height_fine = expected_counts(fine, 0.04, 1.0, sample).max()
        height_coarse = expected_counts(coarse, 0.04, 1.0, sample).max()
        fixed_window.append(height_coarse / height_fine)
        # (b) acceptance = step (windows tile the range): compare counts per degree
        per_degree_fine = height_fine / 0.04
        per_degree_coarse = expected_counts(coarse, 0.16, 1.0, sample).max() / 0.16
        tiling_window.append(per_degree_coarse / per_degree_fine)
    fixed_window, tiling_window = np.array(fixed_window), np.array(tiling_window)
    print(f"coarse/fine height, fixed 0.04 window: mean {fixed_window.mean():.3f}, min {fixed_window.min():.3f}")
    print(f"coarse/fine height per degree, window = step: mean {tiling_window.mean():.3f}, max {tiling_window.max():.3f}")
    assert np.all(fixed_window <= 1.0 + 1e-12)
    assert fixed_window.mean() < 0.6 and fixed_window.min() < 0.1  # can miss the peak entirely
    assert tiling_window.max() < 0.7


def test_narrow_peak_loss_seen_through_the_detector() -> None:
    from sim_devices import make_beamline

    bl = make_beamline(sample=single_peak_sample(30.04, fwhm=0.05), noise="none", position=29.0)
    heights = {}
    for step in (0.16, 0.04):
        readings = []
        for x in np.round(np.arange(29.0, 31.0 + 1e-9, step), 6):
            bl.motor.set(x)
            bl.detector.trigger()
            readings.append(bl.detector.counts.get())
        heights[step] = max(readings)
    # the peak sits midway (0.08 deg) between two coarse points, on a fine point
    assert heights[0.16] < 0.2 * heights[0.04]


# ------------------------------------------------------------------------- simulated samples


def test_cspbbr3_strongest_peak_at_30_4_degrees() -> None:
    sample = get_sample("CsPbBr3")
    assert sample.label == "Pm-3m" and sample.kind == "simulated"
    window = (sample.grid_deg >= 5.0) & (sample.grid_deg <= 60.0)
    peak = sample.grid_deg[window][np.argmax(sample.rate_density[window])]
    scan = np.round(np.arange(5.0, 60.0 + 1e-9, 0.04), 6)
    measured_peak = scan[np.argmax(expected_counts(scan, 0.04, 1.0, sample))]
    print(f"CsPbBr3 strongest peak: density max {peak:.3f} deg, 0.04-deg scan max {measured_peak:.2f} deg")
    assert abs(peak - 30.4) <= 0.1 and abs(measured_peak - 30.4) <= 0.1


def test_cspbbr3_peak_positions_agree_with_an_independent_structure() -> None:
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.core import Lattice, Structure

    structure = Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(5.87), ["Cs", "Pb", "Br"], [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]]
    )
    reference = XRDCalculator("CuKa1").get_pattern(structure, two_theta_range=(5, 60))
    ours = thin_film_peaks(structure, ThinFilm())
    strongest = reference.x[np.argmax(reference.y)]
    assert abs(strongest - 30.4) <= 0.1
    assert ours.centers[np.argmax(ours.areas)] == pytest.approx(strongest, abs=1e-6)


def test_march_dollase_r_below_one_along_100_raises_h00_reflections() -> None:
    from crystals import peak_list

    structure = get_sample_structure("CsPbBr3")
    random = thin_film_peaks(structure, ThinFilm())
    textured = thin_film_peaks(structure, ThinFilm(preferred_hkl=(1, 0, 0), march_r=0.5))
    peaks = peak_list(structure, (1.0, 110.0), "CuKa")
    in_range = (random.centers > 5) & (random.centers < 60)
    # pure (h00) peaks: every contributing member has two zero indices ((300) shares its
    # peak with (221) in a cubic cell and is left out)
    pure_h00 = np.array([bool(np.all((m == 0).sum(axis=1) == 2)) for m in peaks.members]) & in_range
    assert pure_h00.sum() == 2  # (100) at 15.1 deg and (200) at 30.4 deg
    share_random = random.areas[in_range] / random.areas[in_range].sum()
    share_textured = textured.areas[in_range] / textured.areas[in_range].sum()
    is_h00 = pure_h00[in_range]
    print(f"(h00) share: random {share_random[is_h00].sum():.3f}, r=0.5 {share_textured[is_h00].sum():.3f}")
    assert np.all(share_textured[is_h00] > 1.5 * share_random[is_h00])
    assert share_textured[is_h00].sum() > share_random[is_h00].sum() + 0.2
    assert share_textured[~is_h00].sum() < share_random[~is_h00].sum()
    # and the rendered sample shows it: (100) at ~15.1 deg grows relative to (110) at ~21.4 deg
    plain, tex = get_sample("CsPbBr3"), get_sample("CsPbBr3-textured")
    ratio = [float(expected_counts(15.1, 0.4, 1, s) / expected_counts(21.4, 0.4, 1, s)) for s in (plain, tex)]
    assert ratio[1] > 2 * ratio[0]


def get_sample_structure(name: str):  # noqa: ANN201 - pymatgen Structure
    from crystals import get_structure

    return get_structure(name)


def test_strain_shifts_peaks_to_lower_angle() -> None:
    plain = thin_film_peaks(get_sample_structure("CsPbBr3"), ThinFilm())
    strained = thin_film_peaks(get_sample_structure("CsPbBr3"), ThinFilm(strain=0.01))
    assert np.all(strained.centers < plain.centers)
    d = 1.54056 / (2 * np.sin(np.radians(plain.centers / 2)))
    np.testing.assert_allclose(strained.centers, np.degrees(2 * np.arcsin(1.54056 / (2 * d * 1.01))), rtol=1e-6)


def test_kalpha2_doublet() -> None:
    structure = get_sample_structure("CsPbBr3")
    alpha1 = thin_film_peaks(structure, ThinFilm())
    alpha2 = thin_film_peaks(structure, ThinFilm(), kalpha2=True)
    d = 1.54056 / (2 * np.sin(np.radians(alpha1.centers / 2)))
    np.testing.assert_allclose(alpha2.centers, np.degrees(2 * np.arcsin(1.54439 / (2 * d))), rtol=1e-9)
    np.testing.assert_allclose(alpha2.areas, 0.5 * alpha1.areas)
    # with sharp peaks the doublet is resolved at high angle: two maxima ~0.2 deg apart near 58.9
    sharp = get_sample("CsPbBr3-sharp")
    k = int(np.argmin(np.abs(alpha1.centers - 58.9)))
    for center in (alpha1.centers[k], alpha2.centers[k]):
        i = int(np.argmin(np.abs(sharp.grid_deg - center)))
        assert sharp.rate_density[i] > sharp.rate_density[i - 15] and sharp.rate_density[i] > sharp.rate_density[i + 15]
    with pytest.raises(ValueError, match="kalpha2_ratio"):
        ThinFilm(wavelength="CuKa")


def test_broadening_grows_with_smaller_crystallites() -> None:
    large = thin_film_peaks(get_sample_structure("CsPbBr3"), ThinFilm(crystallite_size_nm=500))
    small = thin_film_peaks(get_sample_structure("CsPbBr3"), ThinFilm(crystallite_size_nm=20))
    assert np.all(small.fwhm > large.fwhm) and np.all(small.eta > large.eta)
    assert 0.03 < large.fwhm.min() < 0.15  # narrow enough that the step size matters


def test_impurity_phase_adds_its_peaks() -> None:
    pure = simulate_thin_film("Cs2AgBiBr6")
    mixed = get_sample("Cs2AgBiBr6+Cs3Bi2Br9")
    impurity_peaks = thin_film_peaks(get_sample_structure("Cs3Bi2Br9"), ThinFilm())
    strongest = impurity_peaks.centers[np.argmax(impurity_peaks.areas)]
    extra = float(expected_counts(strongest, 0.1, 1, mixed) - expected_counts(strongest, 0.1, 1, pure))
    assert extra > 0.05 * float(expected_counts(strongest, 0.1, 1, pure))
    assert mixed.label == "Fm-3m"


def test_thin_film_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="march_r"):
        ThinFilm(march_r=0.0)
    with pytest.raises(ValueError, match="impurity"):
        ThinFilm(impurity_fraction=0.2)
    with pytest.raises(ValueError, match="preferred_hkl"):
        ThinFilm(preferred_hkl=(0, 0, 0))


# -------------------------------------------------------------------------- measured replays


def test_measured_replay_reproduces_the_file_counts_on_average() -> None:
    pattern = next(p for p in load_space_group_set() if p.name == "MASnI3_2-Theta_Omega")
    sample = get_sample("auto-xrd/MASnI3_2-Theta_Omega")
    assert sample.kind == "measured" and sample.label == "I4/mcm" == pattern.label
    step = float(np.median(np.diff(pattern.two_theta)))
    interior = pattern.two_theta[5:-5]
    expected = expected_counts(interior, step, 1.0, sample)
    # window integration of the linear interpolant smooths a little; totals agree closely
    assert expected.sum() == pytest.approx(pattern.intensity[5:-5].sum(), rel=0.01)
    assert np.corrcoef(expected, pattern.intensity[5:-5])[0, 1] > 0.99
    again = replay_measured(pattern)
    assert again.name == sample.name


def test_library_lists_measured_and_simulated_samples() -> None:
    library = sample_library()
    names = list_samples()
    assert sum(n.startswith("auto-xrd/") for n in names) == 88
    assert {"CsPbBr3", "MAPbI3", "Cs2AgBiBr6", "Cs3Bi2Br9", "Cs3Bi2I9", "CsPbBr3-textured"} <= set(names)
    assert library["CsPbBr3"] == "Pm-3m" and library["auto-xrd/MASnI3_2-Theta_Omega"] == "I4/mcm"
    assert get_sample("CsPbBr3") is get_sample("CsPbBr3")  # cached
    with pytest.raises(ValueError, match="unknown sample"):
        get_sample("auto-xrd/nope")


def test_sample_validation() -> None:
    with pytest.raises(ValueError, match="sample 'bad'"):
        Sample("bad", None, "simulated", np.array([1.0, 2.0]), np.array([1.0, -1.0]), {})


def test_cif_samples_are_simulated_from_the_repository_cifs() -> None:
    sample = get_sample("cif:PyXtal/pyxtal/database/cifs/NaCl.cif")
    assert sample.label == "Fm-3m" and sample.kind == "simulated"
    # NaCl (a = 5.64 A): strongest reflection (200) near 31.7 deg with Cu K-alpha
    window = (sample.grid_deg > 20) & (sample.grid_deg < 60)
    assert abs(sample.grid_deg[window][np.argmax(sample.rate_density[window])] - 31.7) < 0.3
    for bad in ("cif:../../pyproject.toml", "cif:absent.cif"):
        with pytest.raises(ValueError, match="unknown sample"):
            get_sample(bad)
    assert sample_library(include_cifs=True)["cif:PyXtal/pyxtal/database/cifs/NaCl.cif"] == "Fm-3m"


def test_tabulation_grid_integrates_the_sharpest_peaks_accurately() -> None:
    """Window integrals of the 0.002-deg table match the analytic pseudo-Voigt integral."""
    from math import erf, log, pi, sqrt

    from sim_devices.thin_film import SIMULATION_GRID_DEG

    center, fwhm, eta, area = 30.0123, 0.035, 0.3, 1.0e4
    table = Sample("pv", None, "simulated", SIMULATION_GRID_DEG,
                   area * pseudo_voigt(SIMULATION_GRID_DEG, center, fwhm, eta), {})

    def exact(lo: float, hi: float) -> float:
        gauss = 0.5 * (erf(2 * sqrt(log(2)) * (hi - center) / fwhm) - erf(2 * sqrt(log(2)) * (lo - center) / fwhm))
        lorentz = (np.arctan(2 * (hi - center) / fwhm) - np.arctan(2 * (lo - center) / fwhm)) / pi
        return area * (eta * lorentz + (1 - eta) * gauss)

    for x in (29.95, 29.99, 30.0, 30.01, 30.03, 30.07):
        got = float(expected_counts(x, 0.04, 1.0, table))
        # within 0.5 %: linear interpolation of a 0.035-deg peak on a 0.002-deg grid (the
        # Poisson noise of these counts is several per cent)
        assert got == pytest.approx(exact(x - 0.02, x + 0.02), rel=5e-3, abs=0.5)
