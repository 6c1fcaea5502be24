"""training.reflections against pymatgen's XRDCalculator, and its pseudo-atoms."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import DummySpecies, Lattice, Structure

from crystals.cif_library import default_cif_root, load_cif_library
from training.reflections import compute_reflections, scattering_factor
from training.reflections_check import compare_with_pymatgen

SHARED_CIFS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifs"


def _check_library(root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        library = load_cif_library(root)
        assert library, f"no CIF of the seven classes under {root}"
        for entry in library:
            error, pearson, _ = compare_with_pymatgen(entry.structure)
            assert error <= 0.01, f"{entry.name}: peak position off by {error:.4f} deg"
            assert pearson >= 0.99, f"{entry.name}: intensity Pearson r {pearson:.4f}"


def test_every_repository_cif_matches_pymatgen():
    _check_library(default_cif_root())


@pytest.mark.skipif(not SHARED_CIFS.is_dir(), reason="shared CIF folder absent")
def test_every_shared_cif_matches_pymatgen():
    _check_library(SHARED_CIFS)


def test_families_multiplicities_and_extinctions():
    # rock salt (Fm-3m): only all-even or all-odd hkl; {100} absent, {111} 8, {200} 6, {220} 12, {222} 8
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    r = compute_reflections(nacl, 1.5406, 60.0)
    families = {tuple(sorted(np.abs(h).astype(int))): m for h, m in zip(r.hkl, r.multiplicity)}
    assert families == {(1, 1, 1): 8, (0, 0, 2): 6, (0, 2, 2): 12, (1, 1, 3): 24, (2, 2, 2): 8}
    assert np.all(r.f_squared > 0) and np.all(np.diff(r.two_theta(1.5406)) > 0)
    # every member of a family belongs to it, padding is NaN
    assert np.isnan(r.members[0, 8:]).all() and not np.isnan(r.members[0, :8]).any()


def test_pseudo_atom_and_debye_waller():
    # at s = 0 the methylammonium pseudo-atom scatters its 19 electrons (C + N + 6 H, neutral atoms)
    assert scattering_factor("Xma", np.array([0.0]))[0] == pytest.approx(19.0, abs=0.05)
    assert scattering_factor("Xfa", np.array([0.0]))[0] == pytest.approx(25.0, abs=0.05)
    with pytest.raises(ValueError, match="Qq"):
        scattering_factor("Qq", np.array([0.0]))
    cell = Structure(Lattice.cubic(6.3), [DummySpecies("Xma"), "Pb", "I", "I", "I"],
                     [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    cold = compute_reflections(cell, 1.5406, 60.0)
    warm = compute_reflections(cell, 1.5406, 60.0, b_factors={"Pb": 3.0, "I": 3.0, "Xma": 3.0})
    ratio = warm.f_squared / cold.f_squared
    s2 = (np.sin(np.radians(cold.two_theta(1.5406)) / 2) / 1.5406) ** 2
    np.testing.assert_allclose(ratio, np.exp(-2 * 3.0 * s2), rtol=1e-9)


def test_bad_input_raises():
    cell = Structure(Lattice.cubic(4.0), ["Na"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="two_theta_max"):
        compute_reflections(cell, 1.5406, 0.0)
