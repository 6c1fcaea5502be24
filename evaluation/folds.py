"""Cross-validation folds for the measured patterns: stratified, repeated, optionally grouped.

Two kinds of folds are used by :mod:`evaluation.protocols`:

* **random** stratified K-fold (the paper's protocol), repeated with different seeds;
* **grouped** stratified K-fold, where near-duplicate groups (:mod:`training.near_duplicates`)
  never straddle train and test.

Classes with fewer members than folds (P2_1/a has 1 measured pattern, Pc 2): scikit-learn's
stratified splitters still place every pattern in exactly one test fold per repeat; a fold that
tests such a pattern has no measured example of its class in training, and the simulated
patterns are what cover the class there. The warning scikit-learn emits about it is expected and
silenced here, because the situation is handled by design, not by accident.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold


@dataclass(frozen=True)
class Fold:
    """One train/test split of one repeat.

    Attributes
    ----------
    repeat : int
        Repeat index (0-based); each repeat shuffles with its own seed.
    fold : int
        Fold index within the repeat (0-based).
    seed : int
        Seed that shuffled this repeat.
    train, test : np.ndarray
        Sorted int64 indices into the evaluated set; disjoint, together all samples.
    """

    repeat: int
    fold: int
    seed: int
    train: np.ndarray
    test: np.ndarray


def stratified_folds(
    labels: np.ndarray,
    n_splits: int = 5,
    n_repeats: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> list[Fold]:
    """Repeated stratified K-fold, grouped when ``groups`` is given.

    Parameters
    ----------
    labels : np.ndarray
        Integer class of each sample, shape ``[N]``.
    n_splits : int
        Folds per repeat (>= 2).
    n_repeats : int
        Repeats; repeat ``r`` shuffles with seed ``seed + r``.
    seed : int
        Base seed.
    groups : np.ndarray, optional
        Group id of each sample; samples of one group are always on the same side.

    Returns
    -------
    list of Fold
        ``n_repeats * n_splits`` folds, repeat-major. Every sample is tested exactly once per
        repeat.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(f"groups {groups.shape} and labels {y.shape} differ in shape")
        n_groups = np.unique(groups).size
        if n_groups < n_splits:
            raise ValueError(f"{n_groups} groups cannot fill {n_splits} folds")
    elif y.size < n_splits:
        raise ValueError(f"{y.size} samples cannot fill {n_splits} folds")
    folds: list[Fold] = []
    placeholder = np.zeros((y.size, 1))
    for repeat in range(n_repeats):
        repeat_seed = seed + repeat
        if groups is None:
            splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=repeat_seed)
            splits = splitter.split(placeholder, y)
        else:
            splitter = StratifiedGroupKFold(
                n_splits=n_splits, shuffle=True, random_state=repeat_seed
            )
            splits = splitter.split(placeholder, y, groups)
        with warnings.catch_warnings():
            # "The least populated class in y has only 1 members": expected, see module doc
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            for index, (train, test) in enumerate(splits):
                folds.append(
                    Fold(repeat, index, repeat_seed, np.sort(train).astype(np.int64),
                         np.sort(test).astype(np.int64))
                )
    return folds
