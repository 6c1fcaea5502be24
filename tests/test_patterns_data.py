"""The AUTO-XRD loaders on the repository copy, and every real file under ../shared/data."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from patterns import (
    DIMENSIONALITIES,
    SPACE_GROUP_TO_DIMENSIONALITY,
    SPACE_GROUPS,
    load_dimensionality_set,
    load_space_group_set,
    read_pattern,
    repo_data_dir,
)
from patterns.datasets import ENCODING_NAME_TO_SPACE_GROUP

EXPECTED_SPACE_GROUP_COUNTS = {
    "Fm-3m": 4, "I4/mcm": 17, "P2_1/a": 1, "P-3m1": 13, "P6_3/mmc": 4, "Pc": 2, "Pm-3m": 47,
}


@pytest.fixture(scope="module")
def space_group_set() -> list:
    return load_space_group_set()


def test_repo_data_layout_is_complete() -> None:
    auto_xrd = repo_data_dir() / "auto-xrd"
    for name in ("exp_d.csv", "label_exp.csv", "label_theo.csv", "encoding.csv",
                 "derived_expd_to_xy_map.csv", "LICENSE.upstream-Apache-2.0.txt", "README.md"):
        assert (auto_xrd / name).is_file(), name
    assert len(list((auto_xrd / "Experimental").glob("*/*.xy"))) == 88


def test_space_group_order_matches_upstream_encoding() -> None:
    with (repo_data_dir() / "auto-xrd" / "encoding.csv").open() as handle:
        rows = list(csv.reader(handle))[1:]
    assert tuple(ENCODING_NAME_TO_SPACE_GROUP[name] for _, name in rows) == SPACE_GROUPS
    assert set(SPACE_GROUP_TO_DIMENSIONALITY) == set(SPACE_GROUPS)
    assert set(SPACE_GROUP_TO_DIMENSIONALITY.values()) == set(DIMENSIONALITIES)


def test_space_group_set_counts_and_metadata(space_group_set: list) -> None:
    assert len(space_group_set) == 88
    assert Counter(p.label for p in space_group_set) == EXPECTED_SPACE_GROUP_COUNTS
    for pattern in space_group_set:
        assert pattern.metadata["dimensionality"] == SPACE_GROUP_TO_DIMENSIONALITY[pattern.label]
        assert Path(pattern.metadata["source"]).stem == pattern.name
    assert len({p.name for p in space_group_set}) == 88


def test_space_group_set_order_agrees_with_label_exp(space_group_set: list) -> None:
    # label_exp.csv lists the class index of each of the 88 files in folder order.
    with (repo_data_dir() / "auto-xrd" / "label_exp.csv").open() as handle:
        indices = [int(float(row[1])) for row in list(csv.reader(handle))[1:]]
    assert [SPACE_GROUPS[i] for i in indices] == [p.label for p in space_group_set]


def test_fixed_width_files_parse_onto_their_uniform_grid(space_group_set: list) -> None:
    glued = [p for p in space_group_set if p.metadata["n_fixed_width_lines"]]
    assert len(glued) == 4 and sum(p.metadata["n_fixed_width_lines"] for p in glued) == 832
    for pattern in glued:
        steps = np.diff(pattern.two_theta)
        assert steps.min() > 0.0495 and steps.max() < 0.0498, pattern.name
        assert (pattern.two_theta[0], pattern.two_theta[-1]) == (10.0, 80.014)
    by_name = {p.name: p for p in glued}
    one = by_name["15% SnPerovskite at 0.5M 4to1 dmftodmso"]
    i = int(np.argmin(np.abs(one.two_theta - 14.1185)))
    assert one.intensity[i] == 1260.0  # the line "14.11851260"


def test_dimensionality_set_labels_and_join(space_group_set: list) -> None:
    patterns = load_dimensionality_set()
    assert len(patterns) == 73
    assert Counter(p.label for p in patterns) == {"0D": 14, "2D": 14, "3D": 45}
    assert [p.name for p in patterns[:2]] == ["exp_d:0", "exp_d:1"]
    matched = [p for p in patterns if p.metadata["xy_name"] is not None]
    assert len(matched) == 56
    by_name = {p.name: p for p in space_group_set}
    for pattern in matched:
        twin = by_name[pattern.metadata["xy_name"]]
        assert pattern.metadata["space_group"] == twin.label
        assert SPACE_GROUP_TO_DIMENSIONALITY[twin.label] == pattern.label
        np.testing.assert_array_equal(pattern.two_theta, twin.two_theta)
        np.testing.assert_array_equal(pattern.intensity, twin.intensity)
    unmatched = [p for p in patterns if p.metadata["xy_name"] is None]
    assert all(p.metadata["space_group"] is None for p in unmatched)


def test_ragged_table_errors_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "exp_d.csv"
    good.write_text("0D,0D,3D,3D\n5,10,5,1\n6,11,6,2\n7,12,,\n")
    patterns = load_dimensionality_set(good)
    assert [len(p) for p in patterns] == [3, 2]
    assert all(p.metadata["space_group"] is None for p in patterns)
    bad = tmp_path / "bad_d.csv"
    bad.write_text("0D,0D,3D,3D\n5,10,5,1\n6,11,,\n7,12,7,3\n")
    with pytest.raises(ValueError, match=r"bad_d\.csv: line 4: column 2: data after empty padding"):
        load_dimensionality_set(bad)
    half = tmp_path / "half_d.csv"
    half.write_text("0D,0D\n5,10\n6,\n")
    with pytest.raises(ValueError, match=r"half_d\.csv: line 3"):
        load_dimensionality_set(half)
    label = tmp_path / "label_d.csv"
    label.write_text("1D,1D\n5,10\n6,11\n")
    with pytest.raises(ValueError, match=r"label_d\.csv: line 1"):
        load_dimensionality_set(label)


def test_unknown_space_group_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "P1").mkdir()
    with pytest.raises(ValueError, match="unknown space-group folder 'P1'"):
        load_space_group_set(tmp_path)


# ------------------------------------------------------------------- ../shared/data (optional)


def test_every_shared_auto_xrd_and_measured_file_loads(shared_data: Path) -> None:
    files = [
        f
        for folder in ("auto-xrd", "measured")
        for f in sorted((shared_data / folder).rglob("*"))
        if f.suffix.lower() in (".xy", ".xrdml")
    ]
    assert len(files) == 88 + 9 + 60
    for file in files:
        pattern = read_pattern(file)
        assert len(pattern) >= 2 and pattern.metadata["source"] == str(file)
    # the tables load too, and the upstream layout is accepted by the loaders
    assert len(load_space_group_set(shared_data / "auto-xrd" / "Datasets" / "Experimental")) == 88
    shared_expd = load_dimensionality_set(shared_data / "auto-xrd" / "Demo" / "exp_d.csv")
    assert sum(p.metadata["xy_name"] is not None for p in shared_expd) == 56


def test_repo_copy_is_identical_to_shared(shared_data: Path) -> None:
    upstream = shared_data / "auto-xrd" / "Datasets" / "Experimental"
    repo = repo_data_dir() / "auto-xrd" / "Experimental"
    for file in upstream.glob("*/*.xy"):
        assert (repo / file.relative_to(upstream)).read_bytes() == file.read_bytes(), file
