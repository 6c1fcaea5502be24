"""Training and evaluation data of a retrain: the base data + labelled scans, and the held-out set.

The measured AUTO-XRD patterns are split once, by near-duplicate group, into a fixed
*held-out* part (about a third of the groups, chosen by a fixed seed over the joint
group ids of both tasks, so a pattern and its exp_d copy fall on the same side) and
a *training* part. The base training data of a challenger are simulated patterns
plus the measured training part; the gate compares challenger and champion on the
held-out part only.

A labelled run that replays a measured pattern (sample "auto-xrd/<file stem>")
would put that pattern into training, so its whole near-duplicate group is taken
out of the held-out set for *both* models: they are always compared on the same
patterns and no evaluated pattern has a copy in the challenger's training data.
A champion trained on measured patterns without this split (its ``model.json``
lacks the same ``heldout_split``) has seen held-out patterns: the flow says so in
its artifacts, and the gate then errs on the side of keeping the champion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.gate_split import GATE_SPLIT_FRACTION, GATE_SPLIT_SEED, gate_heldout_names
from models.grid import GRID_SIZE, to_grid
from patterns.datasets import MEASURED_SAMPLE_PREFIX, task_classes
from training.measured_set import load_measured_set
from models.preprocess import preprocess
from storage.scans import LabelledScan

#: Fraction of the measured near-duplicate groups held out, and the seed that picked them
#: (the split itself is :data:`models.gate_split.GATE_HELDOUT_NAMES`).
HELDOUT_GROUP_FRACTION = GATE_SPLIT_FRACTION
HELDOUT_SEED = GATE_SPLIT_SEED


def heldout_groups() -> frozenset[int]:
    """Joint near-duplicate group ids of the held-out patterns of :mod:`models.gate_split`."""
    held = set()
    for task in ("space_group", "dimensionality"):
        measured = load_measured_set(task)
        names = gate_heldout_names(task)
        held.update(int(g) for name, g in zip(measured.names, measured.groups) if name in names)
    return frozenset(held)


def heldout_split_id() -> dict[str, object]:
    """What identifies the split, recorded in every model the flow trains (``heldout_split``)."""
    return {"seed": HELDOUT_SEED, "fraction": round(HELDOUT_GROUP_FRACTION, 6), "groups": sorted(heldout_groups())}


def measured_training_part(task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw gridded values, masks, labels and group ids of the measured patterns outside the held-out part."""
    measured = load_measured_set(task)
    held = heldout_groups()
    keep = np.array([int(g) not in held for g in measured.groups], dtype=bool)
    return (measured.values[keep].astype(np.float32), measured.masks[keep], measured.labels[keep].astype(np.int64),
            measured.groups[keep].astype(np.int64))


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
    prefix = MEASURED_SAMPLE_PREFIX
    return {s.sample[len(prefix):] for s in scans if s.sample and s.sample.startswith(prefix)}


def heldout_dataset(task: str, exclude_stems: set[str] | None = None) -> tuple[HeldOut, list[str]]:
    """The fixed held-out part of ``task``'s measured patterns, minus the groups of replayed patterns.

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
    held = heldout_groups()
    keep = np.array([int(g) in held and int(g) not in bad_groups for g in measured.groups], dtype=bool)
    if not keep.any():
        raise ValueError("every held-out pattern has a labelled replay in training: no fair evaluation is left")
    excluded = sorted(n for n, g, k in zip(measured.names, measured.groups, keep) if int(g) in held and not k)
    dataset = HeldOut(
        measured.features[keep].astype(np.float32),
        measured.labels[keep].astype(np.int64),
        measured.classes,
        [n for n, k in zip(measured.names, keep) if k],
    )
    return dataset, excluded
