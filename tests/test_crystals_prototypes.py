"""Prototype structures: intended space groups (spglib), citations, and the CsPbBr3 peak."""

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from crystals import PROTOTYPES, SPACE_GROUP_NUMBERS, get_structure, list_structures, peak_list
from crystals.prototypes import IMPURITY_PHASES, get_prototype
from patterns import SPACE_GROUPS


@pytest.mark.parametrize("name", list(PROTOTYPES))
def test_prototype_has_its_intended_space_group(name):
    proto = PROTOTYPES[name]
    structure = get_structure(name)
    expected = SPACE_GROUP_NUMBERS[proto.space_group]
    assert SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number() == expected
    # also at a tight tolerance: the symmetry is exact, not an artefact of a loose symprec
    assert SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number() == expected


@pytest.mark.parametrize("name", list(PROTOTYPES))
def test_prototype_is_physically_sensible(name):
    structure = get_structure(name)
    distances = structure.distance_matrix + np.eye(len(structure)) * 100.0
    assert distances.min() > 2.2  # angstrom: no two atoms on top of each other
    proto = get_prototype(name)
    assert proto.citation and proto.citation_key


def test_every_class_has_prototypes():
    classes = set(list_structures().values())
    assert set(SPACE_GROUPS) <= classes
    for sg in SPACE_GROUPS:
        assert sum(p.space_group == sg for p in PROTOTYPES.values()) >= 2


def test_cspbbr3_strongest_cu_kalpha_peak_at_30_4_degrees():
    structure = get_structure("CsPbBr3")
    assert structure.lattice.a == pytest.approx(5.87)
    peaks = peak_list(structure)
    strongest = peaks.two_theta[np.argmax(peaks.intensity)]
    assert abs(strongest - 30.4) <= 0.1
    assert peaks.hkls[int(np.argmax(peaks.intensity))] == (2, 0, 0)


def test_get_structure_returns_a_copy():
    a = get_structure("MAPbI3")
    a.scale_lattice(a.volume * 1.5)
    assert get_structure("MAPbI3").volume == pytest.approx(a.volume / 1.5)


def test_unknown_structure_raises_a_clear_error():
    with pytest.raises(ValueError, match="unknown structure 'Unobtainium'"):
        get_structure("Unobtainium")


def test_impurity_phases_are_listed_but_not_training_prototypes():
    listed = list_structures()
    for name in IMPURITY_PHASES:
        assert name in listed and name not in PROTOTYPES
    assert listed["SnO2"] == "P4_2/mnm"
