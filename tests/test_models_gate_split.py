"""The gate's held-out list in models/ equals the split drawn from the near-duplicate groups."""

import numpy as np
import pytest

from models.gate_split import GATE_SPLIT_FRACTION, GATE_SPLIT_SEED, gate_heldout_names, split_record
from training.measured_set import load_measured_set


def test_listed_names_are_the_drawn_groups() -> None:
    sets = {task: load_measured_set(task) for task in ("space_group", "dimensionality")}
    groups = np.union1d(sets["space_group"].groups, sets["dimensionality"].groups)
    chosen = set(np.random.default_rng(GATE_SPLIT_SEED).permutation(groups)[: int(round(len(groups) * GATE_SPLIT_FRACTION))])
    for task, measured in sets.items():
        drawn = {name for name, g in zip(measured.names, measured.groups) if g in chosen}
        assert drawn == set(gate_heldout_names(task)), task
        # whole groups: no held-out pattern shares a group with a training pattern
        held_groups = {g for name, g in zip(measured.names, measured.groups) if name in drawn}
        assert not {g for name, g in zip(measured.names, measured.groups) if name not in drawn} & held_groups


def test_record_and_unknown_task() -> None:
    record = split_record()
    assert record["seed"] == GATE_SPLIT_SEED and len(record["heldout"]["space_group"]) == 24
    with pytest.raises(ValueError, match="unknown task"):
        gate_heldout_names("crystal_system")
