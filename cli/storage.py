"""`xrd-agent label`, `xrd-agent runs` and `xrd-agent tiled serve`.

Metadata-only commands: `runs` and `label` read the embedded catalog's database directly
(`storage.catalog_db`) and a served catalog through tiled's client alone; neither imports
tiled's server stack, bluesky-tiled-plugins, torch or bluesky (a test checks `sys.modules`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from cli.errors import UserError


def _add_catalog_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--uri",
        default=None,
        help="served tiled catalog (default: $XRD_AGENT_TILED_URI, else the embedded catalog under XRD_AGENT_HOME)",
    )
    parser.add_argument(
        "--api-key", default=None, help="API key of the served catalog (default: $XRD_AGENT_TILED_API_KEY)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    label = subparsers.add_parser(
        "label",
        help="label one or more runs with their space group / dimensionality",
        description="Label runs (one label for all). Classes are normalised (P63/mmc, pm-3m, 194) and checked "
        "against the champion model; a bad label or an unknown or ambiguous run writes nothing. Labels go into "
        "the run's start metadata in tiled, whose revisions keep every earlier label.",
    )
    label.add_argument("runs", nargs="+", metavar="RUN",
                       help="full uid, unique uid prefix (e.g. the 8 characters `xrd-agent runs` shows) or scan ID")
    label.add_argument("--space-group", default=None, help="space group: symbol (P-3m1, P63/mmc, pm-3m) or number")
    label.add_argument("--dimensionality", default=None, help="0D, 2D or 3D (implied by the space group if omitted)")
    label.add_argument("--by", default=None, help="who labels (default: login name)")
    _add_catalog_options(label)
    label.set_defaults(func=run_label)

    runs = subparsers.add_parser("runs", help="list runs in the catalog, with their class, points and exit status")
    which = runs.add_mutually_exclusive_group()
    which.add_argument("--labelled", action="store_true", help="only labelled runs")
    which.add_argument("--unlabelled", action="store_true", help="only runs without a label")
    runs.add_argument("--scan-id", type=int, default=None, help="only runs with this scan ID")
    runs.add_argument("--since", default=None, metavar="TIME", help="only runs started at or after TIME (ISO, UTC)")
    runs.add_argument("--until", default=None, metavar="TIME", help="only runs started before TIME (ISO, UTC)")
    runs.add_argument("--sample", default=None, help="only samples whose name contains this (case-blind)")
    runs.add_argument("--predicted", default=None, metavar="CLASS", help="only runs the agent classified as CLASS")
    runs.add_argument("--min-confidence", type=float, default=None, help="only runs with at least this confidence (0-1)")
    runs.add_argument("--max-confidence", type=float, default=None, help="only runs with at most this confidence (0-1)")
    runs.add_argument("--min-points", type=int, default=None, help="only runs with at least this many points")
    runs.add_argument("--exit-status", default=None, choices=("success", "abort", "fail", "none"),
                      help="only runs that ended so ('none': never closed, e.g. a killed process)")
    runs.add_argument("--label", default=None, metavar="CLASS", help="only runs labelled CLASS (space group or dimensionality)")
    runs.add_argument("--json", action="store_true", help="one JSON object per line")
    _add_catalog_options(runs)
    runs.set_defaults(func=run_runs)

    tiled = subparsers.add_parser("tiled", help="tiled catalog server")
    tiled_sub = tiled.add_subparsers(dest="tiled_command", metavar="SUBCOMMAND", required=True)
    serve = tiled_sub.add_parser(
        "serve", help="serve the catalog on 127.0.0.1 with a generated API key (printed with the client line)"
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (0: any free one; default 8000)")
    serve.set_defaults(func=run_tiled_serve)


def _catalog(args: argparse.Namespace) -> Any:
    """A served catalog for metadata (``--uri`` or ``$XRD_AGENT_TILED_URI``); None: the embedded one,
    which `storage.labels` reads through its database (no tiled server stack to import)."""
    from storage.catalog import URI_ENV

    if args.uri is None and not os.environ.get(URI_ENV):
        return None
    from storage.catalog import open_metadata_catalog

    return open_metadata_catalog(args.uri, args.api_key)


def run_label(args: argparse.Namespace) -> int:
    from storage.labels import label_runs

    if args.space_group is None and args.dimensionality is None:
        raise UserError("give --space-group and/or --dimensionality")
    catalog = _catalog(args)
    for uid, label in label_runs(args.runs, args.space_group, args.dimensionality, by=args.by, catalog=catalog):
        print(
            f"labelled {uid}: space group {label['space_group']}, dimensionality "
            f"{label['dimensionality']}, by {label['by']} at {label['iso_time']}"
        )
    return 0


def _utc_time(text: str | None, option: str) -> float | None:
    """Unix seconds of an ISO date or date-time (UTC unless it names a zone)."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not an ISO date or time (e.g. 2026-11-30 or 2026-11-30T14:00)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def _run_filter(args: argparse.Namespace) -> Callable[[Any], bool]:
    """The predicate of the filter options of `runs` (every given option must hold)."""
    from storage.label_symbols import symbol_key

    since, until = _utc_time(args.since, "--since"), _utc_time(args.until, "--until")
    status = None if args.exit_status == "none" else args.exit_status
    checks: list[Callable[[Any], bool]] = []
    if args.scan_id is not None:
        checks.append(lambda r: r.scan_id == args.scan_id)
    if since is not None:
        checks.append(lambda r: r.time >= since)
    if until is not None:
        checks.append(lambda r: r.time < until)
    if args.sample is not None:
        checks.append(lambda r: args.sample.lower() in (r.sample or "").lower())
    if args.predicted is not None:
        checks.append(lambda r: symbol_key(r.predicted or "") == symbol_key(args.predicted))
    if args.min_confidence is not None:
        checks.append(lambda r: r.confidence is not None and r.confidence >= args.min_confidence)
    if args.max_confidence is not None:
        checks.append(lambda r: r.confidence is not None and r.confidence <= args.max_confidence)
    if args.min_points is not None:
        checks.append(lambda r: (r.points or 0) >= args.min_points)
    if args.exit_status is not None:
        checks.append(lambda r: r.exit_status == status)
    if args.label is not None:
        wanted = symbol_key(args.label)
        checks.append(lambda r: bool(r.label) and wanted in {symbol_key(str(r.label.get(k) or ""))
                                                             for k in ("space_group", "dimensionality")})
    return lambda run: all(check(run) for check in checks)


SAMPLE_WIDTH = 24
"""Characters of the ``runs`` table's sample column."""


def short_sample(name: str | None, width: int = SAMPLE_WIDTH) -> str:
    """The sample as the ``runs`` table shows it: a file's or library entry's last path part (the
    part that tells runs apart), its end kept when still too long ("..." in front)."""
    if not name:
        return "-"
    tail = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or name
    return tail if len(tail) <= width else "..." + tail[-(width - 3):]


def _row(run: Any) -> str:
    when = datetime.fromtimestamp(run.time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    label = "-"
    if run.label:
        label = f"{run.label.get('space_group') or '?'} / {run.label.get('dimensionality') or '?'} by {run.label.get('by')}"
    scan = "" if run.scan_id is None else str(run.scan_id)
    predicted = "-" if run.predicted is None else (run.predicted or "none")
    confidence = "-" if run.confidence is None or math.isnan(run.confidence) else f"{run.confidence:.3f}"
    points = "-" if run.points is None else str(run.points)
    status = run.exit_status or "open"
    return (f"{run.uid[:8]:8}  {scan:>5}  {when:19}  {short_sample(run.sample):{SAMPLE_WIDTH}}  {predicted:9}  {confidence:>5}  "
            f"{points:>6}  {status:7}  {label}")


def run_runs(args: argparse.Namespace) -> int:
    from storage.labels import list_runs

    labelled = True if args.labelled else False if args.unlabelled else None
    keep = _run_filter(args)
    runs = [r for r in list_runs(labelled=labelled, catalog=_catalog(args)) if keep(r)]
    if args.json:
        for run in runs:
            row = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in run.__dict__.items()}
            print(json.dumps(row, sort_keys=True))
        return 0
    if not runs:
        print("no runs")
        return 0
    print(f"{'uid':8}  {'scan':>5}  {'start (UTC)':19}  {'sample':{SAMPLE_WIDTH}}  {'predicted':9}  {'conf':>5}  {'points':>6}  "
          f"{'exit':7}  label")
    for run in runs:
        print(_row(run))
    return 0


def run_tiled_serve(args: argparse.Namespace) -> int:
    from storage.server import serve

    serve(port=args.port)
    return 0
