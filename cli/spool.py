"""`xrd-agent spool replay`: write runs kept in the local spool into the tiled catalog.

A run is kept in the spool (``XRD_AGENT_HOME/spool``) when its process was killed or tiled
could not take it; every scan start replays them too. A run written in part before is
replaced, never duplicated; a run without a stop document gets one with exit_status "abort".
"""

from __future__ import annotations

import argparse

from cli.errors import UserError
from cli.storage import _add_catalog_options


def register(subparsers: argparse._SubParsersAction) -> None:
    spool = subparsers.add_parser("spool", help="runs kept locally when a process died or tiled was down")
    spool_sub = spool.add_subparsers(dest="spool_command", metavar="SUBCOMMAND", required=True)
    replay = spool_sub.add_parser("replay", help="write every spooled run into the catalog", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_catalog_options(replay)
    replay.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    import httpx

    from storage.catalog import open_catalog
    from storage.spool import replay_pending, spool_dir

    directory = spool_dir()
    try:
        results = replay_pending(open_catalog(args.uri, args.api_key), directory)
    except httpx.TransportError as exc:
        raise UserError(f"tiled is unreachable ({exc}); every spooled run stays in {directory}") from None
    for done in results:
        if done.error is not None:
            print(f"not replayed {done.uid}: {done.error}")
            continue
        closed = "with its stop document" if done.closed else "closed now with exit_status abort"
        print(f"replayed {done.uid}: {done.events} points, {closed}")
    replayed = [done for done in results if done.error is None]
    left = sorted(path.stem for path in directory.glob("*.jsonl"))
    print(f"{len(replayed)} run(s) replayed; {len(left)} left in {directory}"
          + (f" ({', '.join(left)})" if left else ""))
    return 0 if len(replayed) == len(results) else 1
