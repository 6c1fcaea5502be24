"""`xrd-agent bench accuracy`: the paper's protocol and the honest one, in one run.

For each task (space group on the 88 measured patterns, dimensionality on the 73):

* Case 3, random stratified 5-fold x N repeats (the paper's protocol), with the step-size and
  partial-scan variants of every test pattern;
* grouped Case 3 (near-duplicate groups never straddle train and test);
* Case 2 (train simulated, test all measured) and Case 1 (simulated only, 5-fold);

each for our model, the faithful a-CNN and the 1-NN baseline, all trained and measured in this
run on the same folds; and, trained once on all measured + simulated patterns, the same models
and the shipped default model scored on the unseen-materials and out-of-distribution sets
(:mod:`evaluation.generalisation`; keys ``unseen``, ``ood``, ``ood_by_task``). Writes
``accuracy.json`` and PNGs beside it (confusion matrices, average CAM per class, partial-scan
curve, step-size curve, reliability diagram).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.accuracy_report import (  # noqa: F401  (names re-exported for callers of bench.accuracy)
    ACNN_MODEL,
    HEADLINE_MODEL,
    NN_MODEL,
    NN_SIMULATED_MODEL,
    assemble as _assemble,
    headline as _headline,
    jsonable as _jsonable,
    number_key,
    variant_curve as _variant_curve,
)
from evaluation.protocols import (
    ModelSpec,
    ProtocolResult,
    SimulatedSource,
    nearest_neighbour_spec,
    run_case1,
    run_case2,
    run_case3,
    simulated_source,
    summarize,
)
from training.near_duplicates import group_sizes
from training.measured_set import MeasuredSet, load_measured_set
from evaluation.metrics import reliability
from evaluation.scan_variants import PARTIAL_FRACTIONS, STEP_SIZES, variant_features

TASKS: tuple[str, ...] = ("space_group", "dimensionality")


@dataclass(frozen=True)
class AccuracySettings:
    """Sizes of one benchmark run.

    Attributes
    ----------
    n_splits : int
        Folds of every K-fold protocol.
    n_repeats : int
        Repeats of random Case 3 (>= 5 for the acceptance figures).
    grouped_repeats : int
        Repeats of grouped Case 3.
    case2_repeats : int
        Repeats of Case 2 (new simulated set and model seed each).
    run_case1 : bool
        Whether to run Case 1.
    seed : int
        Base seed of folds, models and simulation.
    n_simulated_per_class : int
        Simulated patterns per class for training.
    quick : bool
        Tiny CI settings (the figures are not meaningful).
    train_steps : int or None
        Optimiser steps per fold model for ours and the a-CNN alike (None: the classifier's
        :class:`training.fit.TrainConfig` default). The per-fold budget that keeps the full run
        near 35 minutes on two cores; recorded in the JSON with the configs used.
    curve_steps : tuple of int
        Optimiser steps at which our grouped Case 3 fold models are scored on their test folds
        (the learning curve; network alone).
    """

    n_splits: int = 5
    n_repeats: int = 5
    grouped_repeats: int = 5
    case2_repeats: int = 3
    run_case1: bool = True
    seed: int = 0
    n_simulated_per_class: int = 100
    quick: bool = False
    train_steps: int | None = None
    curve_steps: tuple[int, ...] = ()


FULL = AccuracySettings(grouped_repeats=1, case2_repeats=1, train_steps=400,
                        curve_steps=(25, 50, 100, 150, 200, 300, 400))
QUICK = AccuracySettings(n_splits=2, n_repeats=1, grouped_repeats=1, case2_repeats=1,
                         run_case1=False, n_simulated_per_class=4, quick=True, curve_steps=(1, 2))


def default_specs(settings: AccuracySettings, *, learning_curve: bool = False) -> list[ModelSpec]:
    """Our model, the faithful a-CNN and the 1-NN baselines (all on the same folds).

    With ``learning_curve`` our model keeps its network at ``settings.curve_steps``.
    """
    from evaluation.compared_models import ACNN_CONFIG, OURS_CONFIG, acnn_spec, ours_spec  # torch: lazily

    ours, acnn = OURS_CONFIG, ACNN_CONFIG
    if settings.train_steps is not None:
        ours, acnn = replace(ours, steps=settings.train_steps), replace(acnn, steps=settings.train_steps)
    steps = settings.curve_steps if learning_curve else ()
    return [ours_spec(quick=settings.quick, config=ours, checkpoint_steps=steps),
            acnn_spec(quick=settings.quick, config=acnn),
            nearest_neighbour_spec(measured_only=True), nearest_neighbour_spec(measured_only=False)]


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _git_modified_code() -> list[str] | None:
    """Tracked code files that differ from the commit (the run used the working tree)."""
    try:
        lines = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=Path(__file__).resolve().parent).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sorted(line[3:] for line in lines if line[3:].endswith(".py"))


def _grouping_record(measured: MeasuredSet) -> dict[str, Any]:
    members = {}
    for group in np.unique(measured.groups):
        idx = np.flatnonzero(measured.groups == group)
        if idx.size > 1:
            members[str(int(group))] = [measured.names[i] for i in idx]
    return {"n_patterns": len(measured), "n_groups": int(np.unique(measured.groups).size),
            "sizes": group_sizes(measured.groups), "groups_with_partners": members}


def _average_cams(result: ProtocolResult, measured: MeasuredSet) -> tuple[dict, dict, dict] | None:
    out = result.models.get(HEADLINE_MODEL)
    if out is None or not out.cams:
        return None
    cams, patterns, counts = {}, {}, {}
    for c, total in sorted(out.cams.items()):
        name = result.classes[c]
        counts[name] = out.cam_counts[c]
        cams[name] = total / max(out.cam_counts[c], 1)
        patterns[name] = measured.features[measured.labels == c, 0].mean(axis=0)
    return cams, patterns, counts


def evaluate_task(
    task: str,
    settings: AccuracySettings,
    specs: Sequence[ModelSpec],
    source: SimulatedSource,
    progress: Callable[[str], None] | None = _progress,
    grouped_specs: Sequence[ModelSpec] | None = None,
) -> dict[str, Any]:
    """Every protocol of one task; returns a JSON-ready block (figures' data included).

    ``grouped_specs`` (default ``specs``) are the models of grouped Case 3 (where the learning
    curve is recorded)."""
    measured = load_measured_set(task)
    block: dict[str, Any] = {"grouping": _grouping_record(measured),
                             "models": {spec.name: {"description": spec.description,
                                                    "settings": dict(spec.settings)} for spec in specs}}
    variants, variant_info = variant_features(measured.patterns)
    if progress:
        progress(f"{task}: {len(measured)} patterns, {block['grouping']['n_groups']} groups")
    protocols: dict[str, ProtocolResult] = {}
    protocols["case3"] = run_case3(task, specs, measured, source, grouped=False,
                                   n_splits=settings.n_splits, n_repeats=settings.n_repeats,
                                   seed=settings.seed, variants=variants, progress=progress)
    if settings.grouped_repeats:
        protocols["case3_grouped"] = run_case3(task, grouped_specs or specs, measured, source, grouped=True,
                                               n_splits=settings.n_splits,
                                               n_repeats=settings.grouped_repeats,
                                               seed=settings.seed, variants=variants, progress=progress)
    if settings.case2_repeats:
        protocols["case2"] = run_case2(task, specs, measured, source, n_repeats=settings.case2_repeats,
                                       seed=settings.seed, progress=progress)
    if settings.run_case1:
        protocols["case1"] = run_case1(task, specs, source(task, settings.seed),
                                       n_splits=settings.n_splits, seed=settings.seed, progress=progress)
    summaries = {name: summarize(p) for name, p in protocols.items()}
    block["protocols"] = summaries
    block["headline"] = {name: _headline(summary["models"]) for name, summary in summaries.items()}
    with_variants = [p for p in ("case3", "case3_grouped") if p in summaries]
    block["stepsize_detail"] = {
        protocol: {model: _variant_curve(summaries[protocol], model, "step", STEP_SIZES)
                   for model in summaries[protocol]["models"]} for protocol in with_variants}
    block["partial_detail"] = {
        protocol: {model: _variant_curve(summaries[protocol], model, "partial", PARTIAL_FRACTIONS)
                   for model in summaries[protocol]["models"]} for protocol in with_variants}
    block["stepsize_detail"]["achieved_mean_step"] = {
        number_key(float(k.split(":")[1])): v["mean_step"] for k, v in variant_info.items() if k.startswith("step:")}
    block["partial_detail"]["mean_coverage"] = {
        number_key(float(k.split(":")[1])): v["mean_coverage"] for k, v in variant_info.items()
        if k.startswith("partial:")}
    cams = _average_cams(protocols["case3"], measured)
    if cams is not None:
        block["average_cam"] = {"cam": cams[0], "mean_pattern": cams[1], "count": cams[2]}
    ours = protocols["case3"].models.get(HEADLINE_MODEL)
    if ours is not None:
        n_classes = len(protocols["case3"].classes)
        labels = np.tile(protocols["case3"].labels, ours.probabilities.shape[0])
        block["reliability"] = {"as trained": asdict(reliability(labels, ours.probabilities.reshape(-1, n_classes)))}
        if ours.calibrated is not None:
            block["reliability"]["cross-fit T"] = asdict(reliability(labels, ours.calibrated.reshape(-1, n_classes)))
    from evaluation.generalisation import generalisation_scores, shipped_model  # pymatgen films: lazily

    block["generalisation"] = generalisation_scores(task, specs, measured, source, seed=settings.seed,
                                                    quick=settings.quick, extra=shipped_model(task),
                                                    progress=progress)
    return _jsonable(block)


def _run_task_in_subprocess(task: str, quick: bool, folder: Path) -> subprocess.Popen:
    """Start ``python -m bench.accuracy --task TASK`` with one torch thread; it writes JSON."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "bench.accuracy", "--task", task, "--out", str(folder / f"{task}.json")]
    if quick:
        command.append("--quick")
    return subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parent.parent)


def run(
    quick: bool,
    out: Path,
    *,
    settings: AccuracySettings | None = None,
    specs: Sequence[ModelSpec] | None = None,
    source: SimulatedSource | None = None,
    tasks: Sequence[str] = TASKS,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = _progress,
) -> dict[str, Any]:
    """Run the accuracy benchmark and write ``out`` (JSON) plus PNGs beside it.

    Parameters
    ----------
    quick : bool
        CI mode: :data:`QUICK` settings.
    out : Path
        JSON path; figures are written as ``<stem>_*.png`` in the same folder.
    settings, specs, source : optional
        Override the run sizes, the compared models and the simulated-data source (tests pass
        stand-ins; the defaults are the real models and :func:`training.simulate.simulate_training_set`).
    tasks : sequence of str
        Tasks to evaluate.
    jobs : int, optional
        With the default models and data, evaluate the tasks in this many parallel processes of
        one torch thread each (default 2 for the full run, 1 for ``quick``): on two cores two
        single-threaded trainings outrun one two-threaded one. Results travel back as JSON.
    """
    tic = time.perf_counter()
    # provenance at the start: the code the evaluation imports is the working tree of now
    commit, modified = _git_commit(), _git_modified_code()
    settings = replace(settings or (QUICK if quick else FULL), quick=quick)
    defaults = specs is None and source is None
    jobs = jobs if jobs is not None else (1 if quick else 2)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    blocks: dict[str, dict[str, Any]] = {}
    if defaults and jobs > 1 and len(tasks) > 1 and settings in (FULL, QUICK):
        with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
            pending = list(tasks)
            running: list[tuple[str, subprocess.Popen]] = []
            while pending or running:
                while pending and len(running) < jobs:
                    task = pending.pop(0)
                    running.append((task, _run_task_in_subprocess(task, quick, Path(tmp))))
                task, process = running.pop(0)
                if process.wait() != 0:
                    for _, other in running:
                        other.kill()
                    raise RuntimeError(f"accuracy benchmark for {task} failed (exit {process.returncode})")
                blocks[task] = json.loads((Path(tmp) / f"{task}.json").read_text())
    else:
        grouped_specs = default_specs(settings, learning_curve=True) if specs is None else None
        specs = list(specs) if specs is not None else default_specs(settings)
        source = source or simulated_source(settings.n_simulated_per_class)
        for task in tasks:
            blocks[task] = evaluate_task(task, settings, specs, source, progress, grouped_specs)
        jobs = 1
    result = _assemble(blocks, tasks, out)
    result["settings"] = asdict(settings)
    result["models"] = blocks[tasks[0]]["models"]
    result["git_commit"] = commit
    result["git_modified_code"] = modified
    result["parallel_task_processes"] = jobs
    result["cpu_threads"] = _threads()
    result["wall_seconds"] = result["wall_s"] = time.perf_counter() - tic
    result["load_average"] = list(os.getloadavg())
    out.write_text(json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.accuracy --task TASK --out PATH [--quick]``: one task's block as JSON.

    Used by :func:`run` to evaluate tasks in parallel processes.
    """
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = replace(QUICK if args.quick else FULL, quick=args.quick)
    block = evaluate_task(args.task, settings, default_specs(settings),
                          simulated_source(settings.n_simulated_per_class),
                          lambda line: _progress(f"[{args.task}] {line}"),
                          default_specs(settings, learning_curve=True))
    args.out.write_text(json.dumps(block, allow_nan=False) + "\n")
    return 0


def _threads() -> int:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:
        return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
