"""Benchmark: the shipped default models on patterns they never trained on.

The default models (``xrd-agent train --default``) leave out the retrain gate's held-out part of the
measured patterns (:mod:`models.gate_split`: 24 space-group, 26 dimensionality patterns, whole
near-duplicate groups), so those patterns measure the shipped models honestly, as they are:

* ``heldout``: accuracy, per-class recall, expected calibration error and the share flagged out of
  distribution on the gate's held-out measured patterns, and the accuracy of the same scans
  coarsened to 0.16 deg (:func:`evaluation.scan_variants.coarsen`) beside it;
* ``unseen``: the unseen-materials films (:func:`evaluation.unseen_materials.score_unseen`);
* ``ood``: how well the confidence separates them from out-of-distribution patterns
  (:func:`evaluation.out_of_distribution.score_ood`), and the highest out-of-distribution confidence.

The figures of the grouped cross-validation (models retrained per fold) are ``bench accuracy``'s;
these are the shipped files' own. Usage: ``xrd-agent bench shipped [--quick]``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

TASKS: tuple[str, ...] = ("space_group", "dimensionality")
COARSE_STEP: float = 0.16
"""The agent's coarse step, degrees (Oviedo et al. 2019: accurate up to 0.16 deg)."""


def _heldout_patterns(task: str) -> list:
    from models.gate_split import gate_heldout_names
    from patterns import load_dimensionality_set, load_space_group_set

    measured = load_space_group_set() if task == "space_group" else load_dimensionality_set()
    held = gate_heldout_names(task)
    return [p for p in measured if p.metadata["name"] in held]


def _heldout_scores(classifier: Any, task: str) -> dict[str, Any]:
    from evaluation.metrics import confusion_matrix, expected_calibration_error, per_class_recall
    from evaluation.scan_variants import coarsen, features_of

    patterns = _heldout_patterns(task)
    labels = np.array([classifier.classes.index(p.metadata["label"]) for p in patterns])
    proba, _, flagged = classifier.predict_proba_and_novelty(features_of(patterns))
    coarse_proba = classifier.predict_proba(features_of([coarsen(p, COARSE_STEP) for p in patterns]))
    recall = per_class_recall(confusion_matrix(labels, proba.argmax(1), len(classifier.classes)))
    return {
        "accuracy": float((proba.argmax(1) == labels).mean()),
        "accuracy_coarse_0_16": float((coarse_proba.argmax(1) == labels).mean()),
        "n": int(labels.size),
        "ece": float(expected_calibration_error(labels, proba)),
        "mean_confidence": float(proba.max(1).mean()),
        "flagged_out_of_distribution": float(flagged.mean()),
        "per_class_recall": {c: (None if np.isnan(r) else float(r)) for c, r in zip(classifier.classes, recall)},
        "trained_without_them": "gate_split" in classifier.metadata,
    }


def run(quick: bool, out: Path) -> dict[str, Any]:
    """Score both shipped models; write ``out`` (JSON) and return the result."""
    import models
    from bench.accuracy import _git_commit
    from evaluation.generalisation import evaluation_sets
    from evaluation.out_of_distribution import score_ood
    from evaluation.unseen_materials import score_unseen

    started = time.perf_counter()
    load_before = list(os.getloadavg())
    result: dict[str, Any] = {"quick": quick, "git_commit": _git_commit()}
    for task in TASKS:
        classifier = models.load_default(task)
        films, ood = evaluation_sets(task, quick=quick)
        unseen = score_unseen(classifier, task, films=films)
        separation = score_ood(classifier, task, in_distribution=films, ood=ood)
        result[task] = {
            "model_version": classifier.version,
            "heldout": _heldout_scores(classifier, task),
            "unseen": {k: unseen[k] for k in ("accuracy", "n", "n_structures", "mean_confidence", "per_class_recall")},
            "ood": {k: separation[k] for k in ("auroc", "auroc_strict", "max_confidence", "fraction_above_half", "n",
                                               "mean_confidence_ood", "most_confident")},
        }
    result["load_average"] = {"before": load_before, "after": list(os.getloadavg())}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result
