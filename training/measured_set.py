"""The measured AUTO-XRD patterns as the evaluation sees them: gridded, preprocessed, grouped.

:func:`load_measured_set` turns the 88 space-group patterns or the 73 dimensionality patterns
(``patterns.load_space_group_set`` / ``load_dimensionality_set``) into arrays on
:data:`models.grid.GRID`, keeps the original :class:`patterns.Pattern` objects (the step-size and
partial-scan studies drop points from them and re-grid), and attaches the near-duplicate group of
every pattern (see :mod:`training.near_duplicates`), computed jointly over both sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.grid import to_grid
from models.preprocess import preprocess
from patterns import Pattern, load_dimensionality_set, load_space_group_set
from patterns.datasets import TASK_CLASSES, task_classes
from training.near_duplicates import correlation_on_common_range, near_duplicate_groups


@dataclass(frozen=True)
class MeasuredSet:
    """Measured patterns of one task on the model grid.

    Attributes
    ----------
    task : str
        "space_group" or "dimensionality".
    classes : tuple of str
        Class names; ``labels`` index into them.
    names : list of str
        ``metadata["name"]`` of each pattern (the .xy stem, or ``"exp_d:<i>"``).
    xy_names : list of str or None
        The .xy file stem each pattern is (itself for the space-group set; the matched file of
        ``derived_expd_to_xy_map.csv`` for the dimensionality set, else None).
    labels : np.ndarray
        int64 ``[N]``.
    groups : np.ndarray
        int64 ``[N]`` near-duplicate group ids, shared between the two tasks' sets.
    patterns : list of Pattern
        The measured patterns as read.
    values : np.ndarray
        float32 ``[N, 1376]`` raw intensity interpolated onto the grid (0 where unmeasured).
    masks : np.ndarray
        bool ``[N, 1376]`` measured masks.
    features : np.ndarray
        float32 ``[N, 2, 1376]`` preprocessed model input.
    """

    task: str
    classes: tuple[str, ...]
    names: list[str]
    xy_names: list[str | None]
    labels: np.ndarray
    groups: np.ndarray
    patterns: list[Pattern]
    values: np.ndarray
    masks: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def partners(self, index: int) -> list[str]:
        """Names of the other patterns in the near-duplicate group of pattern ``index``."""
        same = np.flatnonzero(self.groups == self.groups[index])
        return [self.names[i] for i in same if i != index]


def grid_patterns(patterns: Sequence[Pattern]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid and preprocess patterns.

    Returns
    -------
    values : np.ndarray
        float32 ``[N, 1376]`` raw intensity on the grid.
    masks : np.ndarray
        bool ``[N, 1376]``.
    features : np.ndarray
        float32 ``[N, 2, 1376]`` from :func:`models.preprocess.preprocess`.
    """
    if not patterns:
        raise ValueError("no patterns to grid")
    gridded = [to_grid(p.two_theta, p.intensity) for p in patterns]
    values = np.stack([v for v, _ in gridded]).astype(np.float32)
    masks = np.stack([m for _, m in gridded])
    return values, masks, preprocess(values, masks)


@dataclass(frozen=True)
class JointGrouping:
    """Near-duplicate groups over the space-group and dimensionality sets together.

    Attributes
    ----------
    space_group, dimensionality : np.ndarray
        Group id of each pattern of each set (same id space).
    correlation : np.ndarray
        ``[88 + 73, 88 + 73]`` correlation matrix on common ranges (space-group set first).
    n_links : int
        Number of exp_d -> .xy copy links added to the graph.
    """

    space_group: np.ndarray
    dimensionality: np.ndarray
    correlation: np.ndarray
    n_links: int


def joint_groups(
    space_group_patterns: Sequence[Pattern],
    dimensionality_patterns: Sequence[Pattern],
    space_group_features: np.ndarray,
    dimensionality_features: np.ndarray,
) -> JointGrouping:
    """Near-duplicate groups of both sets in one graph, linking each exp_d copy to its .xy file.

    Parameters
    ----------
    space_group_patterns, dimensionality_patterns : sequence of Pattern
        As loaded by the ``patterns`` loaders (names and ``xy_name`` metadata are used).
    space_group_features, dimensionality_features : np.ndarray
        Their preprocessed ``[N, 2, 1376]`` arrays.
    """
    features = np.concatenate([space_group_features, dimensionality_features])
    corr = correlation_on_common_range(features[:, 0], features[:, 1] > 0.5)
    offset = len(space_group_patterns)
    index_of = {p.metadata["name"]: i for i, p in enumerate(space_group_patterns)}
    links = []
    for j, pattern in enumerate(dimensionality_patterns):
        xy_name = pattern.metadata.get("xy_name")
        if xy_name is None:
            continue
        if xy_name not in index_of:
            raise ValueError(
                f"{pattern.metadata.get('name')}: matched .xy file {xy_name!r} is not in the "
                "space-group set"
            )
        links.append((index_of[xy_name], offset + j))
    groups = near_duplicate_groups(corr, links=links)
    return JointGrouping(groups[:offset], groups[offset:], corr, len(links))


@lru_cache(maxsize=1)
def _load_both() -> tuple[MeasuredSet, MeasuredSet]:
    sets = {"space_group": load_space_group_set(), "dimensionality": load_dimensionality_set()}
    gridded = {task: grid_patterns(p) for task, p in sets.items()}
    grouping = joint_groups(
        sets["space_group"], sets["dimensionality"],
        gridded["space_group"][2], gridded["dimensionality"][2],
    )
    result = []
    for task, groups in (("space_group", grouping.space_group),
                         ("dimensionality", grouping.dimensionality)):
        classes = TASK_CLASSES[task]
        patterns = sets[task]
        names = [p.metadata["name"] for p in patterns]
        if len(set(names)) != len(names):
            raise ValueError(f"{task}: pattern names are not unique")
        xy_names = names if task == "space_group" else [p.metadata.get("xy_name") for p in patterns]
        values, masks, features = gridded[task]
        labels = np.array([classes.index(p.metadata["label"]) for p in patterns], dtype=np.int64)
        result.append(MeasuredSet(task, classes, names, list(xy_names), labels, groups,
                                  patterns, values, masks, features))
    return result[0], result[1]


def load_measured_set(task: str) -> MeasuredSet:
    """The measured patterns of ``task`` from the repository copy of the AUTO-XRD data.

    Both sets are loaded, gridded and grouped together once per process (cached), because the
    groups of one set depend on the other.
    """
    task_classes(task)
    space_group, dimensionality = _load_both()
    return space_group if task == "space_group" else dimensionality
