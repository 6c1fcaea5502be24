"""IPython start-up for the beamline: ``xrd-agent ipython`` (or ``ipython -i -m plans.startup``).

Builds the session namespace a beamline scientist expects:

* ``RE`` -- a `bluesky.RunEngine` whose ``RE.md`` is kept in the data directory
  (`plans.run_metadata.make_run_engine`), so scan IDs keep counting across sessions and
  ``xrd-agent scan``;
  with a `BestEffortCallback` (a LiveTable of the hinted fields, ``tth`` and ``det_counts``; plots
  off unless ``XRD_AGENT_PLOTS=1``; made at the first run, as matplotlib costs a second), a TiledWriter into the catalog (`storage.catalog`, opened at
  the first run: tiled costs seconds to import) and `AdaptiveRunSummary`, which prints one line
  when an adaptive run ends;
* ``adaptive_scan`` -- the plan, bound to the configured beamline (`plans.beamline`);
* ``bl``, ``tth``, ``det`` -- the configured beamline (simulated, or EPICS from the beamline
  file), its motor and its detector;
* ``catalog`` -- the tiled catalog of runs (opened on first use);
* ``bp``, ``bps`` -- bluesky's plans and plan stubs.

Then ``RE(adaptive_scan())`` runs an adaptive scan of the configured sample.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

from plans.interrupts import SignalAwareDuringTask, quiet_requested_interrupts

BANNER = "xrd-agent session: RE, adaptive_scan, bl, tth, det, catalog, bp, bps.  Try: RE(adaptive_scan())"


#: Exceptions that are the user's input being refused (a bad argument, a range beyond the motor's
#: limits, an unknown uid, an unreachable PV): their message already says what is wrong.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, IsADirectoryError, ConnectionError, TypeError)
#: TypeErrors that are a call with the wrong arguments (Python's own messages), not a bug inside.
_ARGUMENT_ERROR = re.compile(r"unexpected keyword argument|required (positional|keyword-only) argument"
                             r"|positional arguments? but|multiple values for argument|invalid keyword argument")


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is bad input to be reported in one line (see `USER_ERRORS`)."""
    if isinstance(error, TypeError):
        return bool(_ARGUMENT_ERROR.search(str(error)))
    return isinstance(error, USER_ERRORS)


def _not_tiled_banner(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Tiled version")


def _not_user_error_abort(record: logging.LogRecord) -> bool:
    # the RunEngine logs "Run aborted" with the traceback, then raises the same exception to the
    # caller, which reports bad input in one line (`install_one_line_errors`, the CLI)
    error = record.exc_info[1] if record.exc_info else None
    return not (record.getMessage() == "Run aborted" and error is not None and is_user_error(error))


def quiet_libraries() -> None:
    """Silence library output a user cannot act on (the CLI and the session call this first).

    tiled's in-process app logs "Tiled version ..." through its own handler each time a catalog
    opens; the filter goes on the logger itself, which keeps it when tiled's import resets the
    level. The RunEngine logs a traceback for a run aborted by bad input, which its caller then
    reports in one line (`is_user_error`). starlette warns (a UserWarning) that tiled's
    in-process transport, its TestClient, should use httpx2: nothing we or the user can change.
    """
    logging.getLogger("tiled.server.app").addFilter(_not_tiled_banner)
    logging.getLogger("bluesky").addFilter(_not_user_error_abort)
    quiet_requested_interrupts()  # RE.abort() after a Ctrl-C pause: bluesky's one line, no traceback
    warnings.filterwarnings("ignore", message=r".*`httpx` with `starlette\.testclient`")
    warnings.filterwarnings("ignore", message=r".*httpx.*", category=DeprecationWarning)


class AdaptiveRunSummary:
    """A callback printing one line when an adaptive run stops, read from the run's documents.

    ``adaptive_scan 12 [8a98c8ce] of CsPbBr3: Pm-3m, confidence 0.985 (calibrated),
    212 points, 287.4 s simulated acquisition, stopped: settled: Pm-3m at confidence 0.985 (...), no
    fallback``: the sample (the start document's ``sample``, when the detector names one), the last
    answered class (`plans.run_record.RunRecord.final`) and its calibrated probability, the
    primary-stream points, the acquisition time (the simulated clock's seconds when ``clock`` is given, else the wall time from the start to the stop document), the
    reason of the final ``stop`` decision (or the stop document's, when the run failed or was
    aborted) and the fallback decisions with the first one's reason. Runs of other plans (no
    ``adaptive`` metadata) print nothing.

    Parameters
    ----------
    clock : object with ``time() -> float``, optional
        The simulated beamline's clock (`sim_devices.clock.SimClock`); None for real hardware.
    out : file, optional
        Where the line goes; default ``sys.stdout``.
    """

    def __init__(self, clock: Any = None, out: TextIO | None = None) -> None:
        from plans.run_record import RunCollector

        self.clock = clock
        self.out = out
        self.lines: list[str] = []
        self._collector = RunCollector()
        self._clock_at_start: dict[str, float] = {}

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start" and not isinstance(doc.get("adaptive"), dict):
            return  # another plan's run: the collector never sees its start, so skips its documents
        self._collector(name, doc)
        if name == "start" and self.clock is not None:
            self._clock_at_start[doc["uid"]] = float(self.clock.time())
        elif name == "stop":
            record = self._collector.records.pop(doc["run_start"], None)
            if record is None:
                return
            line = self.summary_line(record)
            self.lines.append(line)
            print(line, file=self.out or sys.stdout, flush=True)

    def _acquisition(self, record: Any) -> str:
        began = self._clock_at_start.pop(record.uid, None)
        if began is not None:
            return f"{self.clock.time() - began:.1f} s simulated acquisition"
        seconds = float(record.stop.get("time", time.time())) - float(record.start.get("time", 0.0))
        return f"{seconds:.1f} s acquisition"

    def summary_line(self, record: Any) -> str:
        """The line for a finished `plans.run_record.RunRecord`."""
        return record.summary_line(self._acquisition(record))


class DeferredCatalog:
    """The tiled catalog and its writer, made when first needed.

    Importing tiled and opening the embedded catalog takes seconds, which the session should not
    spend before its prompt. Subscribed to the RunEngine, this opens the catalog at the first
    document it sees, subscribes the writer (`storage.catalog.subscribe_writer`) to a bluesky
    `Dispatcher` of its own, and forwards every document there. ``session_catalog()`` (the
    session's ``catalog``) opens it on first use as well.
    """

    def __init__(self) -> None:
        from bluesky.run_engine import Dispatcher

        self._dispatcher = Dispatcher()
        self._catalog: Any = None
        self.failed: str | None = None

    def open(self) -> Any:
        """The catalog (opened now if not yet); None, with the reason printed once, if it cannot be."""
        if self._catalog is None and self.failed is None:
            try:
                from storage.catalog import open_catalog, subscribe_writer

                catalog = open_catalog()
                subscribe_writer(self._dispatcher, catalog)
                self._catalog = catalog
            except Exception as exc:  # noqa: BLE001 - a session without storage still scans; say why
                self.failed = f"{type(exc).__name__}: {exc}"
                print(f"xrd-agent: runs will not be stored ({self.failed})", file=sys.stderr)
        return self._catalog

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        from event_model import DocumentNames

        if self.open() is not None:
            self._dispatcher.process(DocumentNames[name], doc)


class DeferredBestEffort:
    """bluesky's `BestEffortCallback`, made at the first document or attribute use.

    Importing it imports matplotlib's pyplot (about a second of CPU); the session's prompt does
    not wait for that. Used as the BEC itself: ``bec.enable_plots()``, ``bec.peaks``.

    Parameters
    ----------
    plots : bool
        Keep the live plots (else ``disable_plots()``: the LiveTable only).
    """

    def __init__(self, plots: bool) -> None:
        self._plots = plots
        self._bec: Any = None

    def _target(self) -> Any:
        if self._bec is None:
            from bluesky.callbacks.best_effort import BestEffortCallback

            self._bec = BestEffortCallback()
            if not self._plots:
                self._bec.disable_plots()
        return self._bec

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        self._target()(name, doc)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not set yet (a copy in the making): never recurse into _target
            raise AttributeError(name)
        return getattr(self._target(), name)


class _CatalogProxy:
    """The session's ``catalog``: the tiled catalog, opened at first use (``catalog[-1]``, search)."""

    def __init__(self, deferred: DeferredCatalog) -> None:
        self._deferred = deferred

    def _target(self) -> Any:
        catalog = self._deferred.open()
        if catalog is None:
            raise RuntimeError(f"the tiled catalog could not be opened ({self._deferred.failed})")
        return catalog

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not set yet (a copy in the making): never recurse into _target
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __getitem__(self, key: Any) -> Any:
        return self._target()[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._target()

    def __len__(self) -> int:
        return len(self._target())

    def __iter__(self) -> Any:
        return iter(self._target())

    def __repr__(self) -> str:
        if self._deferred._catalog is None:
            return "<tiled catalog of runs, opened at first use>"
        return repr(self._deferred._catalog)


#: What the session prints when a run pauses (bluesky's RunEngineInterrupted, whose own message is
#: a 9-line menu under a traceback): the same choices in one line.
PAUSED_LINE = ("RunEngineInterrupted: the run is paused. RE.resume() goes on; RE.abort() closes it "
               "(exit_status 'abort'); RE.stop() closes it as 'success'; RE.halt() stops without cleanup")


def install_one_line_errors(shell: Any) -> None:
    """Make an IPython shell report bad input in one line instead of a 40-line traceback.

    For `is_user_error` exceptions the shell prints ``ValueError: <message>  (%tb: traceback)``
    and keeps the exception as the last one, so ``%tb`` shows its full traceback. A pause
    (``RunEngineInterrupted``: Ctrl-C, or ``RE.request_pause()``) is no error either: one line,
    `PAUSED_LINE`, gives the user's options. Anything else gets IPython's usual traceback.
    """
    from bluesky.utils import RunEngineInterrupted

    def handler(self: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> None:
        # IPython ignores what a custom handler returns: it prints, and leaves %tb its exception
        sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
        if isinstance(value, RunEngineInterrupted):
            print(PAUSED_LINE, file=sys.stderr, flush=True)
            return
        if not is_user_error(value):
            self.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return
        message = value.args[0] if isinstance(value, KeyError) and value.args else value
        print(f"{etype.__name__}: {message}  (%tb: traceback)", file=sys.stderr, flush=True)

    shell.set_custom_exc((*USER_ERRORS, RunEngineInterrupted), handler)


def build_session(*, plots: bool | None = None, store: bool = True, home: Path | None = None) -> dict[str, Any]:
    """Make the RunEngine, callbacks, devices and plan of an interactive session.

    Parameters
    ----------
    plots : bool, optional
        Live plots from the BestEffortCallback; default from ``XRD_AGENT_PLOTS`` (off).
    store : bool
        Write every run to the embedded (or configured) tiled catalog.
    home : Path, optional
        The data directory holding ``RE.md``; default ``XRD_AGENT_HOME``.

    Returns
    -------
    dict
        The namespace (``RE``, ``adaptive_scan``, ``bl``, ``tth``, ``det``, ``catalog``, ``bec``,
        ``summary``, ``bp``, ``bps``).

    Raises
    ------
    epics_devices.UnreachablePVError, ValueError, FileNotFoundError
        From the beamline file (`plans.beamline.get_beamline`).
    """
    quiet_libraries()
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp

    from plans.beamline import configured_adaptive_scan, get_beamline
    from plans.run_metadata import make_run_engine

    beamline = get_beamline()  # first: a beamline file's unreachable PV stops the session here
    RE = make_run_engine(home, during_task=SignalAwareDuringTask())  # Ctrl-C pauses when pressed
    bec = DeferredBestEffort(plots if plots is not None else os.environ.get("XRD_AGENT_PLOTS") == "1")
    RE.subscribe(bec)
    catalog = None
    if store:
        deferred = DeferredCatalog()
        RE.subscribe(deferred)
        catalog = _CatalogProxy(deferred)
    summary = AdaptiveRunSummary(clock=getattr(beamline, "clock", None))
    RE.subscribe(summary)
    return {
        "RE": RE, "bec": bec, "summary": summary, "catalog": catalog,
        "adaptive_scan": configured_adaptive_scan,
        "bl": beamline, "tth": beamline.motor, "det": beamline.detector,
        "bp": bp, "bps": bps,
    }


if __name__ == "__main__":
    globals().update(build_session())
    from IPython import get_ipython

    if get_ipython() is not None:  # `ipython -i -m plans.startup`
        install_one_line_errors(get_ipython())
    print(BANNER)
