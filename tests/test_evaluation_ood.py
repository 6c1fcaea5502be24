"""Out-of-distribution set: repository data, symmetry, gridding, and the AUROC score."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from crystals.prototypes import SPACE_GROUP_NUMBERS
from evaluation import out_of_distribution as ood
from evaluation.beamline_films import film_sample, measure_film
from evaluation.unseen_materials import FilmSet
from models.classifier import task_classes
from models.grid import GRID


def test_structures_build_with_their_space_groups() -> None:
    built = {name: (structure, flag) for name, structure, flag, _ in ood.ood_structures()}
    assert set(built) == {"Si", "Al2O3", "LaB6", "NaCl"}
    assert len(built["Si"][0]) == 8 and built["Al2O3"][0].composition.reduced_formula == "Al2O3"
    assert not built["Si"][1] and not built["Al2O3"][1] and built["LaB6"][1] and built["NaCl"][1]
    assert SpacegroupAnalyzer(built["Si"][0], symprec=0.1).get_space_group_number() == 227


def test_cifs_are_outside_the_classes_and_licensed() -> None:
    cifs = ood.ood_cif_paths()
    assert len(cifs) >= 10
    classes = set(SPACE_GROUP_NUMBERS.values())
    for path, structure in cifs:
        assert SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number() not in classes, path
    root = ood.ood_root()
    for licence in ("cifs/PyXtal/LICENSE.txt", "measured/xrd-autoanalyzer/LICENSE", "measured/dara/LICENSE", "README.md"):
        assert (root / licence).stat().st_size > 100, licence


def test_measured_patterns_are_gridded_where_measured() -> None:
    paths = ood.measured_paths()
    assert len(paths) >= 20 and {p.suffix for p in paths} == {".xy", ".xrdml"}
    patterns = ood.ood_patterns(textures=("strong",), count_levels=("high",))
    measured = [i for i, s in enumerate(patterns.sources) if s == "measured"]
    assert len(measured) == len(paths)
    mask = patterns.masks[measured[0]]
    assert not mask[GRID < 9.9].any() and mask[(GRID > 10.1) & (GRID < 59.9)].all()  # the files start at 10 deg
    assert np.isfinite(patterns.values).all() and (patterns.values >= 0).all()
    flagged = {patterns.names[i] for i in np.flatnonzero(patterns.in_class_space_group)}
    assert "measured:MnO.xy" in flagged and "measured:MnO2.xy" not in flagged
    assert sum(s == "cif" for s in patterns.sources) == len(ood.ood_cif_paths())
    only = ood.ood_patterns(textures=("strong",), count_levels=("high",), sources=("measured",))
    assert set(only.sources) == {"measured"} and np.array_equal(only.values, patterns.values[measured])
    with pytest.raises(ValueError, match="unknown out-of-distribution sources"):
        ood.ood_patterns(sources=("oxides",))


def test_simulated_films_are_deterministic_for_a_seed() -> None:
    si = ood.ood_structures()[0][1]
    sample = film_sample(si, "Si", 0.3, (1, 1, 1))
    first = measure_film(sample, 1.0, np.random.default_rng([1, 0]))
    assert np.array_equal(first, measure_film(sample, 1.0, np.random.default_rng([1, 0])))
    assert not np.array_equal(first, measure_film(sample, 1.0, np.random.default_rng([2, 0])))
    assert abs(GRID[np.argmax(first)] - 28.44) < 0.05  # Si (111) at Cu K-alpha1


class PeakDetector:
    """Confident (0.9) when the preprocessed pattern has a peak at grid point 300, else undecided."""

    classes = task_classes("space_group")
    task = "space_group"

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        k = len(self.classes)
        p = np.full((features.shape[0], k), 1.0 / k)
        peak = features[:, 0, 300] > 0.5
        p[peak] = 0.1 / (k - 1)
        p[peak, 0] = 0.9
        return p


def _synthetic_sets() -> tuple[FilmSet, ood.OodSet]:
    rng = np.random.default_rng(0)
    inside = rng.poisson(20.0, (6, GRID.size)).astype(np.float32)
    inside[:, 298:303] += 5000.0
    outside = rng.poisson(20.0, (4, GRID.size)).astype(np.float32)
    outside[:, 700:705] += 5000.0
    films = FilmSet(inside, np.ones(inside.shape, bool), np.zeros(6, np.int64), [f"in{i}" for i in range(6)],
                    [f"in{i}" for i in range(6)], ["synthetic"] * 6, np.ones(6, bool))
    others = ood.OodSet(outside, np.ones(outside.shape, bool), [f"out{i}" for i in range(4)],
                        ["structure", "structure", "cif", "measured"], np.array([False, True, False, False]))
    return films, others


def test_score_separates_what_the_classifier_separates() -> None:
    films, others = _synthetic_sets()
    result = ood.score_ood(PeakDetector(), in_distribution=films, ood=others)
    assert result["auroc"] == 1.0 and result["auroc_strict"] == 1.0
    assert result["max_confidence"] == pytest.approx(1 / 7)
    assert result["n"] == 4 and result["n_in_class"] == 6 and result["fraction_above_half"] == 0.0
    assert set(result["per_source"]) == {"structure", "cif", "measured"}


def test_score_of_a_blind_classifier_is_chance() -> None:
    films, others = _synthetic_sets()
    swapped = ood.OodSet(films.values[:4], films.masks[:4], others.names, others.sources, others.in_class_space_group)
    result = ood.score_ood(PeakDetector(), in_distribution=films, ood=swapped)  # OOD looks exactly in-class
    assert result["auroc"] == 0.5 and result["max_confidence"] == pytest.approx(0.9)
    assert result["fraction_above_half"] == 1.0
    assert result["most_confident"][0]["predicted"] == task_classes("space_group")[0]


def test_generalisation_scores_every_model_on_both_sets() -> None:
    from evaluation.generalisation import generalisation_scores, report_keys
    from evaluation.protocols import ModelSpec
    from tests.test_evaluate_protocols import RecordingCentroidModel, synthetic_source
    from training.measured_set import load_measured_set

    spec = ModelSpec("centroid", lambda task, seed: RecordingCentroidModel(len(task_classes(task))))
    result = generalisation_scores("space_group", [spec], load_measured_set("space_group"), synthetic_source,
                                   quick=True, extra={"constant": PeakDetector()})
    assert set(result["unseen"]) == {"centroid", "constant"} == set(result["ood"])
    assert result["unseen"]["centroid"]["n"] == result["settings"]["n_unseen_patterns"] == 8
    assert result["settings"]["n_training"] == 88 + 28  # every measured pattern + the synthetic set
    assert 0.0 <= result["ood"]["centroid"]["auroc"] <= 1.0
    # the stand-in never sees a peak at grid point 300 in these films: undecided everywhere
    assert result["ood"]["constant"]["auroc"] == 0.5 and result["ood"]["constant"]["max_confidence"] == pytest.approx(1 / 7)
    assert "per_source" in result["detail"]["centroid"]["ood"]
    keys = report_keys(result, "centroid")
    assert keys["unseen"]["accuracy"] == result["unseen"]["centroid"]["accuracy"]
    assert set(keys["ood_by_task"]["models"]) == {"constant"} and "auroc" in keys["ood_by_task"]
