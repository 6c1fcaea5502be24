"""`xrd-agent ipython` (alias `shell`): IPython with ``RE``, ``adaptive_scan`` and the beamline ready.

The same namespace as ``ipython -i -m plans.startup`` (see `plans.startup`): ``RE`` (scan IDs
kept under the data directory), ``adaptive_scan``, ``bl``/``tth``/``det`` (simulated, or the
EPICS devices of the beamline file), ``catalog``, ``bp``/``bps``. Type ``RE(adaptive_scan())``
to run an adaptive scan of the configured sample; one summary line follows every adaptive run.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ipython", aliases=["shell"], help="IPython with RE, adaptive_scan and the configured beamline",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--plots", action="store_true", help="show live plots")
    parser.add_argument("--no-store", action="store_true", help="do not write runs to the tiled catalog")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plans.startup import BANNER, build_session, install_one_line_errors

    namespace = build_session(plots=args.plots or None, store=not args.no_store)
    from IPython.terminal.ipapp import TerminalIPythonApp

    app = TerminalIPythonApp.instance(user_ns=namespace)
    app.initialize(argv=["--no-banner"])
    install_one_line_errors(app.shell)
    print(BANNER)
    app.start()
    return 0
