"""`xrd-agent serve-agent`: run the classification agent in its own process.

The process starts a bluesky zmq Proxy (documents in/out), a document reader feeding the agent,
and a REP socket answering decisions, all on 127.0.0.1 and all msgpack. It prints one line
``serve-agent ready ...`` once it listens, then serves until interrupted (Ctrl-C / SIGTERM).
A plan reaches it with ``XRD_AGENT_AGENT=remote`` (see `plans.beamline`) or
``adaptive_scan(agent=RemoteAgent(...))``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from agent.remote import DEFAULT_DECISIONS, DEFAULT_DOCUMENTS_IN, DEFAULT_DOCUMENTS_OUT, loopback_address


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve-agent",
        help="serve the classification agent to plans in other processes (zmq on 127.0.0.1)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--documents-in", default=DEFAULT_DOCUMENTS_IN, help="proxy input the plans publish to")
    parser.add_argument("--documents-out", default=DEFAULT_DOCUMENTS_OUT, help="proxy output the agent reads")
    parser.add_argument("--decisions", default=DEFAULT_DECISIONS, help="REP address answering decisions")
    parser.add_argument("--no-proxy", action="store_true", help="use an already running proxy at those addresses")
    parser.add_argument("--task", default="space_group", choices=("space_group", "dimensionality"),
                        help="task of the shipped default model")
    parser.add_argument("--model", type=Path, default=None, help="a saved model directory (default: XRD_AGENT_MODEL / beamline.json model_path, else the shipped model)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for address in (args.documents_in, args.documents_out, args.decisions):
        loopback_address(address)  # ValueError -> one clear line, exit 2
    from agent.callback import ScanAgent
    from agent.remote import AgentServer
    from plans.beamline import BeamlineConfig, agent_model_source, load_config

    model_path = str(args.model) if args.model else load_config().model_path  # XRD_AGENT_MODEL, beamline.json
    # the local agent's model source: labelled runs remembered before any retraining, second-class CAM
    source = agent_model_source(BeamlineConfig(task=args.task, model_path=model_path))
    server = AgentServer(
        ScanAgent(source(), model_source=source),
        documents_in=args.documents_in,
        documents_out=args.documents_out,
        decisions=args.decisions,
        run_proxy=not args.no_proxy,
    )
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    info = server.agent.describe()
    print(
        f"serve-agent ready: decisions {server.decisions}, documents {server.documents_in} -> "
        f"{server.documents_out}, model {info['model_version']} ({info['model_task']}) on {info['device']}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    print(f"serve-agent stopped after {server.requests_served} requests", file=sys.stderr, flush=True)
    return 0
