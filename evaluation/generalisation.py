"""Generalisation figures of the accuracy benchmark: unseen materials and out-of-distribution patterns.

Every model of the comparison (ours, the faithful a-CNN, the 1-NN; :class:`evaluation.protocols.ModelSpec`)
is trained once on **all** measured patterns of the task plus the simulated set, exactly as a
Case 3 fold model but without a test fold, and scored on the two evaluation-only sets:

- :func:`evaluation.unseen_materials.score_unseen`: literature halides whose compositions the
  training data never contains (issue 9, item 5);
- :func:`evaluation.out_of_distribution.score_ood`: AUROC of the top-class confidence, unseen
  films (in class) against patterns from none of the seven classes (issue 9, item 4).

Neither set is used to choose anything: they are measured after training, once. The shipped
default model (``models/default``) can be scored beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from evaluation.out_of_distribution import OOD_SOURCES, OodSet, ood_patterns, score_ood
from evaluation.protocols import ModelSpec, SimulatedSource, build_training_set
from evaluation.unseen_materials import FilmSet, score_unseen, unseen_films
from models.classifier import task_classes
from training.measured_set import MeasuredSet

__all__ = ["QUICK_UNSEEN", "FittedModel", "evaluation_sets", "generalisation_scores", "report_keys", "shipped_model"]

#: One structure per class (and a second Fm-3m family) for ``--quick`` runs.
QUICK_UNSEEN: tuple[str, ...] = ("KMgF3", "KCuF3", "Cs2NaBiCl6", "Cs2TeCl6", "CdI2", "Cs3Cr2Cl9",
                                 "Cs3Sb2Cl9-Pc", "Cs3Sb2Cl9-P21a")


@dataclass
class FittedModel:
    """A fitted comparison model seen through the Classifier API (``classes``, ``predict_proba``)."""

    model: Any
    classes: tuple[str, ...]
    task: str

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, K]`` of preprocessed ``features [N, 2, 1376]``."""
        return self.model.predict_proba(features)


def evaluation_sets(task: str, quick: bool = False, seed: int = 0) -> tuple[FilmSet, OodSet]:
    """The unseen-materials films of ``task`` and the out-of-distribution patterns.

    ``quick``: one texture and count level, the structures of :data:`QUICK_UNSEEN` (those of the
    task) and the out-of-distribution structures and measured scans only (no CIFs): seconds, not
    minutes; for tests of the benchmark code, not for figures.
    """
    if not quick:
        return unseen_films(task, seed=seed), ood_patterns(seed=seed)
    from evaluation.unseen_materials import task_entries

    names = tuple(n for n in QUICK_UNSEEN if n in {e.name for e in task_entries(task)})
    films = unseen_films(task, textures=("strong",), count_levels=("high",), seed=seed, names=names)
    ood = ood_patterns(textures=("strong",), count_levels=("high",), seed=seed,
                       sources=tuple(s for s in OOD_SOURCES if s != "cif"))
    return films, ood


def _headline(unseen: dict[str, Any], ood: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keep_unseen = ("accuracy", "n", "n_structures", "literature_accuracy", "n_literature", "mean_confidence",
                   "per_class_recall")
    keep_ood = ("auroc", "auroc_strict", "max_confidence", "fraction_above_half", "n", "n_in_class")
    return {k: unseen[k] for k in keep_unseen}, {k: ood[k] for k in keep_ood}


def generalisation_scores(
    task: str,
    specs: Sequence[ModelSpec],
    measured: MeasuredSet,
    source: SimulatedSource,
    *,
    seed: int = 0,
    quick: bool = False,
    extra: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every spec on all measured + simulated patterns of ``task``; score unseen and OOD sets.

    Parameters
    ----------
    task : {"space_group", "dimensionality"}
    specs : sequence of ModelSpec
        The comparison's models (the first is the headline, normally "ours").
    measured : training.measured_set.MeasuredSet
        The measured patterns of the task (all of them go into training).
    source : SimulatedSource
        Simulated training patterns (drawn with ``seed``).
    seed : int
        Seed of the simulated set, the models and the evaluation films' noise.
    quick : bool
        Small evaluation sets (:func:`evaluation_sets`).
    extra : dict, optional
        Already-trained classifiers to score beside them, name -> Classifier (e.g. the shipped
        default model).

    Returns
    -------
    dict
        ``{"unseen": {model: {...}}, "ood": {model: {...}}, "detail": {model: {"unseen", "ood"}},
        "settings": {...}}``; the headline keys of :func:`score_unseen` / :func:`score_ood` per model
        and their full output under ``detail``.
    """
    classes = task_classes(task)
    films, ood = evaluation_sets(task, quick=quick, seed=seed)
    training = build_training_set(task, source(task, seed), measured, np.arange(len(measured)))
    models: dict[str, Any] = {}
    for spec in specs:
        if progress:
            progress(f"{task}: generalisation, training {spec.name} on {len(training)} patterns")
        models[spec.name] = FittedModel(spec.factory(task, seed).fit(training), classes, task)
    models.update(extra or {})
    out: dict[str, Any] = {"unseen": {}, "ood": {}, "detail": {},
                           "settings": {"quick": quick, "seed": seed, "n_training": len(training),
                                        "n_unseen_patterns": int(films.labels.size), "n_ood_patterns": len(ood.names)}}
    for name, classifier in models.items():
        unseen = score_unseen(classifier, task, films=films)
        separation = score_ood(classifier, task, in_distribution=films, ood=ood)
        out["unseen"][name], out["ood"][name] = _headline(unseen, separation)
        out["detail"][name] = {"unseen": unseen, "ood": separation}
        if progress:
            progress(f"{task}: {name}: unseen accuracy {unseen['accuracy']:.3f} (n={unseen['n']}), "
                     f"OOD AUROC {separation['auroc']:.3f}, max OOD confidence {separation['max_confidence']:.2f}")
    return out


def shipped_model(task: str) -> dict[str, Any]:
    """The shipped default model of ``task`` as ``{"default_model": Classifier}``; empty if absent."""
    import models

    try:
        return {"default_model": models.load_default(task)}
    except ValueError:  # no shipped model, or one of an older format: nothing to compare
        return {}


def report_keys(scores: dict[str, Any], headline: str) -> dict[str, dict[str, Any]]:
    """One task's :func:`generalisation_scores` as benchmark report keys.

    Returns ``{"unseen": ..., "ood_by_task": ..., "generalisation_detail": ...}``: the headline
    model's figures at the top of the first two, the other models under ``"models"``.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, target in (("unseen", "unseen"), ("ood", "ood_by_task")):
        by_model = scores[key]
        out[target] = {**by_model.get(headline, {}),
                       "models": {name: v for name, v in by_model.items() if name != headline}}
    out["generalisation_detail"] = {"settings": scores["settings"], "models": scores["detail"]}
    return out
