"""The samples the loop benchmark scans: two sets, and the file a user brings.

* ``measured``: every measured AUTO-XRD space-group pattern, replayed on the simulated beamline
  (``sim_devices`` sample ``"auto-xrd/<file stem>"``), each classified by a grouped-fold model that
  never saw it nor its near-duplicates (`evaluation.fold_classifiers`).
* ``unseen_materials``: the unseen-materials structures (`evaluation.unseen_materials`), each
  simulated as a moderately textured film along its class's habit (the evaluation sets' renderer,
  `evaluation.beamline_films`), counted at the beamline's 1 s dwell, classified by the shipped model.
* ``sample``: one user file (a measured pattern or a CIF, `sim_devices.samples.sample_from_file`)
  with the shipped model; its true class is known only for a CIF inside the seven classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patterns.datasets import MEASURED_SAMPLE_PREFIX

TASK = "space_group"
UNSEEN_TEXTURE = "moderate"
"""Texture of the unseen-materials films (`evaluation.beamline_films.TEXTURE_MARCH_R`)."""
QUICK_PER_FOLD = 2
QUICK_UNSEEN = 6


@dataclass(frozen=True)
class Job:
    """One sample to scan with every strategy.

    Attributes
    ----------
    sample : str or sim_devices.Sample
        What the beamline measures (a library name, a path, or a built sample).
    name : str
        Its name in the results.
    label : str or None
        Its true class (None when unknown: a user's measured file).
    noise_seed : int
        Seed of the counting noise (the same for every strategy).
    classifier : Classifier
        The model that classifies it (and steers the agent).
    fold : int
        Grouped fold of the model (-1: the shipped model).
    """

    sample: Any
    name: str
    label: str | None
    noise_seed: int
    classifier: Any
    fold: int


def held_out_folds(seed: int, cache_dir: Path) -> list[tuple[Any, list[str], int]]:
    """(classifier, held-out pattern names, fold index) for every grouped fold.

    The classifier of a fold never saw its held-out patterns nor their near-duplicates; see
    `evaluation.fold_classifiers.grouped_fold_classifiers`.
    """
    from evaluation.fold_classifiers import grouped_fold_classifiers

    folds = []
    for index, fold in enumerate(grouped_fold_classifiers(TASK, seed=seed, cache_dir=cache_dir)):
        classifier, names = _unpack_fold(fold)
        folds.append((classifier, sorted(names), index))
    return folds


def _unpack_fold(fold: Any) -> tuple[Any, list[str]]:
    """Accept a (classifier, names) pair or an object with ``classifier`` and ``test_names``/``held_out``."""
    if isinstance(fold, tuple) and len(fold) == 2:
        return fold[0], list(fold[1])
    classifier = getattr(fold, "classifier")
    for attribute in ("held_out", "test_names", "held_out_names", "names"):
        if hasattr(fold, attribute):
            return classifier, list(getattr(fold, attribute))
    raise TypeError(f"cannot read the held-out names of fold {fold!r}")


def measured_jobs(folds: list[tuple[Any, list[str], int]], seed: int, quick: bool,
                  max_samples: int | None = None) -> list[Job]:
    """The held-out measured patterns, each with its fold's model (quick: two per fold).

    Raises
    ------
    ValueError
        If no held-out pattern is replayable.
    """
    from sim_devices import list_samples, sample_library

    available, labels = set(list_samples()), sample_library()
    jobs: list[Job] = []
    for classifier, names, fold in folds:
        for name in names[:QUICK_PER_FOLD] if quick else names:
            sample = f"{MEASURED_SAMPLE_PREFIX}{name}"
            if sample in available:
                jobs.append(Job(sample, sample, labels[sample], seed + len(jobs), classifier, fold))
    jobs = jobs[:max_samples] if max_samples is not None else jobs
    if not jobs:
        raise ValueError("no held-out samples to benchmark")
    return jobs


def unseen_jobs(classifier: Any, seed: int, quick: bool, max_samples: int | None = None) -> list[Job]:
    """The unseen-materials films, one per structure, with `classifier` (the shipped model)."""
    from crystals.prototypes import FILM_TEXTURE
    from evaluation.beamline_films import TEXTURE_MARCH_R, film_sample
    from evaluation.unseen_materials import build_structure, task_entries

    entries = task_entries(TASK)
    if quick:  # one structure of each class first, so a quick run sees several classes
        by_class: dict[str, Any] = {}
        for entry in entries:
            by_class.setdefault(entry.space_group, entry)
        entries = list(by_class.values())[:QUICK_UNSEEN]
    entries = entries[:max_samples] if max_samples is not None else entries
    jobs = []
    for index, entry in enumerate(entries):
        sample = film_sample(build_structure(entry.name), f"unseen:{entry.name}", TEXTURE_MARCH_R[UNSEEN_TEXTURE],
                             FILM_TEXTURE[entry.space_group][0])
        jobs.append(Job(sample, sample.name, entry.space_group, seed + 10_000 + index, classifier, -1))
    return jobs


def sample_jobs(path: str, classifier: Any, seed: int) -> list[Job]:
    """One job for a user's file (a measured pattern or a CIF).

    Raises
    ------
    FileNotFoundError, ValueError
        A missing or unreadable file (`sim_devices.samples.sample_from_file`).
    """
    from sim_devices.samples import sample_from_file

    sample = sample_from_file(path)
    return [Job(sample, sample.name, sample.label, seed, classifier, -1)]


def file_step(sample: Any) -> float | None:
    """The median step of a replayed measured file inside the model's 5-60 degree range, degrees
    (rounded to 0.001); None for a simulated sample (a CIF) or fewer than two points there.

    Parameters
    ----------
    sample : sim_devices.Sample
        As `sample_jobs` builds it (a measured file keeps its angles as ``grid_deg``).
    """
    import numpy as np

    from models.grid import GRID_START, GRID_STOP

    if sample.kind != "measured":
        return None
    x = sample.grid_deg[(sample.grid_deg >= GRID_START) & (sample.grid_deg <= GRID_STOP)]
    steps = np.diff(x)
    return round(float(np.median(steps)), 3) if steps.size else None
