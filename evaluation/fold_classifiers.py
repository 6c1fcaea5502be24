"""Grouped-fold classifiers for the closed-loop benchmark: each with the measured files it never saw.

The loop benchmark replays measured AUTO-XRD files on the simulated beamline and lets the agent
classify them as they are scanned. It is honest only if the classifier never trained on the
replayed file nor on a near-duplicate of it. :func:`grouped_fold_classifiers` trains one
:class:`models.classifier.Classifier` per grouped fold (simulated patterns + the measured
training fold, near-duplicate groups kept together, exp_d copies grouped with their .xy files)
and returns it with the names of the ``.xy`` files it may be tested on. Fitted models are cached
on disk (safetensors + JSON via :meth:`Classifier.save`), keyed by everything that shapes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from models.classifier import Classifier
from evaluation.protocols import (
    SimulatedSource,
    build_training_set,
    check_no_leak,
    simulated_source,
)
from evaluation.folds import stratified_folds
from training.measured_set import load_measured_set
from models.preprocess import PREPROCESSING_VERSION
from patterns.data_home import xrd_agent_home
from training.fit import TrainConfig, train_classifier

FOLD_CONFIG = TrainConfig()
"""Training settings of each fold classifier (the classifier's defaults)."""

N_SIMULATED_PER_CLASS = 100
"""Simulated patterns per class in each fold's training set."""

MANIFEST_FILE = "folds.json"


def default_cache_dir() -> Path:
    """``$XRD_AGENT_HOME/fold_models`` (see :mod:`patterns.data_home`)."""
    return xrd_agent_home() / "fold_models"


def unseen_xy_names(task: str, seed: int = 0, n_splits: int = 5) -> list[list[str]]:
    """Per grouped fold, the ``.xy`` file stems no training pattern of that fold shares a group with.

    Every one of the 88 ``.xy`` files is listed in exactly one fold. For the space-group task a
    fold's list is its test fold. For the dimensionality task (73 ``exp_d.csv`` patterns, 56 of
    them copies of ``.xy`` files) a file goes to the fold that tests its group; a file whose
    group holds no dimensionality pattern is unseen by every fold and is dealt round-robin.
    """
    measured = load_measured_set(task)
    xy = load_measured_set("space_group")
    folds = stratified_folds(measured.labels, n_splits, 1, seed, groups=measured.groups)
    lists: list[list[str]] = [[] for _ in folds]
    spare = 0
    for name, group in zip(xy.names, xy.groups):
        testing = [k for k, f in enumerate(folds) if group in set(measured.groups[f.test])]
        if testing:
            k = testing[0]
        else:
            k = spare % len(folds)
            spare += 1
        if group in set(measured.groups[folds[k].train]):  # cannot happen: groups never straddle
            raise RuntimeError(f"{name}: its group is in the training fold {k}")
        lists[k].append(name)
    return lists


def _cache_key(task: str, seed: int, n_splits: int, config: TrainConfig, n_simulated: int) -> str:
    blob = json.dumps({"task": task, "seed": seed, "n_splits": n_splits, "config": config.to_dict(),
                       "n_simulated_per_class": n_simulated, "preprocessing": PREPROCESSING_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def grouped_fold_classifiers(
    task: str = "space_group",
    seed: int = 0,
    cache_dir: Path | str | None = None,
    *,
    n_splits: int = 5,
    config: TrainConfig | None = None,
    n_simulated_per_class: int = N_SIMULATED_PER_CLASS,
    source: SimulatedSource | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[tuple[Classifier, list[str]]]:
    """Train (or load from cache) one classifier per grouped fold.

    Parameters
    ----------
    task : str
        "space_group" or "dimensionality".
    seed : int
        Seed of the folds, the simulated set and the training.
    cache_dir : Path, optional
        Where fitted models are kept (default :func:`default_cache_dir`); a sub-folder per
        configuration hash holds ``fold<k>/`` model directories and ``folds.json``.
    n_splits : int
        Number of grouped folds.
    config : TrainConfig, optional
        Training settings (default :data:`FOLD_CONFIG`); each fold trains with seed
        ``seed * 1000 + k``.
    n_simulated_per_class : int
        Size of the simulated training set.
    source : SimulatedSource, optional
        Simulated data (default :func:`training.simulate.simulate_training_set`).
    progress : callable, optional
        Receives one line per fold.

    Returns
    -------
    list of (Classifier, list of str)
        Per fold, the classifier and the ``.xy`` file stems (``patterns`` ``name`` metadata; the
        simulated beamline's sample is ``"auto-xrd/<stem>"``) that neither it nor any
        near-duplicate of them was trained on. The lists partition the 88 files.
    """
    config = config or FOLD_CONFIG
    measured = load_measured_set(task)
    folds = stratified_folds(measured.labels, n_splits, 1, seed, groups=measured.groups)
    names = unseen_xy_names(task, seed, n_splits)
    key = _cache_key(task, seed, n_splits, config, n_simulated_per_class)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"{task}-seed{seed}-{key}"
    manifest_path = folder / MANIFEST_FILE
    expected = {"key": key, "folds": [[measured.names[i] for i in f.test] for f in folds], "unseen_xy": names}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            manifest = None
        if manifest == expected:
            loaded = [(Classifier.load(folder / f"fold{k}", task=task), names[k]) for k in range(len(folds))]
            if progress:
                progress(f"loaded {len(loaded)} {task} fold classifiers from {folder}")
            return loaded
    source = source or simulated_source(n_simulated_per_class)
    simulated = source(task, seed)
    result = []
    for k, fold in enumerate(folds):
        training = build_training_set(task, simulated, measured, fold.train)
        check_no_leak(training, measured, fold.test, grouped=True)
        measured_rows = training.is_measured
        classifier = train_classifier(
            (training.values[measured_rows], training.masks[measured_rows]), training.labels[measured_rows],
            task=task, config=replace(config, seed=seed * 1000 + k),
            simulated=(training.values[~measured_rows], training.labels[~measured_rows]),
        )
        classifier.save(folder / f"fold{k}")
        result.append((classifier, names[k]))
        if progress:
            progress(f"{task} fold {k}: trained on {int(measured_rows.sum())} measured + "
                     f"{int((~measured_rows).sum())} simulated; {len(names[k])} unseen .xy files")
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(expected, indent=1) + "\n")
    return result


__all__ = ["FOLD_CONFIG", "default_cache_dir", "grouped_fold_classifiers", "unseen_xy_names"]
