"""Loaders for the AUTO-XRD measured data sets and the repository data paths.

Data: PV-Lab/AUTO-XRD (Apache-2.0), Oviedo F., Ren Z., et al. (2019) "Fast and interpretable
classification of small X-ray diffraction datasets using data augmentation and deep neural
networks", npj Comput. Mater. 5, 60, doi:10.1038/s41524-019-0196-x. The repository copy lives
in ``data/auto-xrd/`` (see its README.md).

Two sets:

* the **space-group set**: 88 measured thin-film patterns, one ``.xy`` file each, labelled by
  their folder (an ASCII-mangled space-group symbol, see `FOLDER_TO_SPACE_GROUP`);
* the **dimensionality set**: ``exp_d.csv``, 73 measured patterns stored as 146 ragged
  columns (2theta, intensity pairs), row 0 the label (0D/2D/3D), shorter columns padded with
  empty cells. ``derived_expd_to_xy_map.csv`` (derived for this project by exact array match)
  links 56 of them to a space-group file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from patterns.pattern import Pattern
from patterns.readers import read_xy

#: The seven space groups of the AUTO-XRD set, in the class order of its encoding.csv.
SPACE_GROUPS: tuple[str, ...] = ("Fm-3m", "I4/mcm", "P2_1/a", "P-3m1", "P6_3/mmc", "Pc", "Pm-3m")
#: Structural dimensionality classes of the exp_d.csv set.
DIMENSIONALITIES: tuple[str, ...] = ("0D", "2D", "3D")
#: Dimensionality of the metal-halide framework for each space group (consistent with every
#: matched pair of the two sets: 56 of 56).
SPACE_GROUP_TO_DIMENSIONALITY: dict[str, str] = {
    "Pm-3m": "3D",
    "I4/mcm": "3D",
    "Fm-3m": "3D",
    "P-3m1": "2D",
    "Pc": "2D",
    "P2_1/a": "2D",
    "P6_3/mmc": "0D",
}
#: AUTO-XRD folder name (file-system safe) -> space group.
TASK_CLASSES: dict[str, tuple[str, ...]] = {"space_group": SPACE_GROUPS, "dimensionality": DIMENSIONALITIES}
"""The one table of the classification tasks: the classes of each, in the order of the integer labels.

Every model of a task has exactly these classes (``models.classifier.Classifier.load`` refuses
others), so label validation, training and evaluation all read them here.
"""


def task_classes(task: str) -> tuple[str, ...]:
    """The classes of ``task`` ("space_group" or "dimensionality").

    Raises
    ------
    ValueError
        If ``task`` is not a known task.
    """
    if task not in TASK_CLASSES:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_CLASSES)}")
    return TASK_CLASSES[task]


MEASURED_SAMPLE_PREFIX = "auto-xrd/"
"""Prefix of the sample name of a replayed measured pattern: ``"auto-xrd/<file stem>"``.

The simulated beamline's sample library names its replays so, runs record the name in their start
document, and the retrain flow and the benchmarks read the file stem back from it.
"""


FOLDER_TO_SPACE_GROUP: dict[str, str] = {
    "Fm-3m": "Fm-3m",
    "I4Imcm": "I4/mcm",
    "P21a": "P2_1/a",
    "P3m1": "P-3m1",
    "P61mmc": "P6_3/mmc",
    "Pc": "Pc",
    "pm-3m": "Pm-3m",
}
#: Class name as written in AUTO-XRD's encoding.csv -> space group.
ENCODING_NAME_TO_SPACE_GROUP: dict[str, str] = {
    "Fm-3m": "Fm-3m",
    "I41mcm": "I4/mcm",
    "P21a": "P2_1/a",
    "P3m1": "P-3m1",
    "P61mmc": "P6_3/mmc",
    "Pc": "Pc",
    "Pm-3m": "Pm-3m",
}


def repo_data_dir() -> Path:
    """The repository's ``data/`` directory (holds ``auto-xrd/`` and ``cifs/``).

    Returns
    -------
    pathlib.Path
        Absolute path, e.g. ``/home/user/xrd-agent/data`` for an editable install of a clone there.

    Raises
    ------
    FileNotFoundError
        If the directory is missing (a non-editable install without the data).
    """
    data = Path(__file__).resolve().parent.parent / "data"
    if not data.is_dir():
        raise FileNotFoundError(
            f"{data}: the repository data directory is missing; run from a clone of xrd-agent "
            f"installed with `make install` (editable)"
        )
    return data


def auto_xrd_dir() -> Path:
    """The repository copy of the AUTO-XRD data, ``data/auto-xrd``."""
    return repo_data_dir() / "auto-xrd"


def load_space_group_set(root: Path | None = None) -> list[Pattern]:
    """Load the 88 measured AUTO-XRD patterns labelled by space group.

    Parameters
    ----------
    root : pathlib.Path, optional
        Folder holding one sub-folder per space group (``Fm-3m``, ``I4Imcm``, ...). Default:
        the repository copy ``data/auto-xrd/Experimental``; the upstream layout
        ``.../auto-xrd/Datasets/Experimental`` works too.

    Returns
    -------
    list of Pattern
        In folder order (case-insensitive, which is the row order of label_exp.csv) then file
        name order. Metadata: ``name`` (file stem), ``source`` (path), ``label`` (space group),
        ``dimensionality``, ``folder``.

    Raises
    ------
    ValueError
        A sub-folder that is not a known space-group folder, or a malformed file.
    FileNotFoundError
        If `root` does not exist.
    """
    root = Path(root) if root is not None else auto_xrd_dir() / "Experimental"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (expected AUTO-XRD space-group folders)")
    patterns: list[Pattern] = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name.lower()):
        if folder.name not in FOLDER_TO_SPACE_GROUP:
            known = ", ".join(FOLDER_TO_SPACE_GROUP)
            raise ValueError(f"{folder}: unknown space-group folder {folder.name!r} (known: {known})")
        space_group = FOLDER_TO_SPACE_GROUP[folder.name]
        for file in sorted(folder.glob("*.xy")):
            pattern = read_xy(file)
            patterns.append(
                pattern.with_metadata(
                    label=space_group,
                    dimensionality=SPACE_GROUP_TO_DIMENSIONALITY[space_group],
                    folder=folder.name,
                )
            )
    return patterns


def load_dimensionality_set(path: Path | None = None) -> list[Pattern]:
    """Load the 73 measured patterns of AUTO-XRD's ``exp_d.csv`` labelled 0D/2D/3D.

    Parameters
    ----------
    path : pathlib.Path, optional
        The ``exp_d.csv`` file. Default: the repository copy ``data/auto-xrd/exp_d.csv``. The
        map ``derived_expd_to_xy_map.csv`` is looked up beside it (in the repository layout) or
        two levels up (``auto-xrd/Demo/exp_d.csv`` upstream layout); when absent,
        ``space_group`` and ``xy_name`` are None.

    Returns
    -------
    list of Pattern
        One per column pair, in column order. Metadata: ``name`` (``"exp_d:<i>"`` with ``i`` the
        pattern index 0..72, columns ``2i`` and ``2i+1``), ``source``, ``label``
        (dimensionality), ``columns`` ((2i, 2i+1)), ``space_group`` and ``xy_name`` (the matched
        .xy file stem, as ``name`` in `load_space_group_set`) or None.

    Raises
    ------
    ValueError
        Odd column count, an unknown label, a half-empty row inside a pattern, data after the
        padding, or bad values; the message names the file and the line.
    """
    path = Path(path) if path is not None else auto_xrd_dir() / "exp_d.csv"
    with path.open(newline="", encoding="utf-8-sig") as handle:
        table = list(csv.reader(handle))
    if not table:
        raise ValueError(f"{path}: file is empty")
    labels = [cell.strip() for cell in table[0]]
    if len(labels) % 2:
        raise ValueError(f"{path}: line 1: {len(labels)} columns; expected (2theta, intensity) pairs")
    matches = _read_expd_map(_find_expd_map(path))
    patterns: list[Pattern] = []
    for index in range(len(labels) // 2):
        label = labels[2 * index]
        if label not in DIMENSIONALITIES or labels[2 * index + 1] not in ("", label):
            raise ValueError(
                f"{path}: line 1: column {2 * index}: label {label!r}; expected one of {DIMENSIONALITIES}"
            )
        two_theta, intensity = _read_column_pair(path, table, 2 * index)
        space_group, xy_name = matches.get(index, (None, None))
        metadata: dict[str, Any] = {
            "name": f"exp_d:{index}",
            "source": f"{path}#columns={2 * index},{2 * index + 1}",
            "label": label,
            "columns": (2 * index, 2 * index + 1),
            "space_group": space_group,
            "xy_name": xy_name,
        }
        patterns.append(Pattern(two_theta, intensity, metadata))
    return patterns


def _read_column_pair(path: Path, table: list[list[str]], column: int) -> tuple[np.ndarray, np.ndarray]:
    two_theta: list[float] = []
    intensity: list[float] = []
    padding_from: int | None = None  # line number where this pattern's padding begins
    for row_index in range(1, len(table)):
        line = row_index + 1
        row = table[row_index]
        cells = [row[c].strip() if c < len(row) else "" for c in (column, column + 1)]
        if cells == ["", ""]:
            padding_from = padding_from or line
            continue
        if "" in cells:
            raise ValueError(f"{path}: line {line}: column {column}: half-empty (2theta, intensity) pair")
        if padding_from is not None:
            raise ValueError(
                f"{path}: line {line}: column {column}: data after empty padding from line {padding_from}"
            )
        try:
            angle, value = float(cells[0]), float(cells[1])
        except ValueError:
            raise ValueError(f"{path}: line {line}: column {column}: not a number: {cells}") from None
        if not (np.isfinite(angle) and np.isfinite(value)) or value < 0:
            raise ValueError(f"{path}: line {line}: column {column}: bad value(s) {cells}")
        if two_theta and angle <= two_theta[-1]:
            raise ValueError(
                f"{path}: line {line}: column {column}: two_theta {angle} does not increase after "
                f"{two_theta[-1]}"
            )
        two_theta.append(angle)
        intensity.append(value)
    return np.asarray(two_theta), np.asarray(intensity)


def _find_expd_map(expd_path: Path) -> Path | None:
    for candidate in (expd_path.parent, expd_path.parent.parent):
        mapping = candidate / "derived_expd_to_xy_map.csv"
        if mapping.is_file():
            return mapping
    return None


def _read_expd_map(path: Path | None) -> dict[int, tuple[str, str]]:
    """Pattern index -> (space group, .xy file stem) for the matched rows of the derived map."""
    if path is None:
        return {}
    matches: dict[int, tuple[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            folder = (row.get("space_group_folder") or "").strip()
            xy_file = (row.get("matched_xy_file") or "").strip()
            if not folder and not xy_file:
                continue
            if folder not in FOLDER_TO_SPACE_GROUP or not xy_file:
                raise ValueError(f"{path}: line {line}: bad match row {row}")
            matches[int(row["exp_d_pattern_index"])] = (
                FOLDER_TO_SPACE_GROUP[folder],
                Path(xy_file).stem,
            )
    return matches
