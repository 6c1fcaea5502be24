"""`xrd-agent report UID`: a PNG of one adaptive run read from the tiled catalog.

Panels: the scan (points coloured by step size, refined regions shaded), the CAM of the final
prediction, the class probabilities along the scan, and the agent's actions (see `plans.report`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="draw the report PNG of an adaptive run", description=__doc__)
    parser.add_argument("uid", metavar="RUN", help="full uid, unique uid prefix or scan ID (see `xrd-agent runs`)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output PNG (default <data directory>/reports/report-<uid8>.png)")
    parser.add_argument("--log", action="store_true", help="counts on a log axis")
    parser.add_argument("--uri", default=None, help="a served tiled catalog (default: the embedded one)")
    parser.add_argument("--api-key", default=None, help="API key of a served catalog")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plans.report import render_report
    from plans.run_record import record_from_tiled
    from storage.catalog import open_catalog
    from storage.run_lookup import resolve_run

    catalog = open_catalog(args.uri, args.api_key)
    record = record_from_tiled(resolve_run(catalog, args.uid))
    classifier = None
    version = record.start.get("adaptive", {}).get("model_version")
    task = record.start.get("adaptive", {}).get("model_task") or "space_group"
    try:
        import models

        candidate = models.load_default(task)
        classifier = candidate if str(candidate.version) == str(version) else None
    except Exception:  # noqa: BLE001 - without the run's model the CAM panel shows the recorded summary
        classifier = None
    from patterns.data_home import xrd_agent_home

    out = args.out or xrd_agent_home() / "reports" / f"report-{record.uid[:8]}.png"
    print(render_report(record, out, classifier, log_counts=args.log))
    return 0
