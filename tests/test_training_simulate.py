"""Simulated training data: shapes, labels, determinism, balance, and the physics of the renderer."""

import numpy as np
import pytest

from models.grid import GRID
from training.simulate import LABEL_THEO_COUNTS, class_counts, render_pattern, simulate_training_set
from patterns import DIMENSIONALITIES, SPACE_GROUP_TO_DIMENSIONALITY, SPACE_GROUPS


@pytest.fixture(scope="module")
def small_set():
    return simulate_training_set(6, seed=3)


def test_shapes_dtypes_labels_and_balance(small_set):
    X, y, meta = small_set
    assert X.shape == (42, 1376) and X.dtype == np.float32
    assert y.shape == (42,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() < len(SPACE_GROUPS)
    assert np.bincount(y, minlength=7).tolist() == [6] * 7
    assert np.all(np.isfinite(X)) and X.min() >= 0
    assert len(meta) == 42
    for label, m in zip(y, meta):
        assert m["space_group"] == SPACE_GROUPS[label]
        assert m["structure"] and m["citation_key"] and m["origin"] in ("prototype", "cif")
    # raw counts, not normalised: count levels differ between patterns
    assert X.max(axis=1).std() > 1.0


def test_determinism_by_seed(small_set):
    X, y, meta = small_set
    X2, y2, meta2 = simulate_training_set(6, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert meta == meta2
    X3, _, _ = simulate_training_set(6, seed=4)
    assert not np.array_equal(X, X3)


def test_class_balance_from_a_dict_and_label_theo_default():
    X, y, meta = simulate_training_set({"Pc": 3, "Fm-3m": 5}, seed=0)
    assert np.bincount(y, minlength=7).tolist() == [5, 0, 0, 0, 0, 3, 0]
    default = class_counts(None)
    assert default == {sg: 10 * LABEL_THEO_COUNTS[sg] for sg in SPACE_GROUPS}
    assert sum(LABEL_THEO_COUNTS.values()) == 164  # the paper's simulated set
    with pytest.raises(ValueError, match="unknown classes"):
        simulate_training_set({"P1": 3}, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        simulate_training_set({"Pc": -1}, seed=0)
    with pytest.raises(ValueError, match="task"):
        simulate_training_set(2, seed=0, task="colour")


def test_dimensionality_task_labels():
    X, y, meta = simulate_training_set(7, seed=1, task="dimensionality")
    assert np.bincount(y, minlength=3).tolist() == [7, 7, 7]
    for label, m in zip(y, meta):
        assert DIMENSIONALITIES[label] == SPACE_GROUP_TO_DIMENSIONALITY[m["space_group"]]


def _peak_position(pattern, lo, hi):
    sel = (GRID > lo) & (GRID < hi)
    x, v = GRID[sel], pattern[sel]
    top = v.argmax()
    # centroid of the top five points: sub-grid precision
    window = slice(max(top - 2, 0), top + 3)
    return float((x[window] * v[window]).sum() / v[window].sum())


def test_renderer_peak_moves_with_strain_as_braggs_law_says():
    lam = 1.54056
    two_theta_0 = _peak_position(render_pattern("CsPbBr3"), 29.0, 32.0)
    assert two_theta_0 == pytest.approx(2 * np.degrees(np.arcsin(lam / (2 * 5.87 / 2))), abs=0.02)
    for scale in (0.98, 1.02):
        moved = _peak_position(render_pattern("CsPbBr3", lattice_scale=scale), 28.0, 33.0)
        expected = 2 * np.degrees(np.arcsin(np.sin(np.radians(two_theta_0) / 2) / scale))
        assert moved == pytest.approx(expected, abs=0.02)
    shifted = _peak_position(render_pattern("CsPbBr3", zero_shift_deg=0.2), 29.0, 32.0)
    assert shifted == pytest.approx(two_theta_0 + 0.2, abs=0.02)


def test_march_dollase_along_100_raises_the_h00_family():
    powder = render_pattern("CsPbBr3")
    textured = render_pattern("CsPbBr3", preferred_hkl=(1, 0, 0), march_r=0.4)

    def height(p, centre):
        return p[np.abs(GRID - centre) < 0.3].max()

    # (100) at 15.1, (110) at 21.4, (200) at 30.4 degrees
    ratio_powder = height(powder, 15.1) / height(powder, 21.4)
    ratio_textured = height(textured, 15.1) / height(textured, 21.4)
    assert ratio_textured > 5 * ratio_powder
    assert height(textured, 30.4) / height(textured, 21.4) > 5 * height(powder, 30.4) / height(powder, 21.4)


def test_render_pattern_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown structure"):
        render_pattern("Unobtainium")
    with pytest.raises(ValueError):
        render_pattern("CsPbBr3", fwhm_deg=0.0)


def test_impurities_are_chemically_plausible_and_recorded():
    X, y, meta = simulate_training_set({"Pm-3m": 60, "P6_3/mmc": 60}, seed=5)
    phases = {m["space_group"]: set() for m in meta}
    for m in meta:
        if m["impurity"] is not None:
            phases[m["space_group"]].add(m["impurity"]["phase"])
            assert m["impurity"]["fraction"] > 0
    assert "PbI2" in phases["Pm-3m"]  # lead-halide films: PbI2 occurs
    assert "PbI2" not in phases["P6_3/mmc"]  # Bi/Sb iodides: no lead, no PbI2
    assert phases["P6_3/mmc"] <= {"SnO2", "In2O3"}


def test_thin_film_absorption_favours_low_angles_and_dims_the_substrate():
    import torch

    from training.film_renderer import film_absorption, substrate_transmission

    angles = np.array([14.0, 28.0, 56.0])
    sin_theta = torch.tensor(np.sin(np.radians(angles) / 2.0))
    thin = film_absorption(sin_theta, torch.tensor(0.005, dtype=torch.float64)).numpy()
    thick = film_absorption(sin_theta, torch.tensor(50.0, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(thick, 1.0)  # bulk limit: no angle dependence
    assert thin[0] > thin[1] > thin[2]  # ~ 1 / sin(theta) for thin films
    assert thin[0] / thin[1] == pytest.approx(np.sin(np.radians(14.0)) / np.sin(np.radians(7.0)), rel=0.05)
    through = substrate_transmission(sin_theta, torch.tensor(0.5, dtype=torch.float64)).numpy()
    assert np.all(through < 1.0) and through[0] < through[2]


def test_generated_structures_join_on_request():
    X, y, meta = simulate_training_set(3, seed=2, structures_per_class=1)
    assert X.shape == (21, 1376)
    assert {m["origin"] for m in meta} <= {"prototype", "cif", "substituted", "pyxtal"}
