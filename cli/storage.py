"""`xrd-agent label`, `xrd-agent runs` and `xrd-agent tiled serve`."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

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
        help="label a run with its space group / dimensionality",
        description="Label a run. Classes are checked against the champion model; a bad label writes nothing.",
    )
    label.add_argument("uid", help="full uid of the run (see `xrd-agent runs`)")
    label.add_argument("--space-group", default=None, help="space group, e.g. P-3m1")
    label.add_argument("--dimensionality", default=None, help="0D, 2D or 3D (implied by the space group if omitted)")
    label.add_argument("--by", default=None, help="who labels (default: login name)")
    _add_catalog_options(label)
    label.set_defaults(func=run_label)

    runs = subparsers.add_parser("runs", help="list runs in the catalog")
    which = runs.add_mutually_exclusive_group()
    which.add_argument("--labelled", action="store_true", help="only labelled runs")
    which.add_argument("--unlabelled", action="store_true", help="only runs without a label")
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


def run_label(args: argparse.Namespace) -> int:
    from storage.catalog import open_catalog
    from storage.labels import label_run

    if args.space_group is None and args.dimensionality is None:
        raise UserError("give --space-group and/or --dimensionality")
    catalog = open_catalog(args.uri, args.api_key)
    label = label_run(args.uid, args.space_group, args.dimensionality, by=args.by, catalog=catalog)
    print(
        f"labelled {args.uid}: space group {label['space_group']}, dimensionality "
        f"{label['dimensionality']}, by {label['by']} at {label['iso_time']}"
    )
    return 0


def run_runs(args: argparse.Namespace) -> int:
    from storage.catalog import open_catalog
    from storage.labels import list_runs

    labelled = True if args.labelled else False if args.unlabelled else None
    runs = list_runs(labelled=labelled, catalog=open_catalog(args.uri, args.api_key))
    if args.json:
        for run in runs:
            print(json.dumps(run.__dict__, sort_keys=True))
        return 0
    if not runs:
        print("no runs")
        return 0
    print(f"{'uid':36}  {'scan':>4}  {'start (UTC)':19}  {'plan':14}  {'sample':24}  label")
    for run in runs:
        when = datetime.fromtimestamp(run.time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        label = "-"
        if run.label:
            label = f"{run.label.get('space_group') or '?'} / {run.label.get('dimensionality') or '?'} by {run.label.get('by')}"
        scan = "" if run.scan_id is None else str(run.scan_id)
        print(f"{run.uid:36}  {scan:>4}  {when:19}  {run.plan_name[:14]:14}  {(run.sample or '-')[:24]:24}  {label}")
    return 0


def run_tiled_serve(args: argparse.Namespace) -> int:
    from storage.server import serve

    serve(port=args.port)
    return 0
