"""`xrd-agent spool replay`: write runs kept in the local spool into the tiled catalog.

A run is kept in the spool (``XRD_AGENT_HOME/spool``) when its process was killed or tiled
could not take it; every scan start replays them too. A run written in part before is
replaced, never duplicated; a run without a stop document gets one with exit_status "abort".
"""

from __future__ import annotations

import argparse

from cli.storage import _add_catalog_options


def register(subparsers: argparse._SubParsersAction) -> None:
    spool = subparsers.add_parser("spool", help="runs kept locally when a process died or tiled was down")
    spool_sub = spool.add_subparsers(dest="spool_command", metavar="SUBCOMMAND", required=True)
    replay = spool_sub.add_parser("replay", help="write every spooled run into the catalog", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_catalog_options(replay)
    replay.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from storage.catalog import open_catalog
    from storage.spool import replay_pending, spool_dir

    directory = spool_dir()
    catalog = open_catalog(args.uri, args.api_key)
    replayed = replay_pending(catalog, directory)
    for done in replayed:
        closed = "with its stop document" if done.closed else "closed now with exit_status abort"
        print(f"replayed {done.uid}: {done.events} points, {closed}")
    left = sorted(path.stem for path in directory.glob("*.jsonl"))
    print(f"{len(replayed)} run(s) replayed; {len(left)} left in {directory}"
          + (f" (being written by a live process: {', '.join(left)})" if left else ""))
    return 0
