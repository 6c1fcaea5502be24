"""`xrd-agent bench stepsize`: accuracy vs 2-theta step (the paper's Fig. 4) on measured patterns.

Case 3 with random stratified folds (simulated + measured training fold); every measured test
pattern is coarsened to 0.04, 0.08, 0.12, 0.16, 0.24 and 0.32 degrees by dropping points
(:func:`evaluation.scan_variants.coarsen`), re-gridded and classified by the fold's model. The same
figures appear in ``accuracy.json`` (from its own, larger run); this benchmark is the quicker,
standalone version with its own PNG.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import figures
from bench.accuracy import (
    QUICK,
    AccuracySettings,
    _git_commit,
    _jsonable,
    _progress,
    default_specs,
)
from evaluation.protocols import ModelSpec, SimulatedSource, run_case3, simulated_source, summarize
from training.measured_set import load_measured_set
from evaluation.scan_variants import STEP_SIZES, variant_features

FULL = AccuracySettings(n_repeats=2, grouped_repeats=0, case2_repeats=0, run_case1=False)
"""Random Case 3, 5-fold x 2 repeats."""


def run(
    quick: bool,
    out: Path,
    *,
    settings: AccuracySettings | None = None,
    specs: Sequence[ModelSpec] | None = None,
    source: SimulatedSource | None = None,
    tasks: Sequence[str] = ("space_group", "dimensionality"),
) -> dict[str, Any]:
    """Run the step-size study and write ``out`` (JSON) and ``<stem>.png`` beside it."""
    tic = time.perf_counter()
    settings = replace(settings or (QUICK if quick else FULL), quick=quick)
    specs = list(specs) if specs is not None else [
        s for s in default_specs(settings) if s.name in ("ours", "acnn", "nn")]
    source = source or simulated_source(settings.n_simulated_per_class)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"steps_deg": list(STEP_SIZES)}
    curves = {}
    for task in tasks:
        measured = load_measured_set(task)
        variants, info = variant_features(measured.patterns, steps=STEP_SIZES, fractions=())
        protocol = run_case3(task, specs, measured, source, grouped=False, n_splits=settings.n_splits,
                             n_repeats=settings.n_repeats, seed=settings.seed, variants=variants,
                             progress=_progress)
        summary = summarize(protocol)
        block: dict[str, Any] = {"achieved_mean_step": {f"{s:.2f}": info[f"step:{s:.2f}"]["mean_step"]
                                                        for s in STEP_SIZES}}
        for model, figures_of_model in summary["models"].items():
            by_step = {f"{s:.2f}": figures_of_model["variants"][f"step:{s:.2f}"] for s in STEP_SIZES}
            block[model] = {step: v["accuracy_mean"] for step, v in by_step.items()}
            block[f"{model}_std"] = {step: v["accuracy_std"] for step, v in by_step.items()}
            block[f"{model}_native_accuracy_mean"] = figures_of_model["accuracy_mean"]
            curves[f"{task} {model}"] = (STEP_SIZES, list(block[model].values()), list(block[f"{model}_std"].values()))
        if "ours" in block:
            block["drop_0.16_vs_0.04"] = block["ours"]["0.04"] - block["ours"]["0.16"]
        result[task] = block
    png = out.with_suffix(".png")
    figures.curve_png(curves, png, "2theta step (deg)", "Case 3 accuracy vs step size (points dropped)")
    result["figures"] = [png.name]
    result["settings"] = asdict(settings)
    result["git_commit"] = _git_commit()
    result["wall_seconds"] = time.perf_counter() - tic
    out.write_text(json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n")
    return result
