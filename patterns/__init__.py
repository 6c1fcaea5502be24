"""xrd-agent patterns: the bottom layer (numpy only).

`Pattern` (validated 2theta/intensity arrays with metadata), file readers (column text, .xye,
PANalytical .xrdml, Fit2D .chi, Rigaku .ras, Bruker .uxd) that bring every file to the model's
Cu K-alpha1 2theta axis (`patterns.radiation`), and loaders for the AUTO-XRD measured data sets
kept in ``data/auto-xrd``.
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
from patterns.radiation import ANODE_WAVELENGTHS_A, MODEL_WAVELENGTH_A
from patterns.readers import SUFFIXES, read_pattern, read_xrdml, read_xy, write_xy

__all__ = [
    "ANODE_WAVELENGTHS_A",
    "MODEL_WAVELENGTH_A",
    "SUFFIXES",
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
