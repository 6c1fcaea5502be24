"""CIF library: the repo copy, filtered by spglib to the seven classes."""

import pytest

from crystals.cif_library import classify_structure, default_cif_root, load_cif_library
from crystals import get_structure
from patterns import SPACE_GROUPS


def test_repo_cifs_all_fall_in_the_seven_classes_with_licenses():
    root = default_cif_root()
    entries = load_cif_library(root)
    assert len(entries) == len(list(root.rglob("*.cif"))) >= 30
    assert {e.space_group for e in entries} == set(SPACE_GROUPS)
    assert (root / "PyXtal" / "LICENSE.txt").is_file()
    assert (root / "XRD-AutoAnalyzer" / "LICENSE").is_file()
    by_name = {e.name: e for e in entries}
    # the file name says I-4c2, spglib says I4/mcm: the library trusts spglib
    assert by_name["cif:PyXtal/pyxtal/miscellaneous/cifs/I-4c2.cif"].space_group == "I4/mcm"


def test_classify_structure():
    assert classify_structure(get_structure("Cs3Bi2I9")) == "P6_3/mmc"
    assert classify_structure(get_structure("SnO2")) is None


def test_bad_root_and_bad_file(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        load_cif_library(tmp_path / "missing")
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a oops\n")
    with pytest.warns(UserWarning, match="broken.cif"):
        assert load_cif_library(tmp_path) == []
