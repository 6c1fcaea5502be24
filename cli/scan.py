"""`xrd-agent scan`: one adaptive scan of a simulated sample, with a LiveTable and a summary.

Runs ``adaptive_scan`` on the configured beamline (`plans.beamline`; ``--sample`` / ``--seed``
override it), prints the BestEffortCallback's LiveTable, stores the run in the tiled catalog
(unless ``--no-store``) and ends with the session's summary line (`plans.run_record.RunRecord.summary_line`:
scan ID, sample, class, confidence, points, simulated acquisition time, why it stopped, fallbacks)
and a line with the full uid and exit status. ``--report PATH`` also writes the report PNG.

Ctrl-C (SIGINT) or SIGTERM aborts the scan: there is no session to resume a paused RunEngine
in, so the run is closed at the next point with a stop document (``exit_status="abort"``), the events
still buffered for tiled are written, one line says so, and the exit code is 130.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Exit code of a scan ended by Ctrl-C or SIGTERM (the shell's code for SIGINT).
INTERRUPTED_EXIT = 130


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("scan", help="run one adaptive scan of a simulated sample", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default=None, help="sample: a name (see sim_devices.list_samples), or a measured pattern file (.xy, .xrdml, ...) "
                             "or a CIF to replay on the simulated beamline; default configured")
    parser.add_argument("--seed", type=int, default=None, help="noise seed; default configured")
    parser.add_argument("--start", type=float, default=5.0, help="first position, degrees")
    parser.add_argument("--stop", type=float, default=60.0, help="last position, degrees")
    parser.add_argument("--coarse-step", type=float, default=0.16, help="coarse step, degrees")
    parser.add_argument("--fine-step", type=float, default=0.04, help="fine step, degrees")
    parser.add_argument("--dwell", type=float, default=None, help="counting time per point, seconds")
    parser.add_argument("--confidence", type=float, default=None,
                        help="settle threshold, calibrated probability (default: the policy default)")
    parser.add_argument("--no-early-stop", action="store_true", help="always scan to --stop")
    parser.add_argument("--remote", action="store_true", help="ask an agent started with `xrd-agent serve-agent`")
    parser.add_argument("--timeout", type=float, default=None, help="decision timeout, seconds (default 1)")
    parser.add_argument("--no-store", action="store_true", help="do not write the run to the tiled catalog")
    parser.add_argument("--report", type=Path, default=None, help="write the report PNG here")
    parser.add_argument("--speedup", type=float, default=None,
                        help="pace the simulated instrument in wall-clock time, this many times faster")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from bluesky.callbacks.best_effort import BestEffortCallback
    from bluesky.utils import RunEngineInterrupted

    from plans import beamline as configured
    from plans.adaptive import adaptive_scan
    from plans.interrupts import SignalAwareDuringTask
    from plans.report import render_report
    from plans.run_metadata import make_run_engine
    from plans.run_record import RunCollector
    from sim_devices import get_sample, make_beamline

    config = configured.load_config()
    config = dataclasses.replace(
        config,
        sample=args.sample or config.sample,
        seed=config.seed if args.seed is None else args.seed,
        agent="remote" if args.remote else config.agent,
    )
    get_sample(config.sample)  # an unknown sample fails here with the list of names
    if args.speedup is not None and args.speedup <= 0:
        raise ValueError(f"--speedup must be positive, got {args.speedup}")
    beamline = make_beamline(sample=config.sample, seed=config.seed, real_time=args.speedup is not None,
                             speedup=args.speedup or 1.0)
    agent = configured.get_agent(config)
    # RE.md in the data directory: scan IDs continue the session's; no bluesky SIGINT handler:
    # signals pause, then abort (see _abort_on_signals)
    RE = make_run_engine(context_managers=[], during_task=SignalAwareDuringTask())  # handlers run within 0.1 s
    bec = BestEffortCallback()
    bec.disable_plots()
    RE.subscribe(bec)
    collector = RunCollector()
    RE.subscribe(collector)
    if not args.no_store:
        from storage.catalog import open_catalog, subscribe_writer

        subscribe_writer(RE, open_catalog())
    began = beamline.clock.time()
    thresholds = {} if args.confidence is None else {"confidence": args.confidence}
    plan = adaptive_scan(
        [beamline.detector], beamline.motor, start=args.start, stop=args.stop, coarse_step=args.coarse_step,
        fine_step=args.fine_step, dwell=args.dwell, early_stop=not args.no_early_stop, agent=agent,
        timeout=args.timeout if args.timeout is not None else config.timeout_s, **thresholds,
    )
    with _abort_on_signals(RE) as received:
        try:
            (uid,) = RE(plan)
        except RunEngineInterrupted:
            if not received:
                raise
            if RE.state == "paused":  # the signal's pause landed at a checkpoint: close the run there
                with contextlib.redirect_stdout(io.StringIO()):
                    RE.abort(reason=f"interrupted by {received[0]}")
            uid = next(reversed(collector.records), None)  # the run the signal closed, if one had opened
    if received:
        print(_interrupted_line(received[0], uid and collector.records[uid], stored=not args.no_store),
              file=sys.stderr)
        return INTERRUPTED_EXIT
    record = collector.records[uid]
    # the session's line (fallbacks and why included), then the full uid for scripts
    print(record.summary_line(f"{beamline.clock.time() - began:.1f} s simulated acquisition"))
    print(f"uid {uid}, exit {record.stop.get('exit_status')}")
    if args.report is not None:
        classifier = getattr(getattr(agent, "agent", None), "classifier", None)
        print(f"report: {render_report(record, args.report, classifier)}")
    return 0 if record.stop.get("exit_status") == "success" else 1


def _interrupted_line(signal_name: str, record: Any, stored: bool) -> str:
    """The one line an interrupted scan prints: the run, its exit status, its points and where they are."""
    if record is None:
        return f"xrd-agent scan: {signal_name} before the run opened; nothing measured"
    where = "not stored (--no-store)"
    if stored:
        from storage.spool import spool_dir, spool_file

        kept = spool_file(spool_dir(), record.uid).exists()
        where = "kept in the local spool (`xrd-agent spool replay`)" if kept else "stored"
    return (f"xrd-agent scan: {signal_name}: run {record.uid} closed with exit_status "
            f"{record.stop.get('exit_status')} after {record.n_points} points, {where}")


@contextlib.contextmanager
def _abort_on_signals(RE: Any) -> Iterator[list[str]]:
    """While inside, SIGINT and SIGTERM end the running plan; yields the names of signals received.

    The first signal asks for a pause at the next checkpoint (`adaptive_scan` has one before
    every point), as bluesky's own Ctrl-C does; ``RE(...)`` then raises ``RunEngineInterrupted``
    and the caller aborts the paused run (``RE.abort``: the plan's cleanup runs and the stop
    document, ``exit_status="abort"`` with the signal as reason, reaches every callback), so the
    run ends between two points. A second signal aborts at once (a plan stuck between
    checkpoints). The handler runs when the signal comes only because the RunEngine's
    ``during_task`` keeps the main thread awake (`plans.interrupts.SignalAwareDuringTask`: a
    signal the kernel delivers to another thread otherwise waits for the run's end). Bluesky's
    account of the interruption ("Aborting: ...", the logged ``RequestAbort`` traceback:
    `plans.interrupts`) is kept off the console: the caller says it in one line.
    """
    from bluesky.utils import TransitionError

    from plans.interrupts import quiet_requested_interrupts

    received: list[str] = []
    quiet_requested_interrupts()

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        if RE.state.is_idle:
            return
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                if len(received) == 1:
                    RE.request_pause(defer=True)
                elif len(received) == 2 and RE.state != "paused":
                    RE.abort(reason=f"interrupted by {received[0]}")
            except TransitionError:  # already pausing or stopping: the caller closes the run
                pass

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
