"""`xrd-agent flows serve|run` and `xrd-agent prefect-ui`."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

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

    run = flows_sub.add_parser("run", help="run the retrain flow once now and print its summary table")
    _add_retrain_options(run)
    run.add_argument("--json", action="store_true", help="print the whole result as JSON (metrics, matrices, versions)")
    run.set_defaults(func=run_once)

    reap = flows_sub.add_parser("reap", help="mark Crashed the retrain runs whose process was killed "
                                "(every `flows run` and `flows serve` does this first)")
    reap.set_defaults(func=run_reap)

    ui = subparsers.add_parser("prefect-ui", help="start the Prefect server and UI on 127.0.0.1 (blocks)")
    ui.add_argument("--port", type=int, default=4200)
    ui.set_defaults(func=run_prefect_ui)


def run_serve(args: argparse.Namespace) -> int:
    from flows.deploy import serve_nightly

    serve_nightly(timezone=args.timezone, parameters=_retrain_parameters(args), api_url=args.api_url)
    return 0


def _prefect_api() -> Any:
    """The Prefect API of this run: a configured or running one, else a server of our own (returned to stop)."""
    from flows.deploy import choose_api_url, local_api_url, wait_for_api
    from flows.prefect_env import configure_prefect_env
    from flows.run_guard import start_owned_server
    from storage.server import free_port

    # A local Prefect server, when one is up, records the run (visible in its UI).
    api_url = choose_api_url()
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
        return None
    # Otherwise a server of our own instead of Prefect's ephemeral one: ours dies with this
    # process however it ends (flows.run_guard), Prefect's outlives a SIGTERM or SIGKILL.
    port = free_port()
    server = start_owned_server(port, configure_prefect_env() / "flows-run-server.log")
    try:
        wait_for_api(local_api_url(port), timeout_s=180, process=server)
    except BaseException:
        from flows.deploy import stop_process

        stop_process(server)
        raise
    os.environ["PREFECT_API_URL"] = local_api_url(port)
    return server


def _reap() -> None:
    """Mark Crashed the flow runs of killed processes; a failure to check is said, not fatal."""
    import sys

    from flows.run_guard import reap_dead_runs

    try:
        reaped = reap_dead_runs()
    except Exception as exc:  # noqa: BLE001 - a stale marker must not stop tonight's retrain
        print(f"xrd-agent flows: could not check for killed flow runs: {exc}", file=sys.stderr)
        return
    if reaped:
        print(f"marked Crashed {len(reaped)} flow run(s) whose process was killed: {', '.join(reaped)}", flush=True)


def _stop(server: Any) -> None:
    from flows.deploy import stop_process
    from flows.run_guard import drain_prefect_workers

    if server is not None:
        drain_prefect_workers()  # while the server is still up to take the logs
        stop_process(server)


def run_reap(args: argparse.Namespace) -> int:
    server = _prefect_api()
    try:
        _reap()
    finally:
        _stop(server)
    return 0


def run_once(args: argparse.Namespace) -> int:
    from flows.run_guard import install_interrupt_handlers

    server = _prefect_api()
    install_interrupt_handlers(server)
    try:
        _reap()
        from flows.retrain import retrain_flow
        from flows.retrain_report import summary_lines

        result = retrain_flow(**_retrain_parameters(args))
    finally:
        _stop(server)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print("\n".join(summary_lines(result)))
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
