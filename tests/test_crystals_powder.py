"""Peak lists: pymatgen values, caching, family members, strained-lattice positions."""

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator

from crystals import PeakList, get_structure, peak_list, two_theta_for_lattice
from crystals.powder import d_spacings_for_lattice


def test_peak_list_matches_pymatgen_and_is_cached():
    s = get_structure("MAPbI3")
    peaks = peak_list(s, (5.0, 60.0), "CuKa")
    ref = XRDCalculator("CuKa").get_pattern(s, two_theta_range=(5.0, 60.0))
    np.testing.assert_allclose(peaks.two_theta, ref.x)
    np.testing.assert_allclose(peaks.intensity, ref.y)
    assert peaks.intensity.max() == pytest.approx(100.0)
    assert peak_list(get_structure("MAPbI3"), (5.0, 60.0), "CuKa") is peaks
    with pytest.raises(ValueError):
        peaks.two_theta[0] = 1.0  # read-only


def test_family_members_share_the_d_spacing():
    s = get_structure("Cs3Bi2I9")  # hexagonal: pymatgen reports four-index hkls
    peaks = peak_list(s, (5.0, 40.0))
    for d, members in zip(peaks.d_spacing, peaks.members):
        np.testing.assert_allclose(d_spacings_for_lattice(members, s.lattice), d, rtol=1e-4)
    cubic = peak_list(get_structure("CsPbBr3"))
    assert len(cubic.members[cubic.hkls.index((1, 0, 0))]) == 6  # (+-1 0 0) x 3 axes


def test_strained_lattice_positions_follow_braggs_law():
    s = get_structure("CsPbBr3")
    peaks = peak_list(s, wavelength="CuKa1")
    hkl = np.array([m[0] for m in peaks.members])
    np.testing.assert_allclose(two_theta_for_lattice(hkl, s.lattice, "CuKa1"), peaks.two_theta, atol=1e-9)
    strained = s.copy()
    strained.scale_lattice(s.volume * 1.03**3)  # +3 % in a
    expected = 2 * np.degrees(np.arcsin(np.sin(np.radians(peaks.two_theta) / 2) / 1.03))
    np.testing.assert_allclose(two_theta_for_lattice(hkl, strained.lattice, "CuKa1"), expected, atol=1e-9)
    # and against a fresh pymatgen calculation of the strained structure
    # and against a fresh pymatgen calculation (a larger cell may bring extra peaks in at the top)
    fresh = peak_list(strained, wavelength="CuKa1")
    assert len(fresh) >= len(expected)
    np.testing.assert_allclose(fresh.two_theta[: len(expected)], expected, atol=1e-6)


def test_batched_lattices():
    s = get_structure("MAPbI3")
    hkl = np.array([[1, 1, 0], [0, 0, 2]])
    batch = np.stack([s.lattice.matrix, s.lattice.matrix * 1.01])
    out = two_theta_for_lattice(hkl, batch)
    assert out.shape == (2, 2)
    assert np.all(out[1] < out[0])


def test_bad_input_is_rejected():
    s = get_structure("CsPbBr3")
    with pytest.raises(ValueError, match="two_theta_range"):
        peak_list(s, (60.0, 5.0))
    with pytest.raises(ValueError, match="unknown wavelength"):
        peak_list(s, wavelength="CuKz")
    with pytest.raises(ValueError, match="pymatgen Structure"):
        peak_list("CsPbBr3")
    with pytest.raises(ValueError, match="equal lengths"):
        PeakList(np.zeros(2), np.zeros(3), [(1, 0, 0)] * 2, np.zeros(2))
