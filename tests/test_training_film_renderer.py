"""training.film_renderer: profiles, lattice variation, texture and noise of the batched renderer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crystals.profiles import pseudo_voigt
from crystals.prototypes import get_structure
from models.grid import GRID, GRID_STEP
from training.film_renderer import WIDTH_NODES, FilmBatch, counting_noise, render_films, render_profiles
from training.film_settings import SimulationSettings
from training.peak_table import PeakTable, phase_entry
from training.reflections import compute_reflections


def _one_peak(center: float, fwhm: float) -> np.ndarray:
    nodes = torch.full((1, len(WIDTH_NODES)), fwhm, dtype=torch.float64)
    return render_profiles(torch.tensor([center]), torch.tensor([1.0]), torch.tensor([0]), 1, nodes, torch.tensor([0.5]))[0].numpy()


@pytest.mark.parametrize("fwhm", [0.1, 0.3])
def test_profile_matches_the_pseudo_voigt(fwhm):
    for center in (20.013, 33.3, 47.77):
        rendered = _one_peak(center, fwhm)
        exact = pseudo_voigt(GRID, center, fwhm, 0.5)
        assert np.abs(rendered - exact).max() <= 0.03 * exact.max()
        assert rendered.sum() * GRID_STEP == pytest.approx(1.0, abs=0.02)  # unit area (tails beyond the grid aside)
        assert GRID[np.argmax(rendered)] == pytest.approx(center, abs=GRID_STEP)


def _cubic_table() -> dict[str, torch.Tensor]:
    structure = get_structure("CsPbBr3")
    entry = phase_entry("CsPbBr3", "Pm-3m", "prototype", {"Cs", "Pb", "Br"},
                        compute_reflections(structure, 1.5406, 68.0), ((1, 0, 0),))
    return PeakTable([entry], torch.device("cpu")).tensors()


def _films(settings: SimulationSettings, n: int = 4, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    batch = FilmBatch(n, gen, settings)
    empty = torch.zeros(0, dtype=torch.int64)
    return render_films(_cubic_table(), torch.zeros(n, dtype=torch.int64), empty, empty,
                        torch.zeros(0), torch.zeros(0, dtype=torch.bool), batch, gen)


QUIET = SimulationSettings(lattice_strain=0.0, anisotropic_strain=0.0, texture_probability=0.0, kalpha2_probability=0.0,
                           zero_shift_deg=0.0, displacement_deg=0.0, peak_counts=(1e6, 1e6 + 1), background_ratio=(1e-4, 1.1e-4),
                           hump_probability=0.0, stray_peak_probability=0.0, impurity_probability=0.0)


def test_peak_positions_follow_the_lattice():
    films = _films(QUIET).numpy()
    # CsPbBr3 (100) at a = 5.87 A, Cu K-alpha1: 2 asin(lambda / 2a) = 15.09 deg; (200) at 30.44
    window = (GRID > 14) & (GRID < 16.5)
    assert GRID[window][np.argmax(films[0, window])] == pytest.approx(15.09, abs=0.05)
    strained = _films(SimulationSettings(**{**QUIET.__dict__, "lattice_strain": 0.05}), n=32).numpy()
    peaks = GRID[window][np.argmax(strained[:, window], axis=1)]
    assert peaks.std() > 0.1 and 14.3 < peaks.min() and peaks.max() < 15.9  # +-5 % of a moves (100) by +-0.75 deg


def test_texture_enhances_the_preferred_family():
    powder = _films(QUIET, n=8).numpy()
    textured = _films(SimulationSettings(**{**QUIET.__dict__, "texture_probability": 1.0, "march_r": (0.2, 0.21)}), n=8).numpy()
    def ratio(films: np.ndarray) -> float:  # (200) over (110) heights
        h200 = films[:, (GRID > 30) & (GRID < 31)].max(axis=1)
        h110 = films[:, (GRID > 21) & (GRID < 22)].max(axis=1)
        return float(np.median(h200 / h110))
    assert ratio(textured) > 5 * ratio(powder)


def test_counting_noise_is_poisson():
    gen = torch.Generator().manual_seed(1)
    for level in (3.0, 400.0):
        counts = counting_noise(torch.full((200, 1376), level), gen)
        assert torch.equal(counts, counts.round()) and (counts >= 0).all()
        assert float(counts.mean()) == pytest.approx(level, rel=0.01)
        assert float(counts.var()) == pytest.approx(level, rel=0.05)


def test_texture_equals_the_march_dollase_family_average():
    # the compressed distinct-cos^2 table reproduces crystals.profiles.march_dollase (mean over
    # every member of each family) for a tetragonal cell textured along (110)
    from crystals.profiles import march_dollase
    from training.film_renderer import LAMBDA_KA1, phase_peaks

    structure = get_structure("MAPbI3")
    reflections = compute_reflections(structure, LAMBDA_KA1, 68.0)
    entry = phase_entry("MAPbI3", "I4/mcm", "prototype", {"Pb", "I"}, reflections, ((1, 1, 0),))
    table = PeakTable([entry], torch.device("cpu")).tensors()
    gen = torch.Generator().manual_seed(0)
    p = FilmBatch(1, gen, QUIET)
    p.march_r = torch.tensor([0.3], dtype=torch.float64)
    p.direction_u = torch.zeros(1, dtype=torch.float64)  # the first candidate: (110)
    p.b_extra, p.absorption = torch.zeros(1, dtype=torch.float64), torch.tensor([50.0], dtype=torch.float64)
    one = torch.zeros(1, dtype=torch.int64)
    _, two_theta, height = phase_peaks(table, one, one, p, torch.zeros(1, dtype=torch.bool), gen)
    members = [m[~np.isnan(m[:, 0])] for m in reflections.members]
    expected = reflections.powder_intensity(LAMBDA_KA1) * march_dollase(members, structure.lattice, (1, 1, 0), 0.3)
    by_hkl = {tuple(h): e for h, e in zip(reflections.hkl.astype(int).tolist(), expected)}
    reference = np.array([by_hkl[tuple(h)] for h in entry.hkl.astype(int).tolist()])
    inside = (two_theta.numpy() > 2.5) & (two_theta.numpy() < 62.5)
    reference = np.where(inside, reference, 0.0)
    np.testing.assert_allclose(height.numpy(), reference / reference.max(), rtol=2e-3, atol=1e-6)


def test_texture_candidates_are_symmetry_distinct():
    from training.peak_table import N_DIRECTIONS

    cubic = phase_entry("CsPbBr3", "Pm-3m", "prototype", set(),
                        compute_reflections(get_structure("CsPbBr3"), 1.5406, 68.0), ((1, 0, 0),))
    # (001) and (010) are (100) again in a cubic crystal: the candidates go on to (110), (111), ...
    assert cubic.directions.astype(int).tolist()[:3] == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert len(cubic.directions) == N_DIRECTIONS and cubic.direction_weights.sum() == pytest.approx(1.0)
    assert cubic.direction_weights[0] == pytest.approx(0.7)  # the film habit
