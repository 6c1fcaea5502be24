"""xrd-agent patterns: the bottom layer (numpy only).

`Pattern` (validated 2theta/intensity arrays with metadata), file readers (two-column text,
PANalytical .xrdml) and loaders for the AUTO-XRD measured data sets kept in ``data/auto-xrd``.
"""

from patterns.datasets import (
    DIMENSIONALITIES,
    FOLDER_TO_SPACE_GROUP,
    SPACE_GROUP_TO_DIMENSIONALITY,
    SPACE_GROUPS,
    auto_xrd_dir,
    load_dimensionality_set,
    load_space_group_set,
    repo_data_dir,
)
from patterns.pattern import Pattern
from patterns.readers import read_pattern, read_xrdml, read_xy, write_xy

__all__ = [
    "DIMENSIONALITIES",
    "FOLDER_TO_SPACE_GROUP",
    "SPACE_GROUPS",
    "SPACE_GROUP_TO_DIMENSIONALITY",
    "Pattern",
    "auto_xrd_dir",
    "load_dimensionality_set",
    "load_space_group_set",
    "read_pattern",
    "read_xrdml",
    "read_xy",
    "repo_data_dir",
    "write_xy",
]
