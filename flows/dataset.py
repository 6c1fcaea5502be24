"""Training and evaluation data of a retrain: base simulated patterns + labelled scans, and the held-out set.

The held-out set is the measured AUTO-XRD set of the task (the 88 space-group or
73 dimensionality patterns), never trained on. A labelled run that replays a
measured pattern (sample "auto-xrd/<file stem>") would put that pattern into
training, so its whole near-duplicate group is taken out of the held-out set for
*both* challenger and champion: the two are always compared on the same patterns
and no evaluated pattern has a copy in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.grid import GRID_SIZE, to_grid
from models.measured_set import load_measured_set, task_classes
from models.preprocess import preprocess
from storage.scans import LabelledScan

#: Prefix of replayed measured samples in sim_devices' library.
REPLAY_PREFIX = "auto-xrd/"


@dataclass(frozen=True)
class GriddedScans:
    """Labelled runs on the model grid, raw (before preprocessing).

    Attributes
    ----------
    values : np.ndarray
        float32 ``[N, 1376]`` counts interpolated onto the grid, 0 where unmeasured.
    masks : np.ndarray
        bool ``[N, 1376]`` measured masks.
    labels : np.ndarray
        int64 ``[N]`` indices into ``classes``.
    groups : np.ndarray
        int64 ``[N]`` one id per sample: repeated scans of one sample are near-duplicates and
        must share a calibration hold-out fold.
    classes : tuple of str
    uids : list of str
    """

    values: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    classes: tuple[str, ...]
    uids: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def features(self) -> np.ndarray:
        """float32 ``[N, 2, 1376]`` preprocessed model input."""
        return preprocess(self.values, self.masks)


def grid_scans(scans: Sequence[LabelledScan], task: str) -> GriddedScans:
    """Grid labelled scans; a label outside the task's classes is a ValueError."""
    classes = task_classes(task)
    if not scans:
        return GriddedScans(
            np.zeros((0, GRID_SIZE), np.float32), np.zeros((0, GRID_SIZE), bool),
            np.zeros(0, np.int64), np.zeros(0, np.int64), classes, [],
        )
    unknown = sorted({s.label for s in scans} - set(classes))
    if unknown:
        raise ValueError(f"labelled runs carry classes {unknown} that the {task} model does not have")
    gridded = [to_grid(s.two_theta, s.intensity) for s in scans]
    values = np.stack([v for v, _ in gridded]).astype(np.float32)
    masks = np.stack([m for _, m in gridded])
    labels = np.array([classes.index(s.label) for s in scans], dtype=np.int64)
    sample_ids: dict[str, int] = {}
    groups = np.array(
        [sample_ids.setdefault(s.sample or f"uid:{s.uid}", len(sample_ids)) for s in scans], dtype=np.int64
    )
    return GriddedScans(values, masks, labels, groups, classes, [s.uid for s in scans])


@dataclass(frozen=True)
class HeldOut:
    """The evaluation set: preprocessed features and labels of measured patterns."""

    features: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    names: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def replayed_stems(scans: Sequence[LabelledScan]) -> set[str]:
    """File stems of measured patterns replayed by these runs."""
    return {s.sample[len(REPLAY_PREFIX):] for s in scans if s.sample and s.sample.startswith(REPLAY_PREFIX)}


def heldout_dataset(task: str, exclude_stems: set[str] | None = None) -> tuple[HeldOut, list[str]]:
    """The fixed held-out set of ``task``, minus the near-duplicate groups of replayed patterns.

    Returns
    -------
    dataset : HeldOut
        The measured patterns kept.
    excluded : list of str
        Names of the measured patterns taken out (sorted).
    """
    measured = load_measured_set(task)
    exclude_stems = exclude_stems or set()
    hit = [
        i
        for i in range(len(measured))
        if measured.names[i] in exclude_stems or (measured.xy_names[i] or "") in exclude_stems
    ]
    bad_groups = {int(measured.groups[i]) for i in hit}
    keep = np.array([int(g) not in bad_groups for g in measured.groups], dtype=bool)
    if not keep.any():
        raise ValueError("every held-out pattern has a labelled replay in training: no fair evaluation is left")
    excluded = sorted(n for n, k in zip(measured.names, keep) if not k)
    dataset = HeldOut(
        measured.features[keep].astype(np.float32),
        measured.labels[keep].astype(np.int64),
        measured.classes,
        [n for n, k in zip(measured.names, keep) if k],
    )
    return dataset, excluded
