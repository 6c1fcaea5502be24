"""`xrd-agent shell`: an IPython session with ``RE``, ``adaptive_scan`` and the beamline ready.

The same namespace as ``ipython -i -m plans.startup`` (see `plans.startup`). Type
``RE(adaptive_scan())`` to run an adaptive scan of the configured sample.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shell", help="IPython with RE, adaptive_scan and the configured beamline", description=__doc__
    )
    parser.add_argument("--plots", action="store_true", help="show live plots")
    parser.add_argument("--no-store", action="store_true", help="do not write runs to the tiled catalog")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import IPython

    from plans.startup import BANNER, build_session

    namespace = build_session(plots=args.plots or None, store=not args.no_store)
    print(BANNER)
    IPython.start_ipython(argv=["--no-banner"], user_ns=namespace)
    return 0
