"""What the retrain gate scores: only patterns that neither the champion nor the challenger trained on.

Three parts, the same patterns for both models (the paired rule is :mod:`flows.gate`):

1. **The gate's held-out measured patterns** (:func:`flows.dataset.heldout_dataset`: 24 space-group
   / 26 dimensionality AUTO-XRD patterns, a fixed third of the near-duplicate groups). The shipped
   models and every challenger train without them (:mod:`models.gate_split`).
2. **The unseen-materials films** (:func:`load_unseen_films`: 46 literature structures absent from
   every training source, each measured by the simulated beamline under 3 textures x 2 count
   levels; 276 / 264 patterns), shipped as ``data/unseen-materials/films-<task>.npz``.
3. **The new scans in grouped cross-validation folds** (:func:`gate_scan_rows`,
   :func:`held_out_fold_predictions`): the labelled runs the champion never trained on (labelled
   after its cut-off). The challenger answers each from the ensemble member that held out the
   scan's fold; folds are dealt per sample, so that member never saw a scan of the same sample.

Why not cross-validation folds of *all* measured data, as for a recipe's accuracy: the champion
is a fixed model trained on the measured training part, so its score there is in-sample. Scoring
it fairly on those patterns would mean retraining its recipe once per fold (about 6 CPU-minutes
per fold model for the shipped recipe), far beyond the nightly budget (5,000 scans in 180 s on 2
cores). The measured training part therefore only trains; what both models never saw scores.

The challenger's fold member is one member without the ensemble (and the flow's challengers have
no memory), so its new-scan score is a slightly pessimistic estimate of the assembled challenger:
the rule errs towards keeping the champion. A new scan of a sample the champion trained on
earlier (labelled before its cut-off) errs the same way.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from flows.dataset import HeldOut, heldout_groups
from models.grid import GRID_SIZE
from models.preprocess import preprocess
from patterns.datasets import MEASURED_SAMPLE_PREFIX, repo_data_dir, task_classes
from storage.scans import LabelledScan
from training.measured_set import load_measured_set

#: The arrays a films file must hold.
FILM_KEYS = ("counts", "labels", "names", "structures", "classes", "task")


def unseen_films_path(task: str) -> Any:
    """``<repo>/data/unseen-materials/films-<task>.npz`` (written by ``python -m bench.gate_films``)."""
    return repo_data_dir() / "unseen-materials" / f"films-{task}.npz"


@functools.cache
def _read_films(task: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Features [N, 2, 1376], labels [N], names and structures of the films file, checked."""
    classes = task_classes(task)
    path = unseen_films_path(task)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the unseen-materials films of {task} are missing; "
                                "write them with `python -m bench.gate_films`")
    try:
        with np.load(path, allow_pickle=False) as stored:  # never unpickle: object arrays are refused
            missing = [k for k in FILM_KEYS if k not in stored.files]
            if missing:
                raise ValueError(f"lacks arrays {missing}")
            counts, labels = stored["counts"], stored["labels"]
            names, structures = [str(n) for n in stored["names"]], [str(s) for s in stored["structures"]]
            stored_task, stored_classes = str(stored["task"]), tuple(str(c) for c in stored["classes"])
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a films file of plain arrays: {exc}") from exc
    if stored_task != task or stored_classes != classes:
        raise ValueError(f"{path}: films of task {stored_task!r} with classes {stored_classes}, "
                         f"not {task!r} with {classes}")
    n = labels.shape[0]
    if (counts.shape != (n, GRID_SIZE) or labels.ndim != 1 or len(names) != n or len(structures) != n
            or n == 0 or labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"{path}: inconsistent arrays (counts {counts.shape}, labels {labels.shape}, "
                         f"{len(names)} names, {len(structures)} structures, {len(classes)} classes)")
    features = preprocess(counts.astype(np.float32), np.ones(counts.shape, dtype=bool)).astype(np.float32)
    features.setflags(write=False)
    return features, labels.astype(np.int64), names, structures


def load_unseen_films(task: str, exclude_structures: Sequence[str] = ()) -> HeldOut:
    """The unseen-materials films of ``task``, preprocessed, less the structures named.

    Parameters
    ----------
    task : {"space_group", "dimensionality"}
    exclude_structures : sequence of str
        Structures to leave out: a labelled run whose sample is one of them put it into the
        challenger's training data.

    Returns
    -------
    HeldOut
        ``features`` float32 [N, 2, 1376] (read-only), ``labels`` int64 [N], ``names``
        ``structure|texture|count level``.

    Raises
    ------
    FileNotFoundError
        The films file is missing (the message gives the command that writes it).
    ValueError
        Unknown task, or a films file of another task, other classes or inconsistent arrays.
    """
    features, labels, names, structures = _read_films(task)
    keep = np.array([s not in set(exclude_structures) for s in structures], dtype=bool)
    return HeldOut(features[keep], labels[keep], task_classes(task), [n for n, k in zip(names, keep) if k])


def _trained_replay_stems(task: str) -> set[str]:
    """File stems of the measured patterns outside the gate's held-out part: every model trains on them."""
    measured = load_measured_set(task)
    held = heldout_groups()
    stems: set[str] = set()
    for name, xy_name, group in zip(measured.names, measured.xy_names, measured.groups):
        if int(group) not in held:
            stems.update(s for s in (name, xy_name) if s)
    return stems


def gate_scan_rows(scans: Sequence[LabelledScan], champion_cutoff: float, task: str) -> tuple[np.ndarray, int]:
    """Which labelled scans the gate scores: those the champion never trained on.

    Parameters
    ----------
    scans : sequence of LabelledScan
        Every labelled scan, in the order of the training data's first rows.
    champion_cutoff : float
        The champion's label-time cut-off (Unix seconds): scans labelled later are new to it.
    task : str
        The model's task.

    Returns
    -------
    rows : np.ndarray
        int64 indices into ``scans``, ascending.
    n_replays : int
        New scans left out because they replay a measured pattern both models trained on
        (sample ``auto-xrd/<stem>`` of the measured training part).
    """
    trained = _trained_replay_stems(task)
    rows, n_replays = [], 0
    for i, scan in enumerate(scans):
        if scan.label_time <= champion_cutoff:
            continue
        sample = scan.sample or ""
        if sample.startswith(MEASURED_SAMPLE_PREFIX) and sample[len(MEASURED_SAMPLE_PREFIX):] in trained:
            n_replays += 1
            continue
        rows.append(i)
    return np.asarray(rows, dtype=np.int64), n_replays


def held_out_fold_predictions(results: Sequence[Any], rows: np.ndarray) -> np.ndarray:
    """The class each training row got from the member that held it out (grouped cross-validation).

    Parameters
    ----------
    results : sequence of training.fit.MemberResult
        The challenger's members: ``heldout_rows`` int64 [M_k] and ``heldout_logits`` [M_k, K].
    rows : np.ndarray
        int64 [R] rows of the training data.

    Returns
    -------
    np.ndarray
        int64 [R] predicted class index, -1 where no member held the row out (one member).
    """
    predicted = np.full(len(rows), -1, dtype=np.int64)
    position = {int(r): i for i, r in enumerate(rows)}
    for result in results:
        for row, logits in zip(result.heldout_rows, result.heldout_logits):
            i = position.get(int(row))
            if i is not None:
                predicted[i] = int(np.argmax(logits))
    return predicted


#: The gate's parts, in the order they are pooled: held-out measured, unseen materials, new scans.
PARTS = ("heldout", "unseen", "new")


def evaluate_parts(challenger: Any, champion: Any, heldout: HeldOut, unseen: HeldOut,
                   new_scans: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Both models on the three parts: ``{"<challenger|champion>_<heldout|unseen|new>": Evaluation}``.

    Parameters
    ----------
    challenger, champion : Classifier
        ``predict_proba(features [N, 2, 1376]) -> [N, K]``.
    heldout, unseen : HeldOut
        The gate's held-out measured patterns and the unseen-materials films.
    new_scans : (features, labels, challenger_predicted)
        float32 [M, 2, 1376], int64 [M] and int64 [M]: the new scans and the class the
        challenger's held-out-fold member gave each (:func:`held_out_fold_predictions`).
    """
    from flows.retrain_report import evaluate, scores

    features, labels, predicted = new_scans
    n_classes = len(heldout.classes)
    evals = {}
    for part, data in (("heldout", heldout), ("unseen", unseen)):
        evals[f"challenger_{part}"] = evaluate(challenger, data.features, data.labels, n_classes)
        evals[f"champion_{part}"] = evaluate(champion, data.features, data.labels, n_classes)
    evals["challenger_new"] = scores(predicted, labels, n_classes)
    evals["champion_new"] = evaluate(champion, features, labels, n_classes)
    return evals


def pooled_correct(evals: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pattern of the three parts pooled: challenger right, champion right, is a new scan (bool [N] each)."""
    def part(who: str) -> np.ndarray:
        return np.concatenate([np.asarray(evals[f"{who}_{p}"].correct, dtype=bool) for p in PARTS])

    is_new = np.concatenate([np.full(evals[f"champion_{p}"].n, p == "new", dtype=bool) for p in PARTS])
    return part("challenger"), part("champion"), is_new
