"""`xrd-agent bench NAME [--quick] [--out PATH]`: run one benchmark (or all) and write its JSON.

Each benchmark is a module ``bench.<name>`` with ``run(quick: bool, out: Path) -> dict`` that
writes its JSON to ``out`` (and any PNG beside it). Modules are imported only when run, so a
benchmark whose heavy dependencies are missing does not break the others or ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from cli.errors import UserError

BENCHMARKS: tuple[str, ...] = ("accuracy", "stepsize", "speed", "loop_tuning", "loop", "retrain", "scan_speed", "simulator", "shipped",
                               "soak", "metadata")
"""Benchmark names, in the order ``all`` runs them."""

RESULTS_DIR = Path(__file__).resolve().parent.parent / "bench" / "results"
"""Default output folder: ``bench/results`` of the repository."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark and write bench/results/NAME.json",
        description="Run a benchmark (accuracy, stepsize, speed, loop_tuning, loop, retrain, scan_speed, simulator, shipped, soak, metadata) or all "
        "of those present, writing JSON (and PNGs beside it).",
    )
    parser.add_argument("name", choices=(*BENCHMARKS, "all"), help="benchmark to run")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings for CI (seconds, not minutes; figures not meaningful)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output path (default bench/results/NAME.json); with 'all', a folder")
    parser.add_argument("--sample", default=None, metavar="PATH",
                        help="loop only: scan this measured pattern file (.xy, .xrdml, ...) or CIF with every strategy "
                        "instead of the benchmark sets (default output bench/results/loop_sample.json)")
    parser.set_defaults(func=run_command)


def _load(name: str) -> Any:
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None
        raise


def _headline(result: dict[str, Any]) -> str:
    """A few top-level numbers of a result for the terminal."""
    scalars = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return ", ".join(f"{k}={v:.4g}" for k, v in list(scalars.items())[:6])


def run_one(name: str, quick: bool, out: Path, **options: Any) -> dict[str, Any]:
    """Run benchmark ``name`` writing to ``out`` (``options`` go to its ``run``); UserError if it does not exist."""
    module = _load(name)
    if module is None:
        raise UserError(f"benchmark {name!r} is not available (no module bench/{name}.py)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    result = module.run(quick, out, **options)
    print(f"bench {name}: wrote {out} in {time.perf_counter() - tic:.1f} s"
          + (f" ({_headline(result)})" if isinstance(result, dict) and _headline(result) else ""))
    return result


def run_command(args: argparse.Namespace) -> int:
    if args.sample is not None:
        if args.name != "loop":
            raise UserError("--sample applies to 'bench loop' only")
        if Path(args.sample).is_dir():
            raise UserError(f"--sample: {args.sample} is a directory; give one pattern or CIF file in it")
        if not Path(args.sample).is_file():
            raise UserError(f"--sample: no such file {args.sample}")
    if args.name != "all":
        stem = "loop_sample" if args.sample is not None else args.name
        out = args.out if args.out is not None else RESULTS_DIR / f"{stem}.json"
        if out.suffix != ".json":
            raise UserError(f"--out must name a .json file, got {out}")
        run_one(args.name, args.quick, out, **({"sample": args.sample} if args.sample is not None else {}))
        return 0
    folder = args.out if args.out is not None else RESULTS_DIR
    if folder.suffix == ".json":
        raise UserError("with 'all', --out names a folder, not a .json file")
    summary: dict[str, Any] = {}
    failed = []
    for name in BENCHMARKS:
        if _load(name) is None:
            summary[name] = "not present"
            continue
        try:
            run_one(name, args.quick, folder / f"{name}.json")
            summary[name] = "ok"
        except Exception as exc:  # one broken benchmark must not hide the others' results
            print(f"bench {name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            summary[name] = f"failed: {type(exc).__name__}: {exc}"
            failed.append(name)
    print(json.dumps(summary, indent=1))
    return 1 if failed else 0
