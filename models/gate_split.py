"""The retrain gate's held-out part of the measured patterns: one fixed list, recorded in every model.

The gate (:mod:`flows.gate`) compares a challenger with the champion on measured patterns neither
trained on, so no model that may become champion -- the shipped defaults included -- trains on
them. The part was drawn once: a third of the joint near-duplicate groups of both measured sets
(space-group ``.xy`` files and ``exp_d.csv`` columns, grouped together so a pattern and its copy
fall on the same side), chosen by ``numpy.random.default_rng(2019).permutation`` over the group ids
of :func:`training.measured_set.load_measured_set`. The names are listed here, not recomputed,
because the runtime package may not import training; ``tests/test_models_gate_split.py`` recomputes
them and fails if grouping code and list drift apart.
"""

from __future__ import annotations

GATE_SPLIT_SEED: int = 2019
"""Seed of the permutation that drew the held-out groups."""
GATE_SPLIT_FRACTION: float = 1 / 3
"""Share of the joint near-duplicate groups held out."""

GATE_HELDOUT_NAMES: dict[str, frozenset[str]] = {
    "space_group": frozenset({
        "MASnI3_10centCa_2-Theta_Omega", "MASnI3_10centCa_GIXD_2-Theta", "MASnI3_3min_2-Theta_Omega",
        "Cs3Bi2Br9_2-Theta_Omega", "Cs3Bi2Br9_a200_Rat21_2-Theta_Omega", "CsBiBr_a200_Rat32_2-Theta_Omega",
        "CsSbBr_a200_Rat21_2-Theta_Omega", "CsSbBr_a200_Rat32_2-Theta_Omega", "K3Bi2I9_2-Theta_Omega",
        "Rb3Sb2Br9_2-Theta_Omega", "RbSbBr_18_p75_a150_2-Theta_Omega", "Cs3Bi2I9_2-Theta_Omega",
        "Rb3Bi2Br9_2-Theta_Omega", "0.4M DT perovskite", "0.65M DT perovskite 14 deg peak",
        "5% Rb (Dark)_2-Theta_Omega", "FAI_1_MABr_2_5Cs5Rb_2-Theta_Omega", "FAI_1_MABr_3_5Cs5Rb_2-Theta_Omega",
        "FAPbI31_MAPbBr9_2-Theta", "FAPbI33_MAPbBr7_2-Theta", "FAPbI34_MAPbBr6_2-Theta",
        "FAPbI35_MAPbBr5_2-Theta", "FAPbI3_2-Theta_Omega", "MAPbBr3_2-Theta_Omega",
    }),
    "dimensionality": frozenset(
        f"exp_d:{i}" for i in (1, 9, 10, 11, 15, 16, 18, 19, 20, 21, 23, 25, 26, 32, 37, 38, 42, 49, 51, 52, 60, 62,
                               63, 64, 69, 72)
    ),
}
"""Per task, the names (``metadata["name"]`` of :mod:`patterns.datasets`) of the held-out patterns."""


def gate_heldout_names(task: str) -> frozenset[str]:
    """Names of the measured patterns of ``task`` that only the gate may see.

    Raises
    ------
    ValueError
        For an unknown task.
    """
    if task not in GATE_HELDOUT_NAMES:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(GATE_HELDOUT_NAMES)}")
    return GATE_HELDOUT_NAMES[task]


def split_record() -> dict[str, object]:
    """What identifies the split in a model's metadata (``gate_split``)."""
    return {"seed": GATE_SPLIT_SEED, "fraction": round(GATE_SPLIT_FRACTION, 6),
            "heldout": {task: sorted(names) for task, names in GATE_HELDOUT_NAMES.items()}}
