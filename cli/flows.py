"""`xrd-agent flows serve|run` and `xrd-agent prefect-ui`."""

from __future__ import annotations

import argparse
import json
import os

from cli.errors import UserError


def _add_retrain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("space_group", "dimensionality"), default="space_group")
    parser.add_argument("--members", type=int, default=None, help="ensemble members to train (default: the training default)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per member (default: the training default)")
    parser.add_argument("--base-per-class", type=int, default=None, help="simulated base patterns per class")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated base data and the training")
    parser.add_argument(
        "--dask",
        default=None,
        metavar="local|tcp://HOST:PORT",
        help="train members on a Dask LocalCluster ('local') or an existing scheduler's address",
    )
    parser.add_argument("--force", action="store_true", help="retrain even without newly labelled runs")


def _retrain_parameters(args: argparse.Namespace) -> dict:
    parameters = {"task": args.task, "seed": args.seed, "force": args.force}
    for name in ("members", "steps", "base_per_class", "dask"):
        value = getattr(args, name)
        if value is not None:
            parameters[name] = value
    return parameters


def register(subparsers: argparse._SubParsersAction) -> None:
    flows = subparsers.add_parser("flows", help="the Prefect retrain flow: serve the nightly deployment or run it now")
    flows_sub = flows.add_subparsers(dest="flows_command", metavar="SUBCOMMAND", required=True)

    serve = flows_sub.add_parser("serve", help="register the nightly deployment (cron 0 2 * * *) and serve its runs")
    serve.add_argument("--timezone", default="UTC", help="IANA time zone of the 02:00 schedule (default UTC)")
    serve.add_argument("--api-url", default=None, help="Prefect API (default: $PREFECT_API_URL, else a local server on 127.0.0.1:4200 if up)")
    _add_retrain_options(serve)
    serve.set_defaults(func=run_serve)

    run = flows_sub.add_parser("run", help="run the retrain flow once now and print its result")
    _add_retrain_options(run)
    run.set_defaults(func=run_once)

    ui = subparsers.add_parser("prefect-ui", help="start the Prefect server and UI on 127.0.0.1 (blocks)")
    ui.add_argument("--port", type=int, default=4200)
    ui.set_defaults(func=run_prefect_ui)


def run_serve(args: argparse.Namespace) -> int:
    from flows.deploy import serve_nightly

    serve_nightly(timezone=args.timezone, parameters=_retrain_parameters(args), api_url=args.api_url)
    return 0


def run_once(args: argparse.Namespace) -> int:
    from flows.deploy import choose_api_url

    # A local Prefect server, when one is up, records the run (visible in its UI);
    # otherwise Prefect's ephemeral mode runs it.
    api_url = choose_api_url()
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
    from flows.retrain import retrain_flow

    result = retrain_flow(**_retrain_parameters(args))
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def run_prefect_ui(args: argparse.Namespace) -> int:
    from flows.deploy import local_api_url, start_prefect_server, stop_process, wait_for_api

    if not 1 <= args.port <= 65535:
        raise UserError(f"port must be in 1..65535, got {args.port}")
    process = start_prefect_server(args.port)
    try:
        wait_for_api(local_api_url(args.port), timeout_s=90, process=process)
        print(f"Prefect UI: http://127.0.0.1:{args.port}  (API {local_api_url(args.port)}; Ctrl-C stops it)", flush=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(process)
    return 0
