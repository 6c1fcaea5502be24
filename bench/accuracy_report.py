"""Report assembly of `xrd-agent bench accuracy`: acceptance keys, details and PNGs.

:func:`assemble` turns the per-task blocks of :func:`bench.accuracy.evaluate_task` into the
``accuracy.json`` report and draws its figures beside ``out``: confusion matrices and the
average CAM per task, the partial-scan and step-size curves and the reliability diagram.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import figures
from evaluation.metrics import Reliability
from evaluation.scan_variants import PARTIAL_FRACTIONS, STEP_SIZES
from models.cam import plot_class_average_cams

HEADLINE_MODEL = "ours"
ACNN_MODEL = "acnn"
NN_MODEL = "nn"
NN_SIMULATED_MODEL = "nn_with_simulated"
FIGURE_MODELS: tuple[str, ...] = (HEADLINE_MODEL, ACNN_MODEL, NN_MODEL)
"""Models drawn in the confusion and variant-curve figures."""


def headline(models: dict[str, Any]) -> dict[str, Any]:
    """The acceptance keys of one task from a protocol summary's models."""
    ours = models[HEADLINE_MODEL]
    block: dict[str, Any] = {
        "accuracy_mean": ours["accuracy_mean"],
        "accuracy_std": ours["accuracy_std"],
        "f1_macro": ours["f1_macro"],
        "f1_micro": ours["f1_micro"],
        "per_class_recall": ours["per_class_recall"],
        "ece": ours["ece"],
        "ece_crossfit": ours.get("ece_crossfit"),
        "selective_accuracy": ours["selective_accuracy"],
        "selective_accuracy_crossfit": ours.get("selective_accuracy_crossfit"),
    }
    if ACNN_MODEL in models:
        block["baseline_acnn_accuracy_mean"] = models[ACNN_MODEL]["accuracy_mean"]
        block["baseline_acnn_accuracy_std"] = models[ACNN_MODEL]["accuracy_std"]
        block["baseline_acnn_f1_macro"] = models[ACNN_MODEL]["f1_macro"]
    # the 1-NN on measured training patterns where there are any (Case 3), else on simulated ones
    nn = NN_MODEL if NN_MODEL in models else NN_SIMULATED_MODEL if NN_SIMULATED_MODEL in models else None
    if nn is not None:
        block["nn_baseline"] = nn
        block["nn_baseline_accuracy_mean"] = models[nn]["accuracy_mean"]
        block["nn_baseline_accuracy_std"] = models[nn]["accuracy_std"]
        block["nn_baseline_f1_macro"] = models[nn]["f1_macro"]
    if NN_MODEL in models and NN_SIMULATED_MODEL in models:
        block["nn_with_simulated_accuracy_mean"] = models[NN_SIMULATED_MODEL]["accuracy_mean"]
    return block


def number_key(value: float) -> str:
    """JSON key of a step or fraction: fewest decimals, at least one ("0.04", "0.6", "1.0")."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def variant_curve(summary: dict[str, Any], model: str, prefix: str, keys: Sequence[float]) -> dict[str, float]:
    """Mean accuracy of ``model`` per scan variant ``prefix:key``, keyed by :func:`number_key`."""
    variants = summary["models"][model]["variants"]
    return {number_key(k): variants[f"{prefix}:{k:.2f}"]["accuracy_mean"] for k in keys}


def assemble(blocks: dict[str, dict[str, Any]], tasks: Sequence[str], out: Path) -> dict[str, Any]:
    """Acceptance keys, details and PNGs from the per-task blocks.

    Parameters
    ----------
    blocks : dict
        Per-task JSON blocks of :func:`bench.accuracy.evaluate_task`, keyed by task.
    tasks : sequence of str
        Tasks in report order; the first is the headline task.
    out : Path
        JSON path of the report; figures are written as ``<stem>_*.png`` beside it.
    """
    result: dict[str, Any] = {"grouped": {}, "case1": {}, "case2": {}, "protocols": {}, "grouping": {},
                              "stepsize_detail": {}, "partial_detail": {}, "unseen": {}, "ood_by_task": {},
                              "generalisation_detail": {}}
    pngs: list[str] = []
    curves_partial: dict[str, tuple] = {}
    curves_step: dict[str, tuple] = {}
    diagrams: dict[str, Reliability] = {}
    for task in tasks:
        block = blocks[task]
        _task_keys(result, task, block)
        pngs += _task_figures(task, block, out)
        _add_variant_curves(curves_partial, curves_step, task, block["protocols"])
        diagrams.update(_reliability_diagrams(task, block))
    _headline_task_keys(result, tasks)
    pngs += _summary_figures(curves_partial, curves_step, diagrams, out)
    pngs += _learning_curve_figure(result.get("learning_curve_by_task", {}), out)
    result["figures"] = pngs
    return result


def _task_keys(result: dict[str, Any], task: str, block: dict[str, Any]) -> None:
    """Copy one task's headline, protocol and detail keys into ``result`` (in place)."""
    result["grouping"][task] = block["grouping"]
    result["protocols"][task] = block["protocols"]
    result[task] = block["headline"]["case3"]
    for protocol, key in (("case3_grouped", "grouped"), ("case2", "case2"), ("case1", "case1")):
        if protocol in block["headline"]:
            result[key][task] = block["headline"][protocol]
    if "generalisation" in block:  # unseen materials and out-of-distribution
        from evaluation.generalisation import report_keys

        for key, value in report_keys(block["generalisation"], HEADLINE_MODEL).items():
            result[key][task] = value
    result["stepsize_detail"][task] = block["stepsize_detail"]
    result["partial_detail"][task] = block["partial_detail"]
    grouped = block["protocols"].get("case3_grouped", {}).get("models", {}).get(HEADLINE_MODEL, {})
    if "learning_curve" in grouped:  # the network alone at each checkpoint; the last line adds the memory
        result.setdefault("learning_curve_by_task", {})[task] = grouped["learning_curve"] + [
            {"steps": grouped["learning_curve"][-1]["steps"], "accuracy": grouped["accuracy_mean"],
             "with_memory": True}]


def _task_figures(task: str, block: dict[str, Any], out: Path) -> list[str]:
    """Draw one task's confusion matrices and (when present) average CAMs; return the PNG names."""
    summaries = block["protocols"]
    classes = summaries["case3"]["classes"]
    confusion = {f"{model} {protocol}": np.asarray(summaries[protocol]["models"][model]["confusion_matrix"])
                 for protocol in ("case3", "case3_grouped") if protocol in summaries
                 for model in FIGURE_MODELS
                 if model in summaries[protocol]["models"]}
    path = out.with_name(f"{out.stem}_confusion_{task}.png")
    figures.confusion_png(confusion, classes, path, f"{task}: out-of-fold confusion, summed over repeats")
    pngs = [path.name]
    if "average_cam" in block:
        cam = block["average_cam"]
        path = out.with_name(f"{out.stem}_cam_{task}.png")
        names = list(cam["cam"])
        plot_class_average_cams(np.array([cam["cam"][k] for k in names], dtype=float), names, path,
                                average_patterns=np.array([cam["mean_pattern"][k] for k in names], dtype=float),
                                counts=[cam["count"][k] for k in names],
                                title=f"{task}: average CAM of the true class (Eq. 6), Case 3 test folds")
        pngs.append(path.name)
    return pngs


def _add_variant_curves(curves_partial: dict[str, tuple], curves_step: dict[str, tuple], task: str,
                        summaries: dict[str, Any]) -> None:
    """Add one task's partial-scan and step-size curves (x, mean, std) per model and protocol (in place)."""
    for protocol, label in (("case3", "random"), ("case3_grouped", "grouped")):
        if protocol not in summaries:
            continue
        for model in FIGURE_MODELS:
            if model not in summaries[protocol]["models"]:
                continue
            variants_summary = summaries[protocol]["models"][model]["variants"]
            curves_partial[f"{task} {model} {label}"] = (
                PARTIAL_FRACTIONS,
                [variants_summary[f"partial:{f:.2f}"]["accuracy_mean"] for f in PARTIAL_FRACTIONS],
                [variants_summary[f"partial:{f:.2f}"]["accuracy_std"] for f in PARTIAL_FRACTIONS])
            curves_step[f"{task} {model} {label}"] = (
                STEP_SIZES,
                [variants_summary[f"step:{s:.2f}"]["accuracy_mean"] for s in STEP_SIZES],
                [variants_summary[f"step:{s:.2f}"]["accuracy_std"] for s in STEP_SIZES])


def _reliability_diagrams(task: str, block: dict[str, Any]) -> dict[str, Reliability]:
    """One task's reliability diagrams ("as trained", "cross-fit T"), rebuilt from JSON."""
    return {f"{task} {name}": Reliability(
        np.asarray(rel["bin_edges"], dtype=float), np.asarray(rel["counts"]),
        np.asarray(rel["accuracy"], dtype=float), np.asarray(rel["confidence"], dtype=float))
        for name, rel in block.get("reliability", {}).items()}


def _headline_task_keys(result: dict[str, Any], tasks: Sequence[str]) -> None:
    """The top-level keys taken from the first (headline) task (in place)."""
    first = tasks[0]
    if first in result.get("learning_curve_by_task", {}):
        result["learning_curve"] = result["learning_curve_by_task"][first]
    if first in result["ood_by_task"]:
        result["ood"] = {**result["ood_by_task"][first], "task": first}
    if HEADLINE_MODEL in result["protocols"][first]["case3"]["models"]:
        result["ece"] = result[first]["ece"]
        result["ece_by_task"] = {t: result[t]["ece"] for t in tasks}
        result["ece_crossfit_by_task"] = {t: result[t]["ece_crossfit"] for t in tasks}
        result["stepsize"] = result["stepsize_detail"][first]["case3"][HEADLINE_MODEL]
        result["partial"] = result["partial_detail"][first]["case3"][HEADLINE_MODEL]
        result["headline_task"] = first


def _summary_figures(curves_partial: dict[str, tuple], curves_step: dict[str, tuple],
                     diagrams: dict[str, Reliability], out: Path) -> list[str]:
    """Draw the partial-scan and step-size curves and the reliability diagram; return the PNG names."""
    pngs = []
    for name, curves, xlabel, title in (
        ("partial", curves_partial, "fraction of 5-60 deg measured (from 5 deg)", "accuracy vs fraction measured"),
        ("stepsize", curves_step, "2theta step (deg)", "accuracy vs step size (points dropped)"),
    ):
        path = out.with_name(f"{out.stem}_{name}.png")
        figures.curve_png(curves, path, xlabel, title)
        pngs.append(path.name)
    if diagrams:
        path = out.with_name(f"{out.stem}_reliability.png")
        figures.reliability_png(diagrams, path, "reliability, Case 3 out-of-fold predictions")
        pngs.append(path.name)
    return pngs


def jsonable(value: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return value


def _learning_curve_figure(curves: dict[str, list[dict[str, Any]]], out: Path) -> list[str]:
    """Grouped held-out accuracy of the network against optimiser steps, one line per task."""
    if not curves:
        return []
    lines = {}
    for task, points in curves.items():
        network = [p for p in points if not p.get("with_memory")]
        lines[f"{task} (network alone)"] = ([p["steps"] for p in network], [p["accuracy"] for p in network],
                                            None)
    path = out.with_name(f"{out.stem}_learning_curve.png")
    figures.curve_png(lines, path, "optimiser steps (one-cycle schedule of the last step)",
                      "learning curve: grouped Case 3 held-out accuracy")
    return [path.name]
