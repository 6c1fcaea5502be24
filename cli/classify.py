"""`xrd-agent classify FILE...`: class, probability and top 3 per pattern file; CAM plots."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cli.errors import UserError

TASK_CHOICES = ("space_group", "dimensionality", "both")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify XRD pattern files (.xy, .xrdml) with the default or a given model",
        description="Print the predicted class, its calibrated probability and the top 3 for each file.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="pattern files (.xy/.txt/.csv/.dat/.xrdml)")
    parser.add_argument("--task", choices=TASK_CHOICES, default="space_group", help="what to predict (default: space_group)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped default model)")
    parser.add_argument("--plot", type=Path, default=None, metavar="DIR", help="write the CAM over each pattern as PNG into DIR")
    parser.set_defaults(func=run_classify)


def _load_models(args: argparse.Namespace) -> list:
    import models
    from models.classifier import Classifier

    tasks = ("space_group", "dimensionality") if args.task == "both" else (args.task,)
    if args.model is not None:
        if args.task == "both":
            raise UserError("--model takes one model; give --task space_group or dimensionality")
        return [Classifier.load(args.model, task=args.task)]
    return [models.load_default(task) for task in tasks]


def _plot_name(file: Path, task: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", file.stem).strip("_") or "pattern"
    return f"{stem}.{task}.cam.png"


def run_classify(args: argparse.Namespace) -> int:
    from models.cam import plot_cam
    from patterns import read_pattern

    classifiers = _load_models(args)
    failures = 0
    for file in args.files:
        try:
            pattern = read_pattern(file)
            for clf in classifiers:
                prediction = clf.predict(pattern.two_theta, pattern.intensity)
                top = ", ".join(f"{name} {p:.3f}" for name, p in prediction.top(3))
                print(f"{file}\t{clf.task}\t{prediction.label}\tp={prediction.confidence:.3f}\ttop3: {top}\tcoverage={prediction.coverage:.2f}")
                if args.plot is not None:
                    title = f"{file.name}: {prediction.label} (p = {prediction.confidence:.2f}, model {clf.version})"
                    plot_cam(pattern.two_theta, pattern.intensity, prediction.cam, args.plot / _plot_name(file, clf.task), title=title)
        except (ValueError, FileNotFoundError, OSError, UserError) as exc:
            failures += 1
            print(f"xrd-agent classify: error: {exc}", file=sys.stderr)
    return 2 if failures else 0
