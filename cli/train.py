"""`xrd-agent train`: train a classifier; `--default` rebuilds the shipped default models."""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cli.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a classifier on simulated + measured patterns (--default: the shipped models)",
        description=(
            "Train a calibrated ensemble classifier on simulated patterns plus the measured AUTO-XRD "
            "patterns. --default writes models/default/space_group and models/default/dimensionality "
            "from a fixed seed."
        ),
    )
    parser.add_argument("--default", action="store_true", help="train both shipped default models into models/default/")
    parser.add_argument("--task", choices=("space_group", "dimensionality"), default="space_group")
    parser.add_argument("--out", type=Path, default=None, help="model directory to write (not with --default)")
    parser.add_argument("--register", action="store_true", help="also store the model in the registry ($XRD_AGENT_HOME/models)")
    parser.add_argument("--champion", action="store_true", help="with --register: make it the champion")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the default models' seed)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per member")
    parser.add_argument("--members", type=int, default=None, help="ensemble members")
    parser.add_argument("--simulated-per-class", type=int, default=None, help="simulated patterns per class")
    parser.add_argument("--architecture", choices=("xrdnet", "acnn"), default=None)
    parser.set_defaults(func=run_train)


def _config(args: argparse.Namespace):
    from dataclasses import replace

    from training.fit import DEFAULT_SEED, default_config

    config = default_config(args.seed if args.seed is not None else DEFAULT_SEED)
    overrides = {
        "steps": args.steps,
        "n_members": args.members,
        "n_simulated_per_class": args.simulated_per_class,
        "architecture": args.architecture,
    }
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def _train_and_save(task: str, config: dict, out: str) -> str:
    """Train the default model of ``task`` in this (worker) process on one thread, save it, say so."""
    import torch

    from training.config import TrainConfig
    from training.fit import train_default

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    clf = train_default(task, config=TrainConfig.from_dict(config))
    clf.save(out)
    cal = clf.metadata.get("calibration", {})
    return (f"{task}: version {clf.version}, temperature {clf.temperature:.3f}, held-out accuracy "
            f"{cal.get('heldout_accuracy', float('nan')):.3f} on {cal.get('n_heldout', 0)} patterns, "
            f"{time.perf_counter() - t0:.1f} s -> {out}")


def run_train(args: argparse.Namespace) -> int:
    import models
    from models.classifier import Classifier
    from models.registry import ModelRegistry

    if args.default and args.out is not None:
        raise UserError("--default writes models/default/<task>; do not combine it with --out")
    if args.champion and not args.register:
        raise UserError("--champion needs --register")
    config = _config(args)
    tasks = ("space_group", "dimensionality") if args.default else (args.task,)
    outs = {task: models.default_model_dir(task) if args.default else (args.out or Path("models-out") / task) for task in tasks}
    started = time.perf_counter()
    # one single-threaded process per task: two small networks keep two cores busier than one
    # process with two threads (bench/speed.py measures the same for inference)
    with ProcessPoolExecutor(max_workers=len(tasks), mp_context=multiprocessing.get_context("spawn")) as pool:
        done = pool.map(_train_and_save, tasks, [config.to_dict()] * len(tasks), [str(outs[t]) for t in tasks])
        for task, line in zip(tasks, done):
            print(line, flush=True)
    for task in tasks:
        clf = Classifier.load(outs[task])
        if args.register:
            path = ModelRegistry().register(clf, champion=args.champion)
            print(f"{task}: registered {path}" + (" (champion)" if args.champion else ""))
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0
