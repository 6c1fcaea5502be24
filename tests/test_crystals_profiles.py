"""Profile, width and texture functions."""

import numpy as np
import pytest

from crystals import get_structure
from crystals.profiles import caglioti_fwhm, march_dollase, pseudo_voigt, scherrer_fwhm


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_pseudo_voigt_is_area_normalised_with_the_given_fwhm(eta):
    x = np.linspace(-200, 200, 400001)
    y = pseudo_voigt(x, 0.0, 0.3, eta)
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=2e-3)
    half = pseudo_voigt(np.array([0.0, 0.15]), 0.0, 0.3, eta)
    assert half[1] / half[0] == pytest.approx(0.5, rel=1e-9)


def test_pseudo_voigt_vectorises_over_peaks_and_rejects_bad_widths():
    x = np.linspace(10, 20, 101)
    out = pseudo_voigt(x, np.array([12.0, 15.0, 18.0]), np.array([0.1, 0.2, 0.3]), 0.4)
    assert out.shape == (3, 101)
    assert x[out[1].argmax()] == pytest.approx(15.0)
    with pytest.raises(ValueError, match="fwhm"):
        pseudo_voigt(x, 12.0, 0.0, 0.5)
    with pytest.raises(ValueError, match="eta"):
        pseudo_voigt(x, 12.0, 0.1, 1.5)


def test_caglioti_and_scherrer_values():
    assert caglioti_fwhm(90.0, 0.01, 0.0, 0.0) == pytest.approx(0.1)  # tan 45 = 1
    assert caglioti_fwhm(30.0, 0.0, 0.0, 0.0004) == pytest.approx(0.02)
    # K lambda / (L cos theta): 0.9 * 1.5406 / (500 * cos 15 deg) rad
    expected = np.degrees(0.9 * 1.5406 / (500.0 * np.cos(np.radians(15.0))))
    assert scherrer_fwhm(30.0, 50.0) == pytest.approx(expected)
    assert scherrer_fwhm(30.0, 20.0) > scherrer_fwhm(30.0, 100.0)
    with pytest.raises(ValueError):
        scherrer_fwhm(30.0, 0.0)


def test_march_dollase_is_one_for_r_one_and_raises_h00_for_r_below_one():
    lattice = get_structure("CsPbBr3").lattice
    hkls = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [2, 0, 0]])
    np.testing.assert_allclose(march_dollase(hkls, lattice, (1, 0, 0), 1.0), 1.0)
    w = march_dollase(hkls, lattice, (1, 0, 0), 0.5)
    assert w[0] > 1.0 and w[3] == pytest.approx(w[0])
    assert w[0] > w[1] > w[2]
    # averaged over the whole {100} family, a texture still favours the family less than
    # the single (100) member, but more than {110}
    family_100 = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    family_110 = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1]])
    wf = march_dollase([family_100, family_110], lattice, (0, 0, 1), 0.5)
    assert wf[0] > wf[1]
    with pytest.raises(ValueError):
        march_dollase(hkls, lattice, (0, 0, 0), 0.5)
